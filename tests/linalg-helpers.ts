/** Test helpers: random vectors, Gram-Schmidt, and symmetric matrices with a chosen spectrum. */
import { Rng } from '../src/util/rng.ts';
import { dot, norm } from '../src/landscape/linalg.ts';

export function gaussian(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal());
}

/** Modified Gram-Schmidt: orthonormal copies of the given (independent) vectors. */
export function orthonormalise(vs: Float64Array[]): Float64Array[] {
  const out: Float64Array[] = [];
  for (const v of vs) {
    const u = Float64Array.from(v);
    for (const q of out) {
      const c = dot(u, q);
      for (let i = 0; i < u.length; i++) u[i]! -= c * q[i]!;
    }
    const n = norm(u);
    out.push(u.map((x) => x / n));
  }
  return out;
}

/** A = Q diag(spectrum) Q^T with Q a random orthogonal matrix; `q[j]` is the eigenvector of spectrum[j]. */
export function withSpectrum(spectrum: number[], seed: number): { a: Float64Array; q: Float64Array[] } {
  const n = spectrum.length;
  const rng = new Rng(seed);
  const q = orthonormalise(Array.from({ length: n }, () => gaussian(rng, n)));
  const a = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const qj = q[j]!;
    const l = spectrum[j]!;
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) a[r * n + c]! += l * qj[r]! * qj[c]!;
  }
  return { a, q };
}

/** y = A x for a dense row-major n x n matrix. */
export function matVec(a: Float64Array, x: Float64Array): Float64Array {
  const n = x.length;
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < n; c++) s += a[r * n + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}
