import { describe, expect, it } from 'vitest';
import { Rng } from '../src/util/rng.ts';
import { dot, norm } from '../src/landscape/linalg.ts';
import { type Hvp, topEigenpairs } from '../src/landscape/lanczos.ts';
import { matVec, withSpectrum } from './linalg-helpers.ts';

function denseHvp(a: Float64Array): { hvp: Hvp; calls: () => number } {
  let calls = 0;
  return {
    hvp: async (v) => {
      calls++;
      return matVec(a, v);
    },
    calls: () => calls,
  };
}

/** Spectrum with the given head, the rest spread evenly over [lo, hi]. */
function spectrum(head: number[], n: number, lo: number, hi: number): number[] {
  const rest = n - head.length;
  return [...head, ...Array.from({ length: rest }, (_, i) => lo + ((hi - lo) * i) / (rest - 1))];
}

function expectAligned(x: Float64Array, q: Float64Array, tol: number): void {
  expect(Math.abs(norm(x) - 1)).toBeLessThan(1e-12);
  expect(1 - Math.abs(dot(x, q))).toBeLessThan(tol);
}

describe('topEigenpairs (Lanczos with full reorthogonalisation)', () => {
  // An indefinite spectrum whose largest magnitude is negative: -9 < -3 .. 2.5 < 4 < 7.
  const indefinite = spectrum([7, 4, -9], 150, -3, 2.5);
  const { a, q } = withSpectrum(indefinite, 1);

  it('finds the largest algebraic eigenvalues of an indefinite matrix, and their vectors', async () => {
    const { hvp, calls } = denseHvp(a);
    const r = await topEigenpairs(hvp, 150, { iterations: 80, seed: 3, tol: 1e-10 });
    expect(r.values[0]).toBeCloseTo(7, 9);
    expect(r.values[1]).toBeCloseTo(4, 9);
    expectAligned(r.vectors[0]!, q[0]!, 1e-9);
    expectAligned(r.vectors[1]!, q[1]!, 1e-9);
    expect(Math.abs(dot(r.vectors[0]!, r.vectors[1]!))).toBeLessThan(1e-10);
    expect(r.iterations).toBe(calls());
    // It stopped on the residual test, before the step limit; the residuals it reports are the true ones.
    expect(r.iterations).toBeLessThan(80);
    r.vectors.forEach((x, i) => {
      const hx = matVec(a, x);
      const res = norm(hx.map((e, j) => e - r.values[i]! * x[j]!));
      expect(res).toBeLessThan(1e-9 * 9);
      expect(Math.abs(res - r.residuals[i]!)).toBeLessThan(1e-9);
    });
  });

  it('finds the largest magnitudes instead with which: magnitude', async () => {
    const r = await topEigenpairs(denseHvp(a).hvp, 150, { iterations: 80, seed: 3, tol: 1e-10, which: 'magnitude' });
    expect(r.values[0]).toBeCloseTo(-9, 9);
    expect(r.values[1]).toBeCloseTo(7, 9);
    expectAligned(r.vectors[0]!, q[2]!, 1e-9);
  });

  it('separates a near-degenerate top pair', async () => {
    const { a: a2, q: q2 } = withSpectrum(spectrum([10, 10 - 1e-4], 60, -5, 5), 2);
    const r = await topEigenpairs(denseHvp(a2).hvp, 60, { iterations: 60, seed: 1, tol: 1e-12 });
    expect(r.values[0]).toBeCloseTo(10, 10);
    expect(r.values[1]).toBeCloseTo(10 - 1e-4, 10);
    // Each vector is determined to about residual / gap = 1e-12 / 1e-4.
    expectAligned(r.vectors[0]!, q2[0]!, 1e-7);
    expectAligned(r.vectors[1]!, q2[1]!, 1e-7);
  });

  it('finds both copies of an exactly repeated eigenvalue once the Krylov space is exhausted (restart)', async () => {
    const { a: a3, q: q3 } = withSpectrum(spectrum([5, 5], 24, -3, 3), 4);
    const r = await topEigenpairs(denseHvp(a3).hvp, 24, { iterations: 24, seed: 2, tol: 1e-12 });
    expect(r.iterations).toBe(24);
    expect(r.values[0]).toBeCloseTo(5, 10);
    expect(r.values[1]).toBeCloseTo(5, 10);
    // The vectors span the eigenspace of 5 (any orthonormal basis of it is right).
    for (const x of r.vectors) expect(dot(x, q3[0]!) ** 2 + dot(x, q3[1]!) ** 2).toBeGreaterThan(1 - 1e-10);
    expect(Math.abs(dot(r.vectors[0]!, r.vectors[1]!))).toBeLessThan(1e-10);
  });

  it('is deterministic for a seed, honours k and a start vector, and fixes the sign', async () => {
    const { hvp } = denseHvp(a);
    const opts = { k: 3, iterations: 90, seed: 9, tol: 1e-10, which: 'magnitude' } as const;
    const r1 = await topEigenpairs(hvp, 150, opts);
    const r2 = await topEigenpairs(hvp, 150, opts);
    expect(r1).toEqual(r2);
    expect(r1.values.length).toBe(3);
    expect(r1.values[0]).toBeCloseTo(-9, 9);
    expect(r1.values[1]).toBeCloseTo(7, 9);
    expect(r1.values[2]).toBeCloseTo(4, 9);
    const rng = new Rng(77);
    const start = Float64Array.from({ length: 150 }, () => rng.normal());
    const r3 = await topEigenpairs(hvp, 150, { iterations: 80, start, tol: 1e-10 });
    expect(r3.values[0]).toBeCloseTo(7, 9);
    for (const x of [...r1.vectors, ...r3.vectors]) {
      const big = x.reduce((m, e) => (Math.abs(e) > Math.abs(m) ? e : m), 0);
      expect(big).toBeGreaterThan(0);
    }
    // Another start, the same eigenvector after the sign convention.
    expect(dot(r1.vectors[1]!, r3.vectors[0]!)).toBeGreaterThan(1 - 1e-9);
  });

  it('rejects bad arguments and a wrong-sized product', async () => {
    const { hvp } = denseHvp(a);
    await expect(topEigenpairs(hvp, 150, { k: 0 })).rejects.toThrow(/k = 0/);
    await expect(topEigenpairs(hvp, 150, { k: 3, iterations: 2 })).rejects.toThrow(/iterations = 2 must be an integer >= k = 3/);
    await expect(topEigenpairs(hvp, 150, { start: new Float64Array(150) })).rejects.toThrow(/start vector is zero/);
    await expect(topEigenpairs(async () => new Float64Array(3), 150)).rejects.toThrow(/H v has 3 entries, expected 150/);
  });
});
