import { describe, expect, it } from 'vitest';
import { InputError } from '../src/model/config.ts';
import { Rng } from '../src/util/rng.ts';
import { cosine, dot, norm } from '../src/landscape/linalg.ts';
import { projectOntoPlane } from '../src/landscape/project.ts';
import { gaussian, orthonormalise } from './linalg-helpers.ts';

describe('projectOntoPlane', () => {
  const P = 997;
  const rng = new Rng(5);
  const centre = Float32Array.from(gaussian(rng, P));
  // Non-orthogonal, non-unit directions: d2 leans on d1 (cosine ~0.6), norms ~3 and ~0.5.
  const g1 = gaussian(rng, P);
  const g2 = gaussian(rng, P);
  const d1 = Float32Array.from(g1, (x) => 0.1 * x);
  const d2 = Float32Array.from(g2, (x, i) => 0.016 * x + 0.0125 * g1[i]!);
  const [a, b] = [0.75, -2.5];

  it('uses directions that are neither orthogonal nor unit', () => {
    expect(cosine(d1, d2)).toBeGreaterThan(0.5);
    expect(Math.abs(norm(d1) - 1)).toBeGreaterThan(1);
    expect(Math.abs(norm(d2) - 1)).toBeGreaterThan(0.3);
  });

  it('recovers the coefficients of a point on the plane exactly', () => {
    const w = Float64Array.from(centre, (c, i) => c + a * d1[i]! + b * d2[i]!);
    const p = projectOntoPlane(w, centre, d1, d2);
    expect(Math.abs(p.a - a)).toBeLessThan(1e-9);
    expect(Math.abs(p.b - b)).toBeLessThan(1e-9);
    expect(p.residual).toBeLessThan(1e-9);
  });

  it('recovers them in float32 storage, to float32 rounding', () => {
    const w = Float32Array.from(centre, (c, i) => c + a * d1[i]! + b * d2[i]!);
    const p = projectOntoPlane(w, centre, d1, d2);
    expect(Math.abs(p.a - a)).toBeLessThan(1e-6);
    expect(Math.abs(p.b - b)).toBeLessThan(1e-6);
  });

  it('keeps the coefficients and reports the out-of-plane component as the residual', () => {
    // e is orthogonal to d1 and d2 with a known norm.
    const [, , e] = orthonormalise([Float64Array.from(d1), Float64Array.from(d2), gaussian(rng, P)]);
    const off = 0.3;
    const w = Float64Array.from(centre, (c, i) => c + a * d1[i]! + b * d2[i]! + off * e![i]!);
    const p = projectOntoPlane(w, centre, d1, d2);
    expect(Math.abs(p.a - a)).toBeLessThan(1e-9);
    expect(Math.abs(p.b - b)).toBeLessThan(1e-9);
    expect(Math.abs(p.residual - off)).toBeLessThan(1e-9);
  });

  it('differs from the dot(w - centre, d) / ||d|| shortcut, which is wrong for these directions', () => {
    const w = Float64Array.from(centre, (c, i) => c + a * d1[i]! + b * d2[i]!);
    const x = Float64Array.from(w, (v, i) => v - centre[i]!);
    const naiveA = dot(x, d1) / norm(d1);
    const naiveB = dot(x, d2) / norm(d2);
    expect(Math.abs(naiveA - a)).toBeGreaterThan(0.5);
    expect(Math.abs(naiveB - b)).toBeGreaterThan(0.5);
    // The shortcut's point is off the plane's true point by far more than the exact one's.
    const p = projectOntoPlane(w, centre, d1, d2);
    const miss = (ca: number, cb: number) => norm(Float64Array.from(x, (v, i) => v - ca * d1[i]! - cb * d2[i]!));
    expect(miss(naiveA, naiveB)).toBeGreaterThan(1e6 * miss(p.a, p.b) + 0.1);
  });

  it('refuses parallel or zero directions and mismatched lengths', () => {
    const w = Float32Array.from(centre);
    const twice = Float32Array.from(d1, (x) => 2 * x);
    expect(() => projectOntoPlane(w, centre, d1, twice)).toThrow(InputError);
    expect(() => projectOntoPlane(w, centre, d1, new Float32Array(P))).toThrow(/zero or parallel/);
    expect(() => projectOntoPlane(w.subarray(1), centre, d1, d2)).toThrow(/lengths differ/);
  });
});
