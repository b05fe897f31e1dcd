/**
 * The batched GPU grid against the TypeScript reference, point by point, on a
 * non-square grid over an asymmetric range: a swapped axis, a transposed
 * store or an off-by-one row cannot pass.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { readFloats } from '../src/gpu/buffers.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { forward } from '../src/model/reference.ts';
import {
  DEFAULT_MEMORY_BUDGET, GPU_MEMORY_BUDGET, GridEvaluator, chooseChunkPoints, defaultMemoryBudget, gridCoords, linspace,
} from '../src/landscape/grid.ts';
import { forwardBytesPerPoint } from '../src/model/gpu-forward.ts';
import { Rng } from '../src/util/rng.ts';
import { randomPlane } from './helpers/runs.ts';

const cfg: GPTConfig = { vocab_size: 37, block_size: 13, n_layer: 1, n_head: 3, n_embd: 48, bias: true, activation: 'gelu', tie_embeddings: true };
const layout = paramLayout(cfg);
const B = 2;
const T = 13;

function setup(): { centre: Float32Array; d1: Float32Array; d2: Float32Array; idx: Int32Array; targets: Int32Array; mask: Float32Array } {
  const centre = initParams(layout, 3);
  const rng = new Rng(5);
  // different scales per direction so that swapping d1 and d2 changes the values
  const { d1, d2 } = randomPlane(rng, 0.05, 0.02, layout);
  const idx = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  const mask = new Float32Array(B * T).fill(1);
  return { centre, d1, d2, idx, targets, mask };
}

function referenceAt(s: ReturnType<typeof setup>, a: number, b: number, metricMask?: Float32Array): number {
  const w = new Float64Array(layout.totalFloats);
  for (let i = 0; i < w.length; i++) w[i] = Math.fround(s.centre[i]! + a * s.d1[i]! + b * s.d2[i]!);
  const r = forward(layout, w, s.idx, s.targets, B, T);
  if (!metricMask) return r.loss;
  let sum = 0;
  let wsum = 0;
  for (let n = 0; n < B * T; n++) {
    sum += metricMask[n]! * r.losses[n]!;
    wsum += metricMask[n]!;
  }
  return sum / wsum;
}

describe('batched grid evaluation', () => {
  for (const strategy of ['register', 'slab', 'tiled', 'bcast', 'subgroup'] as const) {
  it(`equals the reference on a 7x5 grid over alpha -0.5..1, beta -1..0.25, in chunks of 4 points (${strategy} GEMM)`, async () => {
    const ctx = await nodeGpu();
    const s = setup();
    const alpha = linspace(-0.5, 1, 7);
    const beta = linspace(-1, 0.25, 5);
    const grid = await GridEvaluator.create(ctx, new KernelCache(ctx), layout, { B, T, idx: s.idx, targets: s.targets, mask: null },
      { centre: s.centre, d1: s.d1, d2: s.d2 }, { metric: 'ce', chunkPoints: 4, strategy });
    const chunks: number[] = [];
    const values = await grid.values(gridCoords(alpha, beta), (r) => chunks.push(r.start));
    grid.destroy();
    expect(chunks).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32]);
    for (let j = 0; j < beta.length; j++) {
      for (let i = 0; i < alpha.length; i++) {
        const ref = referenceAt(s, alpha[i]!, beta[j]!);
        expect(Math.abs(values[j * alpha.length + i]! - ref) / ref).toBeLessThan(2e-5);
      }
    }
    // the landscape is not flat: a wrong coordinate would show
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(0.01);
  });
  }

  it('places points evaluated in any order at their grid positions (coarse lattice first)', async () => {
    const ctx = await nodeGpu();
    const s = setup();
    const alpha = linspace(-0.5, 1, 7);
    const beta = linspace(-1, 0.25, 5);
    const grid = await GridEvaluator.create(ctx, new KernelCache(ctx), layout, { B, T, idx: s.idx, targets: s.targets, mask: null },
      { centre: s.centre, d1: s.d1, d2: s.d2 }, { metric: 'ce', chunkPoints: 6 });
    const straight = await grid.values(gridCoords(alpha, beta));
    const all = gridCoords(alpha, beta);
    const order = Uint32Array.from({ length: 35 }, (_, k) => (k * 8) % 35); // a permutation: gcd(8, 35) = 1
    const coords = new Float32Array(70);
    order.forEach((g, k) => coords.set(all.subarray(2 * g, 2 * g + 2), 2 * k));
    const heights = grid.heightsBuffer(35);
    await grid.evaluate(coords, heights, 0, { indices: order, readBack: false });
    const placed = await readFloats(ctx, heights);
    heights.destroy();
    grid.destroy();
    expect(Array.from(placed)).toEqual(Array.from(straight));
  });

  it('takes the loss on chosen positions only when a mask is given', async () => {
    const ctx = await nodeGpu();
    const s = setup();
    const mask = new Float32Array(B * T);
    mask[T - 1] = 1; // the last position of each sequence (a single target token)
    mask[2 * T - 1] = 1;
    const grid = await GridEvaluator.create(ctx, new KernelCache(ctx), layout, { B, T, idx: s.idx, targets: s.targets, mask },
      { centre: s.centre, d1: s.d1, d2: s.d2 }, { metric: 'ce', totalPoints: 2 });
    const coords = new Float32Array([0.3, -0.7, -0.2, 0.1]);
    const values = await grid.values(coords);
    grid.destroy();
    expect(Math.abs(values[0]! - referenceAt(s, 0.3, -0.7, mask)) / values[0]!).toBeLessThan(2e-5);
    expect(Math.abs(values[1]! - referenceAt(s, -0.2, 0.1, mask)) / values[1]!).toBeLessThan(2e-5);
  });
});

describe('chunk size', () => {
  const adapter = (isFallback: boolean, binding: number) => ({
    adapter: {
      vendor: '', architecture: '', device: '', description: '', isFallback, features: [],
      limits: { maxStorageBufferBindingSize: binding, maxBufferSize: 2 * binding, maxComputeWorkgroupsPerDimension: 65535 },
    },
  });
  const { total, largest } = forwardBytesPerPoint(layout, B, T, false);

  it('fills 256 MiB of activations on CPU adapters and 1 GiB on GPUs, by default', () => {
    expect(defaultMemoryBudget({ isFallback: true })).toBe(DEFAULT_MEMORY_BUDGET);
    expect(defaultMemoryBudget({ isFallback: false })).toBe(GPU_MEMORY_BUDGET);
    const big = 2 ** 31;
    expect(chooseChunkPoints(adapter(true, big), layout, B, T)).toBe(Math.floor(DEFAULT_MEMORY_BUDGET / total));
    expect(chooseChunkPoints(adapter(false, big), layout, B, T)).toBe(Math.floor(GPU_MEMORY_BUDGET / total));
    expect(chooseChunkPoints(adapter(false, big), layout, B, T, 1e6)).toBe(Math.floor(1e6 / total));
  });

  it('keeps the largest tensor of a chunk within one binding, and the points within one dispatch', () => {
    expect(chooseChunkPoints(adapter(false, 10 * largest + 1), layout, B, T)).toBe(10);
    expect(chooseChunkPoints(adapter(false, 2 ** 31), layout, 1, 1)).toBe(65535);
    expect(() => chooseChunkPoints(adapter(false, largest - 1), layout, B, T)).toThrow(/more than the device allows/);
  });
});
