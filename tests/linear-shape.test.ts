/** The `bcast` GEMM's shapes (shaders/linear.ts) and when it is chosen. */
import { describe, expect, it } from 'vitest';
import { BCAST_MIN_FLOPS, BCAST_UNROLL, bcastRowGroups, bcastShape, gemmFor } from '../shaders/linear.ts';

describe('bcast GEMM shapes', () => {
  it('cover every output column and in_feature, within the unroll budget', () => {
    for (const outDim of [1, 4, 37, 48, 64, 144, 192, 256, 384, 512, 1000]) {
      for (const inDim of [1, 13, 30, 48, 64, 192, 256, 512, 1024]) {
        const s = bcastShape(outDim, inDim);
        expect(s.WG % 4).toBe(0);
        expect(s.WG).toBeLessThanOrEqual(16);
        expect(s.C).toBeLessThanOrEqual(12);
        expect(s.colGroups * s.WG * s.C).toBeGreaterThanOrEqual(outDim);
        // no column group is left without columns
        expect((s.colGroups - 1) * s.WG * s.C).toBeLessThan(outDim);
        expect(s.KC * s.C).toBeLessThanOrEqual(Math.max(BCAST_UNROLL, s.C * 4));
        expect(s.KC % 4 === 0 || s.KC === inDim).toBe(true);
        const passes = Math.ceil(inDim / s.KC);
        expect(passes * s.KC).toBeGreaterThanOrEqual(inDim);
        expect((passes - 1) * s.KC).toBeLessThan(inDim);
      }
    }
  });

  it('has the measured shapes for the reference model', () => {
    expect(bcastShape(192, 64)).toEqual({ WG: 16, C: 12, colGroups: 1, KC: 64 });
    expect(bcastShape(256, 64)).toEqual({ WG: 16, C: 8, colGroups: 2, KC: 64 });
    expect(bcastShape(64, 256)).toEqual({ WG: 8, C: 8, colGroups: 1, KC: 88 });
  });

  it('splits the rows of a few models over more workgroups, never below 8 rows each', () => {
    expect(bcastRowGroups(512, 1, 1)).toBe(16);
    expect(bcastRowGroups(512, 4, 2)).toBe(2);
    expect(bcastRowGroups(512, 170, 1)).toBe(1);
    expect(bcastRowGroups(26, 1, 1)).toBe(4);
  });

  it('is chosen on SwiftShader for jobs of BCAST_MIN_FLOPS and more, never on GPUs', () => {
    const cpu = { isFallback: true };
    expect(gemmFor(cpu).strategy).toBe('register');
    expect(gemmFor(cpu, BCAST_MIN_FLOPS - 1).strategy).toBe('register');
    expect(gemmFor(cpu, BCAST_MIN_FLOPS).strategy).toBe('bcast');
    expect(gemmFor({ isFallback: false }, 1e15).strategy).toBe('slab');
  });
});
