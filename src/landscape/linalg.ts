/**
 * Small dense linear algebra for the landscape math: dot products and norms
 * of flat parameter buffers (accumulated in float64 whatever the storage),
 * Gram-Schmidt, and a symmetric eigensolver for the small matrices of PCA
 * (the n x n Gram matrix of n checkpoints) and Lanczos (the tridiagonal T).
 */

export type Vector = Float32Array | Float64Array;

function checkSameLength(x: Vector, y: Vector, what: string): void {
  if (x.length !== y.length) throw new Error(`${what}: vectors of different lengths (${x.length} and ${y.length})`);
}

/** sum_i x_i y_i in float64. */
export function dot(x: Vector, y: Vector): number {
  checkSameLength(x, y, 'dot');
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}

/** Euclidean norm in float64. */
export function norm(x: Vector): number {
  return Math.sqrt(dot(x, x));
}

/** cos(x, y) = x.y / (||x|| ||y||); NaN when either vector is zero (the angle is undefined). */
export function cosine(x: Vector, y: Vector): number {
  const nx = norm(x);
  const ny = norm(y);
  if (nx === 0 || ny === 0) return NaN;
  return dot(x, y) / (nx * ny);
}

/**
 * One Gram-Schmidt step: `d2 - (d2.d1 / d1.d1) d1`, in the storage type of d2.
 * Orthogonality holds before any later normalisation only; filter or layer
 * normalisation afterwards breaks it again (SPEC section 8).
 */
export function orthogonalize<T extends Vector>(d2: T, d1: Vector): T {
  checkSameLength(d2, d1, 'orthogonalize');
  const d1d1 = dot(d1, d1);
  if (d1d1 === 0) throw new Error('orthogonalize: d1 is the zero vector');
  const c = dot(d2, d1) / d1d1;
  const out = d2.slice() as T;
  for (let i = 0; i < out.length; i++) out[i] = d2[i]! - c * d1[i]!;
  return out;
}

export interface SymmetricEigen {
  /** Eigenvalues in descending (algebraic) order. */
  values: Float64Array;
  /** Unit eigenvectors, `vectors[j]` belonging to `values[j]`. */
  vectors: Float64Array[];
}

const JACOBI_MAX_SWEEPS = 100;

/**
 * Eigen-decomposition of a symmetric n x n matrix (row-major, only read) by
 * cyclic Jacobi rotations (Numerical Recipes, section 11.1): slow for large n
 * but accurate for every eigenvalue, which is what the small Gram and
 * tridiagonal matrices here need.
 */
export function symmetricEigen(matrix: Float64Array, n: number): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} entries, got ${matrix.length}`);
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += Math.abs(a[i]!);
  for (let sweep = 0; sweep < JACOBI_MAX_SWEEPS; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += Math.abs(a[p * n + q]!);
    // Off-diagonal mass far below roundoff of the matrix: the diagonal is the spectrum.
    if (off === 0 || off <= 1e-30 * scale) break;
    // Early sweeps skip small entries (NR's threshold) so rotations go to the big ones first.
    const threshold = sweep < 3 ? (0.2 * off) / (n * n) : 0;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        const g = 100 * Math.abs(apq);
        if (sweep > 3 && Math.abs(app) + g === Math.abs(app) && Math.abs(aqq) + g === Math.abs(aqq)) {
          a[p * n + q] = 0;
          a[q * n + p] = 0;
          continue;
        }
        if (apq === 0 || Math.abs(apq) <= threshold) continue;
        // Rotation angle that zeroes a_pq: theta = (a_qq - a_pp) / (2 a_pq), t = tan(phi) (the smaller root).
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < n; r++) {
          if (r === p || r === q) continue;
          const arp = a[r * n + p]!;
          const arq = a[r * n + q]!;
          const np = c * arp - s * arq;
          const nq = s * arp + c * arq;
          a[r * n + p] = np;
          a[p * n + r] = np;
          a[r * n + q] = nq;
          a[q * n + r] = nq;
        }
        a[p * n + p] = app - t * apq;
        a[q * n + q] = aqq + t * apq;
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let r = 0; r < n; r++) {
          const vrp = v[r * n + p]!;
          const vrq = v[r * n + q]!;
          v[r * n + p] = c * vrp - s * vrq;
          v[r * n + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]!);
  const values = Float64Array.from(order, (i) => a[i * n + i]!);
  const vectors = order.map((j) => Float64Array.from({ length: n }, (_, r) => v[r * n + j]!));
  return { values, vectors };
}
