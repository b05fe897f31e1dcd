import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/model/config.ts';
import { compareLosses, gridPointFlops, gridRatios, gridTable, meetsTargets, profileTable, TARGETS, trainFlopsPerToken } from '../bench/report.ts';
import { byKernel } from '../bench/profile.ts';
import { describeTuning } from '../bench/harness.ts';
import { type Dispatch } from '../src/gpu/kernel.ts';

const cfg = (o: Record<string, unknown>) => parseConfig({ block_size: 32, bias: true, ...o });

describe('bench FLOP counting', () => {
  it('counts a tiny model by hand', () => {
    // C=2, L=1, V=3, B=1, T=2: matmul 2*2 tokens*12*4 = 192; attention 2*2*(1+2 pairs)*2 = 24; lm head 2*2*3*2 = 24.
    const f = gridPointFlops(cfg({ vocab_size: 3, n_layer: 1, n_head: 1, n_embd: 2 }), 1, 2);
    expect(f).toEqual({ matmul: 192, attention: 24, lmHead: 24, total: 240 });
  });

  it('gives issue 6\'s ~1.1e8 FLOPs per point for the 106K-parameter GPT on 16x32 tokens', () => {
    const f = gridPointFlops(cfg({ vocab_size: 64, n_layer: 2, n_head: 4, n_embd: 64 }), 16, 32);
    // 512 tokens: 2*512*2*12*64^2 + 2*2*2*16*528*64 + 2*512*64*64
    expect(f.total).toBe(100_663_296 + 4_325_376 + 4_194_304);
    expect(f.total / 1e8).toBeCloseTo(1.1, 1);
  });

  it('counts a training token as three forwards of it', () => {
    const c = cfg({ vocab_size: 37, n_layer: 3, n_head: 3, n_embd: 48 });
    expect(trainFlopsPerToken(c, 13)).toBeCloseTo((3 * gridPointFlops(c, 5, 13).total) / (5 * 13), 6);
  });
});

describe('bench ratios and checks', () => {
  const c = cfg({ vocab_size: 64, n_layer: 2, n_head: 4, n_embd: 64 });
  const flops = gridPointFlops(c, 16, 32).total;
  const base = { name: 'c', config: c, params: 106240, B: 16, T: 32, nx: 33, ny: 33, ceilingGflops: 8 };

  it('derives GFLOP/s and speed-ups from points/s and marks the targets', () => {
    const r = gridRatios({ ...base, engine: 40, naive: 1, torchLoop: 27, torchBatched: null });
    expect(r.engineGflops).toBeCloseTo((40 * flops) / 1e9, 9);
    expect(r.ofCeiling).toBeCloseTo((40 * flops) / 8e9, 9);
    expect(r.ceilingPointsPerSecond).toBeCloseTo(8e9 / flops, 9);
    expect(r.vsNaive).toBe(40);
    expect(r.vsTorchBatched).toBeNull();
    expect(meetsTargets(r, TARGETS.software)).toEqual({ ofCeiling: true, vsNaive: true, vsTorchLoop: false, vsTorchBatched: null });
    const table = gridTable([{ ...base, engine: 40, naive: 1, torchLoop: 27, torchBatched: null }], TARGETS.software).split('\n');
    expect(table).toHaveLength(3);
    expect(table[2]).toMatch(/^c\s/);
    expect(table[2]).toContain('1.48 !');
  });

  it('compares losses, treating equal non-finite values as agreeing', () => {
    expect(compareLosses([1, NaN, Infinity], [1.00001, NaN, Infinity])).toMatchObject({ points: 3, mismatches: [], ok: true });
    const bad = compareLosses([2, 5, NaN, 3], [2.01, Infinity, 1, 3]);
    expect(bad.mismatches).toEqual([0, 1, 2]);
    expect(bad.ok).toBe(false);
    expect(bad.maxAbsDiff).toBe(Infinity);
    expect(compareLosses([1, 2, 3], [1])).toMatchObject({ points: 1, ok: true });
  });
});

describe('bench --profile tables', () => {
  it('sums the dispatches of each kernel, the slowest kernel first, and prints shares of the total', () => {
    const d = (name: string): Dispatch => ({ kernel: { name } as Dispatch['kernel'], bindGroup: {} as GPUBindGroup, workgroups: [1, 1, 1] });
    const kernels = byKernel([d('ln'), d('gemm'), d('ln'), d('loss')], [1.5, 4, 0.5, 2]);
    expect(kernels).toEqual([{ kernel: 'gemm', dispatches: 1, ms: 4 }, { kernel: 'ln', dispatches: 2, ms: 2 }, { kernel: 'loss', dispatches: 1, ms: 2 }]);
    const lines = profileTable({ kernels, totalMs: 8, dispatches: 4 }).split('\n');
    expect(lines[0]).toMatch(/^kernel\s+dispatches\s+GPU ms\s+share$/);
    expect(lines[2]).toMatch(/^gemm\s+1\s+4\.000\s+50\.0%$/);
    expect(lines[3]).toMatch(/^ln\s+2\s+2\.000\s+25\.0%$/);
    expect(lines.at(-1)).toMatch(/^all\s+4\s+8\.000\s+100\.0%$/);
    expect(() => byKernel([d('ln')], [1, 2])).toThrow(/2 times for 1 dispatches/);
  });
});

describe('bench: a tuned layer in one line', () => {
  it('names the winner and every other candidate with its time, fastest first', () => {
    const g = {
      weight: 'transformer.h.0.attn.c_attn.weight', kernel: 'linear/tiled/perturbed/v4/4x4/16x16/bk16/b', flops: 2 * 512 * 64 * 192 * 100,
      trials: [
        { kernel: 'linear/tiled/perturbed/v4/4x4/16x16/bk16/b', ms: 0.1234 },
        { kernel: 'linear/tiled/perturbed/v4/8x8/8x8/bk16/b', ms: 0.31 },
      ],
    };
    // 1.26e9 FLOPs: in 0.1234 ms 10,197 GFLOP/s, in 0.31 ms 4,059
    expect(describeTuning(g)).toBe('transformer.h.0.attn.c_attn.weight: tiled/perturbed/v4/4x4/16x16/bk16/b 0.123 ms 10197 GFLOP/s'
      + ' (then tiled/perturbed/v4/8x8/8x8/bk16/b 0.310 ms 4059)');
    expect(describeTuning({ ...g, trials: [] })).toBe('transformer.h.0.attn.c_attn.weight: tiled/perturbed/v4/4x4/16x16/bk16/b');
  });
});
