/**
 * The WGSL forward pass against the TypeScript reference (src/model/reference.ts)
 * on friendly and odd configurations.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { readFloats } from '../src/gpu/buffers.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { forward } from '../src/model/reference.ts';
import { ForwardPlan } from '../src/model/gpu-forward.ts';
import { type GemmStrategy } from '../shaders/linear.ts';
import { Rng } from '../src/util/rng.ts';

function config(over: Partial<GPTConfig>): GPTConfig {
  return { vocab_size: 37, block_size: 16, n_layer: 2, n_head: 3, n_embd: 48, bias: true, activation: 'gelu', tie_embeddings: true, ...over };
}

/** Parameters with every tensor non-trivial (LayerNorm weights and biases away from 1 and 0). */
function randomParams(cfg: GPTConfig, seed: number): Float32Array {
  const layout = paramLayout(cfg);
  const p = initParams(layout, seed);
  const rng = new Rng(seed + 1);
  for (const t of layout.tensors) {
    for (let i = 0; i < t.size; i++) {
      if (t.role === 'vector') p[t.offset + i] = (t.name.endsWith('.weight') ? 1 : 0) + 0.3 * rng.normal();
      else p[t.offset + i] = p[t.offset + i]! * 5; // larger weights: a more varied, harder-to-match forward
    }
  }
  return p;
}

function randomTokens(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(V));
}

async function gpuLoss(
  cfg: GPTConfig, params: Float32Array, idx: Int32Array, targets: Int32Array, B: number, T: number, strategy: GemmStrategy,
): Promise<{ loss: number; logits: Float32Array }> {
  const ctx = await nodeGpu();
  const layout = paramLayout(cfg);
  const plan = await ForwardPlan.create(ctx, new KernelCache(ctx), layout, { mode: 'plain', points: 1, B, T, metric: 'ce', keepActivations: true, strategy });
  plan.setParams(params);
  plan.setBatch({ B, T, idx, targets, mask: null });
  const enc = ctx.device.createCommandEncoder();
  plan.encode(enc);
  ctx.device.queue.submit([enc.finish()]);
  const loss = (await readFloats(ctx, plan.output, 0, 1))[0]!;
  const logits = await readFloats(ctx, plan.activations.get('logits')!, 0, B * T * cfg.vocab_size);
  plan.destroy();
  return { loss, logits };
}

const CASES: Array<[string, Partial<GPTConfig>, number, number, GemmStrategy]> = [
  ['friendly C64 h4 V64 T16', { n_embd: 64, n_head: 4, vocab_size: 64, block_size: 16 }, 2, 16, 'register'],
  ['odd C48 h3 V37 T13, 3 layers', { n_layer: 3 }, 2, 13, 'register'],
  ['odd C48 h3 V37 T13, 3 layers, slab GEMM', { n_layer: 3 }, 2, 13, 'slab'],
  ['untied, bias false, gelu_tanh', { tie_embeddings: false, bias: false, activation: 'gelu_tanh' }, 3, 13, 'register'],
  ['C30 h5 (in_features not a multiple of 4), V37 T7', { n_embd: 30, n_head: 5 }, 2, 7, 'register'],
  ['C30 h5 (in_features not a multiple of 4), V37 T7, slab GEMM', { n_embd: 30, n_head: 5 }, 2, 7, 'slab'],
  ['C30 h5 (in_features not a multiple of 4), V37 T7, tiled GEMM', { n_embd: 30, n_head: 5 }, 2, 7, 'tiled'],
  // bcast: the MLP projections reduce in several zero-padded passes (C64: 256 = 3 x 88 - 8, C48: 192 = 2 x 96).
  ['friendly C64 h4 V64 T16, bcast GEMM', { n_embd: 64, n_head: 4, vocab_size: 64, block_size: 16 }, 2, 16, 'bcast'],
  ['odd C48 h3 V37 T13, 3 layers, bcast GEMM', { n_layer: 3 }, 2, 13, 'bcast'],
  ['C30 h5 (in_features not a multiple of 4), V37 T7, bcast GEMM', { n_embd: 30, n_head: 5 }, 2, 7, 'bcast'],
  // subgroup: passes of at most 256 / C in_features with vec4 loads (C48: 48 in 2 passes of 24, 192 in 5
  // of 40, the last padded by 8); C30 reads its 30 inputs as scalars, its 120 in 4 vec4 passes of 32 (padded).
  ['friendly C64 h4 V64 T16, subgroup GEMM', { n_embd: 64, n_head: 4, vocab_size: 64, block_size: 16 }, 2, 16, 'subgroup'],
  ['odd C48 h3 V37 T13, 3 layers, subgroup GEMM', { n_layer: 3 }, 2, 13, 'subgroup'],
  ['untied, bias false, gelu_tanh, subgroup GEMM', { tie_embeddings: false, bias: false, activation: 'gelu_tanh' }, 3, 13, 'subgroup'],
  ['C30 h5 (in_features not a multiple of 4), V37 T7, subgroup GEMM', { n_embd: 30, n_head: 5 }, 2, 7, 'subgroup'],
];

