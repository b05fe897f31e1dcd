/**
 * Top eigenpairs of a symmetric operator known only through its products
 * H v (the loss Hessian through Hessian-vector products), by Lanczos with
 * full reorthogonalisation (Golub & Van Loan, Matrix Computations, 10.1-10.3).
 *
 * The Hessian of a small transformer is indefinite. "Top" means largest
 * algebraic, as PyHessian's `eigenvalues(top_n)` (Yao et al. 2020) and the
 * literature's "top Hessian eigenvalue" intend: the sharpest curvature
 * upwards. PyHessian's power iteration in fact converges to the eigenvalue
 * of largest magnitude; the two agree near a minimum, where the positive top
 * dominates the negative tail. `which: 'magnitude'` gives the largest |lambda|
 * instead (e.g. to compare with power iteration, or for the ratio
 * |lambda_min| / lambda_max of Li et al. section 6).
 *
 * Full reorthogonalisation keeps the Lanczos vectors orthogonal in floating
 * point (no ghost copies of converged eigenvalues), at O(m n) memory and work
 * per step for m steps: fine for the tens of steps that a top-2 needs.
 */
import { Rng } from '../util/rng.ts';
import { dot, norm, symmetricEigen } from './linalg.ts';

export type Hvp = (v: Float64Array) => Promise<Float64Array>;

export interface LanczosOptions {
  /** Number of eigenpairs (default 2). */
  k?: number;
  /** Most Lanczos steps, i.e. H v products (default 100, at most n). */
  iterations?: number;
  /** Seed of the random start vector (default 0). */
  seed?: number;
  /** Stop when every wanted Ritz pair has ||H x - lambda x|| <= tol * max |lambda| (default 1e-5). */
  tol?: number;
  which?: 'algebraic' | 'magnitude';
  /**
   * Start vector instead of a random one. Over a padded flat parameter buffer,
   * pass one with zero padding (e.g. randomDirection): the Krylov space then
   * stays off the padding, where H is zero.
   */
  start?: Float64Array;
}

export interface Eigenpairs {
  /** Eigenvalues, largest first (algebraically, or by magnitude with which: 'magnitude'). */
  values: number[];
  /** Unit eigenvectors, the component of largest magnitude positive (a sign convention independent of the seed). */
  vectors: Float64Array[];
  /** ||H x - lambda x|| of each pair, as Lanczos estimates it (|beta_m y_m|). */
  residuals: number[];
  /** Lanczos steps taken (H v products). */
  iterations: number;
}

/** Relative size of the next Lanczos vector below which the Krylov space is taken as invariant. */
const BREAKDOWN = 1e-10;

function subtractProjections(w: Float64Array, basis: Float64Array[]): void {
  // Twice is enough (Kahan, Parlett): one repeat of Gram-Schmidt restores orthogonality to rounding.
  for (let pass = 0; pass < 2; pass++) {
    for (const q of basis) {
      const c = dot(w, q);
      for (let i = 0; i < w.length; i++) w[i]! -= c * q[i]!;
    }
  }
}

export async function topEigenpairs(hvp: Hvp, n: number, opts: LanczosOptions = {}): Promise<Eigenpairs> {
  const k = opts.k ?? 2;
  const maxSteps = Math.min(opts.iterations ?? 100, n);
  const tol = opts.tol ?? 1e-5;
  const byMagnitude = opts.which === 'magnitude';
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`lanczos: k = ${k} must be an integer from 1 to n = ${n}`);
  if (!Number.isInteger(maxSteps) || maxSteps < k) throw new Error(`lanczos: iterations = ${opts.iterations} must be an integer >= k = ${k}`);
  const rng = new Rng(opts.seed ?? 0);
  const randomUnit = (basis: Float64Array[]): Float64Array => {
    const v = Float64Array.from({ length: n }, () => rng.normal());
    subtractProjections(v, basis);
    const s = 1 / norm(v);
    return v.map((x) => x * s);
  };
  let v: Float64Array;
  if (opts.start) {
    if (opts.start.length !== n) throw new Error(`lanczos: start vector has ${opts.start.length} entries, expected ${n}`);
    const s = norm(opts.start);
    if (s === 0) throw new Error('lanczos: the start vector is zero');
    v = opts.start.map((x) => x / s);
  } else {
    v = randomUnit([]);
  }

  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = [];
  let scale = 0;
  let ritz = { values: [] as number[], coords: [] as Float64Array[], residuals: [] as number[] };
  for (;;) {
    basis.push(v);
    const hv = await hvp(v);
    if (hv.length !== n) throw new Error(`lanczos: H v has ${hv.length} entries, expected ${n}`);
    const w = Float64Array.from(hv);
    alpha.push(dot(w, v));
    // Full reorthogonalisation against every Lanczos vector subsumes the three-term recurrence.
    subtractProjections(w, basis);
    const b = norm(w);
    scale = Math.max(scale, Math.abs(alpha.at(-1)!), b);
    const m = basis.length;
    if (m >= k) {
      ritz = ritzPairs(alpha, beta, b, k, byMagnitude);
      const largest = Math.max(...ritz.values.map(Math.abs));
      if (m === maxSteps || ritz.residuals.every((r) => r <= tol * largest)) break;
    }
    if (b <= BREAKDOWN * scale) {
      // An invariant subspace: restart orthogonally to it (T becomes block diagonal, beta = 0).
      beta.push(0);
      v = randomUnit(basis);
    } else {
      beta.push(b);
      v = w.map((x) => x / b);
    }
  }

  const vectors = ritz.coords.map((y) => {
    const x = new Float64Array(n);
    y.forEach((c, j) => {
      const q = basis[j]!;
      for (let i = 0; i < n; i++) x[i]! += c * q[i]!;
    });
    let big = 0;
    for (let i = 0; i < n; i++) if (Math.abs(x[i]!) > Math.abs(big)) big = x[i]!;
    const s = (big < 0 ? -1 : 1) / norm(x);
    return x.map((e) => e * s);
  });
  return { values: ritz.values, vectors, residuals: ritz.residuals, iterations: basis.length };
}

/** The k wanted eigenpairs of the m x m tridiagonal T (alpha on the diagonal, beta beside), with residual estimates |bNext y_m|. */
function ritzPairs(alpha: number[], beta: number[], bNext: number, k: number, byMagnitude: boolean) {
  const m = alpha.length;
  const t = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    t[i * m + i] = alpha[i]!;
    if (i + 1 < m) {
      t[i * m + i + 1] = beta[i]!;
      t[(i + 1) * m + i] = beta[i]!;
    }
  }
  const eig = symmetricEigen(t, m);
  const order = Array.from({ length: m }, (_, i) => i);
  if (byMagnitude) order.sort((i, j) => Math.abs(eig.values[j]!) - Math.abs(eig.values[i]!));
  const chosen = order.slice(0, k);
  return {
    values: chosen.map((i) => eig.values[i]!),
    coords: chosen.map((i) => eig.vectors[i]!),
    residuals: chosen.map((i) => Math.abs(bNext * eig.vectors[i]![m - 1]!)),
  };
}
