/**
 * PCA directions from a training trajectory (Li et al. 2018, section 7): the
 * top-2 principal directions of the displacements x_t = ckpt_t - final.
 *
 * No mean-centring beyond subtracting the final point. The landscape plane is
 * centred on the final weights, so the directions should capture as much as
 * possible of the displacements from that centre (the plane through `final`
 * closest to the checkpoints); centring on the trajectory's mean would fit a
 * plane through the mean instead, which need not pass through `final`. This is
 * the paper's description (PCA of M = [theta_0 - theta_n; ...]); note that its
 * reference code calls sklearn's PCA, which centres M's columns.
 *
 * With n checkpoints of P parameters (n small, P large), the eigenvectors of
 * the n x n Gram matrix G = M M^T give those of M^T M without forming it:
 * if G v = lambda v then u = M^T v / sqrt(lambda) is a unit eigenvector of
 * M^T M with the same eigenvalue.
 */
import { InputError } from '../model/config.ts';
import { symmetricEigen } from './linalg.ts';

export interface PcaDirections {
  /** Unit-norm, orthogonal (to float32 rounding) principal directions. */
  d1: Float32Array;
  d2: Float32Array;
  /** lambda_1 / sum(lambda), lambda_2 / sum(lambda): the share of sum_t ||ckpt_t - final||^2 along d1 and d2. */
  explainedVariance: [number, number];
}

/** Elements per block when accumulating the Gram matrix: the n differences of a block stay in cache. */
const GRAM_BLOCK = 2048;

/**
 * The top-2 principal directions of {ckpt_t - final}. The final checkpoint may
 * be among `checkpoints` (its zero row changes nothing). Sign convention: the
 * first checkpoint (usually the initialisation) has non-negative coordinates
 * on d1 and d2, so the path starts in the positive quadrant.
 */
export function pcaDirections(checkpoints: Float32Array[], final: Float32Array): PcaDirections {
  const n = checkpoints.length;
  const P = final.length;
  checkpoints.forEach((c, t) => {
    if (c.length !== P) throw new Error(`pca: checkpoint ${t} has ${c.length} floats, the final one ${P}`);
  });
  if (n < 2) throw new InputError(`pca directions need at least 2 checkpoints besides the final one, got ${n}`);

  const gram = new Float64Array(n * n);
  const diff = new Float64Array(n * GRAM_BLOCK);
  for (let start = 0; start < P; start += GRAM_BLOCK) {
    const len = Math.min(GRAM_BLOCK, P - start);
    for (let t = 0; t < n; t++) {
      const c = checkpoints[t]!;
      for (let k = 0; k < len; k++) diff[t * GRAM_BLOCK + k] = c[start + k]! - final[start + k]!;
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let k = 0; k < len; k++) s += diff[i * GRAM_BLOCK + k]! * diff[j * GRAM_BLOCK + k]!;
        gram[i * n + j]! += s;
      }
    }
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += gram[i * n + i]!;
    for (let j = 0; j < i; j++) gram[j * n + i] = gram[i * n + j]!;
  }
  if (total === 0) throw new InputError('pca directions: every checkpoint equals the final one');

  const { values, vectors } = symmetricEigen(gram, n);
  const [l1, l2] = [values[0]!, values[1]!];
  // Below this the second direction would be rounding noise: the trajectory is (numerically) a line.
  if (!(l2 > 1e-12 * l1)) {
    throw new InputError('pca directions: the checkpoints span fewer than 2 dimensions around the final one (the path is a straight line)');
  }
  const direction = (v: Float64Array): Float32Array => {
    const sign = v[0]! < 0 ? -1 : 1;
    const u = new Float64Array(P);
    for (let t = 0; t < n; t++) {
      const c = checkpoints[t]!;
      const w = sign * v[t]!;
      if (w === 0) continue;
      for (let k = 0; k < P; k++) u[k]! += w * (c[k]! - final[k]!);
    }
    let sq = 0;
    for (let k = 0; k < P; k++) sq += u[k]! * u[k]!;
    const inv = 1 / Math.sqrt(sq);
    return Float32Array.from(u, (x) => x * inv);
  };
  return { d1: direction(vectors[0]!), d2: direction(vectors[1]!), explainedVariance: [l1 / total, l2 / total] };
}