describe('WGSL forward vs TypeScript reference', () => {
  for (const [name, over, B, T, strategy] of CASES) {
    it(name, async () => {
      const cfg = config(over);
      const layout = paramLayout(cfg);
      const params = randomParams(cfg, 7);
      const idx = randomTokens(B * T, cfg.vocab_size, 11);
      const targets = randomTokens(B * T, cfg.vocab_size, 12);
      const ref = forward(layout, params, idx, targets, B, T);
      const gpu = await gpuLoss(cfg, params, idx, targets, B, T, strategy);
      // SwiftShader offers subgroups: without them the subgroup cases would quietly run bcast
      if (strategy === 'subgroup') expect((await nodeGpu()).device.features.has('subgroups')).toBe(true);
      expect(Math.abs(gpu.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
      let maxErr = 0;
      let maxAbs = 0;
      for (let i = 0; i < ref.logits.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(gpu.logits[i]! - ref.logits[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(ref.logits[i]!));
      }
      expect(maxErr / maxAbs).toBeLessThan(1e-5);
      // the loss is far from trivial: not ln(V), so a broken forward cannot pass by accident
      expect(Math.abs(ref.loss - Math.log(cfg.vocab_size))).toBeGreaterThan(0.05);
    });
  }
});

describe('a tuned forward (the tile of each layer chosen by timing, as on GPUs)', () => {
  it('times every candidate tile on every Linear layer, runs the fastest, and gives the untuned plan\'s values bit for bit', async () => {
    const ctx = await nodeGpu();
    const cfg = config({ n_layer: 1 });
    const layout = paramLayout(cfg);
    const params = randomParams(cfg, 3);
    const [B, T] = [2, 13];
    const idx = randomTokens(B * T, cfg.vocab_size, 4);
    const targets = randomTokens(B * T, cfg.vocab_size, 5);
    const ref = forward(layout, params, idx, targets, B, T);
    const tuneTiles = [{ TM: 4, TN: 4, WX: 8, WY: 8 }, { TM: 8, TN: 4, WX: 4, WY: 8, BK: 8 }];
    const kernels = new KernelCache(ctx);
    const opts = { mode: 'plain' as const, points: 1, B, T, metric: 'ce' as const, keepActivations: false };
    const run = async (plan: ForwardPlan): Promise<{ loss: number; logits: Float32Array }> => {
      plan.setParams(params);
      plan.setBatch({ B, T, idx, targets, mask: null });
      const enc = ctx.device.createCommandEncoder();
      plan.encode(enc);
      ctx.device.queue.submit([enc.finish()]);
      const out = { loss: (await readFloats(ctx, plan.output, 0, 1))[0]!, logits: await readFloats(ctx, plan.activations.get('logits')!, 0, B * T * cfg.vocab_size) };
      plan.destroy();
      return out;
    };

    const plan = await ForwardPlan.create(ctx, kernels, layout, { ...opts, tune: true, tuneTiles });
    expect(plan.tuned).toBe(true);
    // c_attn, attention projection, c_fc, MLP projection, output head
    expect(plan.gemms.map((g) => g.weight)).toEqual([
      'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_proj.weight', 'transformer.h.0.mlp.c_fc.weight',
      'transformer.h.0.mlp.c_proj.weight', 'transformer.wte.weight',
    ]);
    // c_attn: 26 rows x 48 in_features x 144 columns, one point
    expect(plan.gemms[0]!.flops).toBe(2 * B * T * 48 * 144);
    const gemms = plan.gemms.map((g) => ({ ...g }));
    for (const g of gemms) {
      const shape = (kernel: string): string => /^linear\/tiled\/plain\/(?:v4|s)\/(\d+x\d+\/\d+x\d+\/bk\d+)/.exec(kernel)?.[1] ?? kernel;
      expect(g.trials.map((t) => shape(t.kernel)).sort()).toEqual(tuneTiles.map((t) => `${t.TM}x${t.TN}/${t.WX}x${t.WY}/bk${t.BK ?? 16}`).sort());
      expect(g.kernel).toBe(g.trials[0]!.kernel);
      for (let i = 1; i < g.trials.length; i++) expect(g.trials[i]!.ms).toBeGreaterThanOrEqual(g.trials[i - 1]!.ms);
      expect(g.trials.every((t) => t.ms > 0)).toBe(true);
    }
    const tuned = await run(plan);
    expect(Math.abs(tuned.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);

    // the same shapes again: the device remembers the timings instead of tuning twice
    const again = await ForwardPlan.create(ctx, kernels, layout, { ...opts, tune: true, tuneTiles });
    expect(again.gemms).toEqual(gemms);
    again.destroy();
    // an explicit strategy is not tuned; every tile sums in the same order, so the values are the same bit for bit
    const fixed = await ForwardPlan.create(ctx, kernels, layout, { ...opts, strategy: 'tiled', tile: tuneTiles[0]! });
    expect(fixed.tuned).toBe(false);
    expect(fixed.gemms.every((g) => g.trials.length === 0 && g.kernel.startsWith('linear/tiled/'))).toBe(true);
    const untuned = await run(fixed);
    expect(untuned.loss).toBe(tuned.loss);
    expect(untuned.logits).toEqual(tuned.logits);
    // while a GEMM that sums in vec4 lanes does not
    const register = await run(await ForwardPlan.create(ctx, kernels, layout, { ...opts, strategy: 'register' }));
    expect(register.logits).not.toEqual(tuned.logits);
  });
});
