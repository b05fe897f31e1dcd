import { describe, expect, it } from 'vitest';
import { dot, symmetricEigen } from '../src/landscape/linalg.ts';
import { matVec, withSpectrum } from './linalg-helpers.ts';

describe('symmetricEigen (cyclic Jacobi)', () => {
  it('recovers a known indefinite spectrum with a repeated eigenvalue, and A v = lambda v', () => {
    const spectrum = [3.5, -7, 0, 2, 2, -0.25, 11, 1e-3, -2, 5, 6, -11.5, 0.5];
    const n = spectrum.length;
    const { a, q } = withSpectrum(spectrum, 3);
    const { values, vectors } = symmetricEigen(a, n);
    const sorted = [...spectrum].sort((x, y) => y - x);
    values.forEach((v, i) => expect(v).toBeCloseTo(sorted[i]!, 12));
    vectors.forEach((v, i) => {
      const av = matVec(a, v);
      for (let r = 0; r < n; r++) expect(Math.abs(av[r]! - values[i]! * v[r]!)).toBeLessThan(1e-12);
      for (let j = 0; j < i; j++) expect(Math.abs(dot(v, vectors[j]!))).toBeLessThan(1e-12);
    });
    // A simple eigenvalue's vector is the one the matrix was built from, up to sign.
    expect(Math.abs(dot(vectors[0]!, q[spectrum.indexOf(11)]!))).toBeCloseTo(1, 12);
  });

  it('handles a hand-computed 2 x 2, a 1 x 1 and the zero matrix', () => {
    // [[2, 1], [1, 2]]: eigenvalues 3 (1, 1)/sqrt 2 and 1 (1, -1)/sqrt 2.
    const { values, vectors } = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2);
    expect(Array.from(values)).toEqual([3, 1].map((x) => expect.closeTo(x, 15)));
    expect(Math.abs(vectors[0]![0]! - vectors[0]![1]!)).toBeLessThan(1e-15);
    expect(Math.abs(vectors[1]![0]! + vectors[1]![1]!)).toBeLessThan(1e-15);
    expect(Array.from(symmetricEigen(new Float64Array([-4]), 1).values)).toEqual([-4]);
    expect(Array.from(symmetricEigen(new Float64Array(9), 3).values)).toEqual([0, 0, 0]);
    expect(() => symmetricEigen(new Float64Array(5), 2)).toThrow(/expected 4 entries, got 5/);
  });
});
