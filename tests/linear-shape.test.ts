/** The `bcast` and `subgroup` GEMMs' shapes (shaders/linear.ts) and when they are chosen. */
import { describe, expect, it } from 'vitest';
import {
  BCAST_MIN_FLOPS, BCAST_UNROLL, SUBGROUP_UNROLL, TILED_CANDIDATES, TILED_DEFAULT, TUNE_MIN_FLOPS, bcastRowGroups, tiledBytes, bcastShape, gemmCandidates, gemmFor,
} from '../shaders/linear.ts';

describe('bcast GEMM shapes', () => {
  for (const [strategy, act, maxC, unroll] of [
    ['bcast', false, 12, BCAST_UNROLL], ['bcast', true, 12, BCAST_UNROLL],
    ['subgroup', false, 8, SUBGROUP_UNROLL], ['subgroup', true, 8, SUBGROUP_UNROLL],
  ] as const) {
    it(`cover every output column and in_feature, within the unroll budget (${strategy}${act ? ', with an activation' : ''})`, () => {
      for (const outDim of [1, 4, 37, 48, 64, 144, 192, 256, 384, 512, 1000]) {
        for (const inDim of [1, 13, 30, 48, 64, 192, 256, 512, 1024]) {
          const s = bcastShape(outDim, inDim, strategy, act);
          expect(s.WG % 4).toBe(0);
          expect(s.WG).toBeLessThanOrEqual(16);
          expect(s.C).toBeLessThanOrEqual(maxC);
          expect(s.colGroups * s.WG * s.C).toBeGreaterThanOrEqual(outDim);
          // no column group is left without columns
          expect((s.colGroups - 1) * s.WG * s.C).toBeLessThan(outDim);
          expect(s.KC * s.C).toBeLessThanOrEqual(Math.max(unroll, s.C * 4));
          // subgroup lanes load vec4s at k0 = pass * KC: KC stays a multiple of 4
          expect(s.KC % 4 === 0 || s.KC === inDim).toBe(true);
          const passes = Math.ceil(inDim / s.KC);
          expect(passes * s.KC).toBeGreaterThanOrEqual(inDim);
          expect((passes - 1) * s.KC).toBeLessThan(inDim);
        }
      }
    });
  }

  it('has the measured shapes for the reference model', () => {
    expect(bcastShape(192, 64)).toEqual({ WG: 16, C: 12, colGroups: 1, KC: 64 });
    expect(bcastShape(256, 64)).toEqual({ WG: 16, C: 8, colGroups: 2, KC: 64 });
    expect(bcastShape(64, 256)).toEqual({ WG: 8, C: 8, colGroups: 1, KC: 88 });
    expect(bcastShape(192, 64, 'subgroup')).toEqual({ WG: 16, C: 6, colGroups: 2, KC: 32 });
    expect(bcastShape(256, 64, 'subgroup')).toEqual({ WG: 16, C: 8, colGroups: 2, KC: 32 });
    expect(bcastShape(64, 256, 'subgroup')).toEqual({ WG: 8, C: 8, colGroups: 1, KC: 32 });
    // with GELU: one pass of 4 columns (the tiny model's 32 inputs take 8), two where 4 columns do not fit
    expect(bcastShape(256, 64, 'subgroup', true)).toEqual({ WG: 16, C: 4, colGroups: 4, KC: 64 });
    expect(bcastShape(128, 32, 'subgroup', true)).toEqual({ WG: 16, C: 8, colGroups: 1, KC: 32 });
    expect(bcastShape(512, 128, 'subgroup', true)).toEqual({ WG: 16, C: 4, colGroups: 8, KC: 64 });
  });

  it('splits the rows of a few models over more workgroups, never below 8 rows each', () => {
    expect(bcastRowGroups(512, 1, 1)).toBe(16);
    expect(bcastRowGroups(512, 4, 2)).toBe(2);
    expect(bcastRowGroups(512, 170, 1)).toBe(1);
    expect(bcastRowGroups(26, 1, 1)).toBe(4);
    // the backward's dW asks for fewer: 8 workgroups in all
    expect(bcastRowGroups(256, 1, 1, 8)).toBe(8);
    expect(bcastRowGroups(64, 1, 2, 8)).toBe(4);
  });

  it('is chosen on SwiftShader for jobs of BCAST_MIN_FLOPS and more (subgroup where the adapter has subgroups), never on GPUs', () => {
    const cpu = { isFallback: true, features: ['timestamp-query'] };
    expect(gemmFor(cpu).strategy).toBe('register');
    expect(gemmFor(cpu, BCAST_MIN_FLOPS - 1).strategy).toBe('register');
    expect(gemmFor(cpu, BCAST_MIN_FLOPS).strategy).toBe('bcast');
    const sg = { isFallback: true, features: ['subgroups', 'timestamp-query'] };
    expect(gemmFor(sg, BCAST_MIN_FLOPS - 1).strategy).toBe('register');
    expect(gemmFor(sg, BCAST_MIN_FLOPS).strategy).toBe('subgroup');
    expect(gemmFor({ isFallback: false, features: ['subgroups'] }, 1e15).strategy).toBe('tiled');
  });
});

describe('GEMM tuning on GPUs', () => {
  it('is asked for on GPUs for jobs of TUNE_MIN_FLOPS and more, never on CPU adapters', () => {
    const gpu = { isFallback: false, features: ['timestamp-query'] };
    expect(gemmFor(gpu).tune).toBe(false);
    expect(gemmFor(gpu, TUNE_MIN_FLOPS - 1).tune).toBe(false);
    expect(gemmFor(gpu, TUNE_MIN_FLOPS)).toEqual({ strategy: 'tiled', tile: TILED_DEFAULT, tune: true });
    expect(gemmFor(gpu).strategy).toBe('tiled');
    expect(gemmFor({ isFallback: true, features: ['subgroups', 'timestamp-query'] }, 1e15).tune).toBe(false);
  });

  it('tries every tiled tile whose workgroup memory fits', () => {
    const base = { mode: 'perturbed' as const, inDim: 256, vec4: true, bias: true, act: null, resid: true, savePre: false };
    const all = gemmCandidates(base, 16384);
    expect(all.map((c) => c.strategy)).toEqual(TILED_CANDIDATES.map(() => 'tiled'));
    expect(all.map((c) => c.tile)).toEqual(TILED_CANDIDATES);
    expect(all.every((c) => c.inDim === 256 && c.resid && c.bias && c.mode === 'perturbed')).toBe(true);
    // every candidate fits WebGPU's default limits: 16 KiB of workgroup memory, 256 invocations
    for (const t of TILED_CANDIDATES) {
      expect(tiledBytes(t)).toBeLessThanOrEqual(16384);
      expect(t.WX * t.WY).toBeLessThanOrEqual(256);
    }
    // 8x8 tiles of 16x16 invocations: 16 in_features of 128 rows and 128 columns, 16 KiB
    expect(tiledBytes({ TM: 8, TN: 8, WX: 16, WY: 16 })).toBe(16384);
    expect(gemmCandidates(base, 16383).length).toBe(TILED_CANDIDATES.length - 1);
    expect(gemmCandidates(base, 16384, [{ TM: 4, TN: 4, WX: 8, WY: 8, BK: 64 }]).map((c) => c.tile.BK)).toEqual([64]);
  });
});
