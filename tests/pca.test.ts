import { describe, expect, it } from 'vitest';
import { InputError } from '../src/model/config.ts';
import { Rng } from '../src/util/rng.ts';
import { dot, norm } from '../src/landscape/linalg.ts';
import { pcaDirections } from '../src/landscape/pca.ts';
import { gaussian, orthonormalise } from './linalg-helpers.ts';

function expectOrthonormal(d1: Float32Array, d2: Float32Array): void {
  expect(Math.abs(norm(d1) - 1)).toBeLessThan(1e-6);
  expect(Math.abs(norm(d2) - 1)).toBeLessThan(1e-6);
  expect(Math.abs(dot(d1, d2))).toBeLessThan(1e-6);
}

describe('pcaDirections', () => {
  it('recovers a synthetic trajectory built from known orthogonal directions and variances', () => {
    const P = 301;
    const n = 11;
    const rng = new Rng(1);
    // Directions u1, u2, u3 in R^P and per-checkpoint coefficients a, b, c that are mutually orthogonal in R^n,
    // scaled so that sum a^2 = 9, sum b^2 = 4, sum c^2 = 0.25: the principal axes are u1, u2, u3 exactly.
    const [u1, u2, u3] = orthonormalise([gaussian(rng, P), gaussian(rng, P), gaussian(rng, P)]);
    const [a, b, c] = orthonormalise([gaussian(rng, n), gaussian(rng, n), gaussian(rng, n)]).map((v, i) => v.map((x) => x * [3, 2, 0.5][i]!));
    const final = Float32Array.from(gaussian(rng, P));
    const checkpoints = Array.from({ length: n }, (_, t) =>
      Float32Array.from(final, (f, k) => f + a![t]! * u1![k]! + b![t]! * u2![k]! + c![t]! * u3![k]!),
    );
    const { d1, d2, explainedVariance } = pcaDirections(checkpoints, final);
    expectOrthonormal(d1, d2);
    expect(Math.abs(dot(d1, u1!))).toBeGreaterThan(1 - 1e-6);
    expect(Math.abs(dot(d2, u2!))).toBeGreaterThan(1 - 1e-6);
    const total = 9 + 4 + 0.25;
    expect(explainedVariance[0]).toBeCloseTo(9 / total, 5);
    expect(explainedVariance[1]).toBeCloseTo(4 / total, 5);
    // Sign convention: checkpoint 0 lies in the positive quadrant.
    const x0 = Float64Array.from(checkpoints[0]!, (v, k) => v - final[k]!);
    expect(dot(x0, d1)).toBeGreaterThanOrEqual(0);
    expect(dot(x0, d2)).toBeGreaterThanOrEqual(0);
  });

  it('matches power iteration with deflation on the dense P x P second-moment matrix', () => {
    const P = 23;
    const n = 9;
    const rng = new Rng(7);
    const final = Float32Array.from(gaussian(rng, P));
    // A random walk with a drift: anisotropic, like a training path.
    const checkpoints: Float32Array[] = [];
    const w = Float64Array.from(final);
    for (let t = 0; t < n; t++) {
      for (let k = 0; k < P; k++) w[k]! += rng.normal() * (k < 3 ? 1.5 : 0.3) + (k === 5 ? 0.8 : 0);
      checkpoints.push(Float32Array.from(w));
    }
    const X = checkpoints.map((c) => Float64Array.from(c, (v, k) => v - final[k]!));
    const S = new Float64Array(P * P); // S = M^T M, uncentred as pcaDirections documents
    for (const x of X) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) S[i * P + j]! += x[i]! * x[j]!;
    let trace = 0;
    for (let i = 0; i < P; i++) trace += S[i * P + i]!;
    const found: Array<{ value: number; vector: Float64Array }> = [];
    for (let e = 0; e < 2; e++) {
      let v = gaussian(rng, P);
      let value = 0;
      for (let it = 0; it < 5000; it++) {
        const next = new Float64Array(P);
        for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) next[i]! += S[i * P + j]! * v[j]!;
        for (const f of found) {
          const c = dot(next, f.vector);
          for (let i = 0; i < P; i++) next[i]! -= c * f.vector[i]!;
        }
        value = norm(next);
        v = next.map((x) => x / value);
      }
      found.push({ value, vector: v });
    }
    const { d1, d2, explainedVariance } = pcaDirections(checkpoints, final);
    expectOrthonormal(d1, d2);
    expect(explainedVariance[0]).toBeCloseTo(found[0]!.value / trace, 6);
    expect(explainedVariance[1]).toBeCloseTo(found[1]!.value / trace, 6);
    expect(Math.abs(dot(d1, found[0]!.vector))).toBeGreaterThan(1 - 1e-6);
    expect(Math.abs(dot(d2, found[1]!.vector))).toBeGreaterThan(1 - 1e-6);
  });

  it('accepts the final checkpoint among the checkpoints (a zero displacement)', () => {
    const rng = new Rng(3);
    const final = Float32Array.from(gaussian(rng, 50));
    const others = Array.from({ length: 5 }, () => Float32Array.from(gaussian(rng, 50)));
    const without = pcaDirections(others, final);
    const withFinal = pcaDirections([...others, final], final);
    expect(withFinal.explainedVariance[0]).toBeCloseTo(without.explainedVariance[0], 12);
    expect(Math.abs(dot(withFinal.d1, without.d1))).toBeGreaterThan(1 - 1e-6);
  });

  it('refuses too few checkpoints, a trajectory that is a line, and mismatched sizes', () => {
    const final = new Float32Array([1, 2, 3, 4]);
    const along = (s: number) => Float32Array.from(final, (f, k) => f + s * (k + 1));
    expect(() => pcaDirections([along(1)], final)).toThrow(InputError);
    expect(() => pcaDirections([along(1), along(-2), along(0.5)], final)).toThrow(/fewer than 2 dimensions/);
    expect(() => pcaDirections([final, final], final)).toThrow(/every checkpoint equals the final one/);
    expect(() => pcaDirections([along(1), new Float32Array(3)], final)).toThrow(/checkpoint 1 has 3 floats, the final one 4/);
  });
});
