/**
 * Projection of a checkpoint onto the landscape plane (SPEC sections 4 and 8).
 *
 * (a, b) minimise ||x - a d1 - b d2|| with x = w - centre, i.e. solve the
 * normal equations
 *     [d1.d1  d1.d2] [a]   [x.d1]
 *     [d1.d2  d2.d2] [b] = [x.d2]
 * in float64. This is exact for any two independent directions; the common
 * shortcut a = x.d1 / ||d1|| is right only for orthogonal directions, and
 * only unit ones give coordinates in units of d1 and d2.
 */
import { InputError } from '../model/config.ts';
import { type Vector } from './linalg.ts';

export interface PlaneCoordinates {
  a: number;
  b: number;
  /** ||w - centre - a d1 - b d2||: how far w lies off the plane. */
  residual: number;
}

export function projectOntoPlane(w: Vector, centre: Vector, d1: Vector, d2: Vector): PlaneCoordinates {
  const P = w.length;
  if (centre.length !== P || d1.length !== P || d2.length !== P) {
    throw new Error(`projectOntoPlane: lengths differ (w ${P}, centre ${centre.length}, d1 ${d1.length}, d2 ${d2.length})`);
  }
  let g11 = 0;
  let g12 = 0;
  let g22 = 0;
  let r1 = 0;
  let r2 = 0;
  for (let i = 0; i < P; i++) {
    const x = w[i]! - centre[i]!;
    const u = d1[i]!;
    const v = d2[i]!;
    g11 += u * u;
    g12 += u * v;
    g22 += v * v;
    r1 += x * u;
    r2 += x * v;
  }
  const det = g11 * g22 - g12 * g12;
  // det / (g11 g22) = 1 - cos^2(d1, d2): near zero the plane is not defined by d1 and d2.
  if (!(det > 1e-12 * g11 * g22)) {
    throw new InputError('the directions d1 and d2 are zero or parallel: they span no plane to project onto');
  }
  const a = (g22 * r1 - g12 * r2) / det;
  const b = (g11 * r2 - g12 * r1) / det;
  // The residual from a second pass, not from ||x||^2 - (a r1 + b r2), which cancels catastrophically near the plane.
  let sq = 0;
  for (let i = 0; i < P; i++) {
    const e = w[i]! - centre[i]! - a * d1[i]! - b * d2[i]!;
    sq += e * e;
  }
  return { a, b, residual: Math.sqrt(sq) };
}
