/**
 * The naive per-point baseline against the batched grid evaluator and the
 * TypeScript reference, on an odd-sized model: the benchmark compares their
 * speeds only because their values agree.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { forward } from '../src/model/reference.ts';
import { makeDirections } from '../src/landscape/directions.ts';
import { GridEvaluator } from '../src/landscape/grid.ts';
import { NaiveEvaluator, pointWeights } from '../src/landscape/naive.ts';
import { Rng } from '../src/util/rng.ts';

const cfg: GPTConfig = { vocab_size: 37, block_size: 13, n_layer: 2, n_head: 3, n_embd: 48, bias: true, activation: 'gelu', tie_embeddings: false };
const layout = paramLayout(cfg);
const B = 3;
const T = 13;

function setup() {
  const centre = initParams(layout, 11);
  const { d1, d2 } = makeDirections(layout, centre, { kind: 'filter', seed: 4, includeVectors: true });
  const rng = new Rng(9);
  const idx = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { weights: { centre, d1, d2 }, batch: { B, T, idx, targets, mask: null } };
}

// Asymmetric, non-grid points: a swapped a/b or a dropped direction shows.
const POINTS = [[0, 0], [0.75, -0.25], [-1, 0.5], [0.3, 1]] as const;

describe('naive WebGPU baseline', () => {
  it('materialises theta + a d1 + b d2 in float32', () => {
    const { weights } = setup();
    const w = pointWeights(weights.centre, weights.d1, weights.d2, 0.75, -0.25);
    for (const i of [0, 17, layout.totalFloats >> 1, layout.totalFloats - 1]) {
      expect(w[i]).toBeCloseTo(weights.centre[i]! + 0.75 * weights.d1[i]! - 0.25 * weights.d2[i]!, 6);
    }
    expect(w[layout.totalFloats - 1]).not.toBe(weights.centre[layout.totalFloats - 1]);
  });

  it('equals the batched grid evaluator and the reference at a few points (n_embd 48, 3 heads, vocab 37, T 13, untied)', async () => {
    const ctx = await nodeGpu();
    const kernels = new KernelCache(ctx);
    const s = setup();
    const coords = Float32Array.from(POINTS.flat());
    const naive = await NaiveEvaluator.create(ctx, kernels, layout, s.batch, s.weights, { metric: 'ce' });
    const grid = await GridEvaluator.create(ctx, kernels, layout, s.batch, s.weights, { metric: 'ce', totalPoints: POINTS.length });
    try {
      const naiveValues = await naive.values(coords);
      const gridValues = await grid.values(coords);
      const distinct = new Set(Array.from(naiveValues, (v) => v.toFixed(3)));
      expect(distinct.size).toBe(POINTS.length);
      for (let k = 0; k < POINTS.length; k++) {
        const [a, b] = POINTS[k]!;
        const w = new Float64Array(layout.totalFloats);
        for (let i = 0; i < w.length; i++) w[i] = s.weights.centre[i]! + Math.fround(a) * s.weights.d1[i]! + Math.fround(b) * s.weights.d2[i]!;
        const ref = forward(layout, w, s.batch.idx, s.batch.targets, B, T).loss;
        expect(Math.abs(naiveValues[k]! - gridValues[k]!) / ref, `point ${a},${b}: naive vs grid`).toBeLessThan(1e-5);
        expect(Math.abs(naiveValues[k]! - ref) / ref, `point ${a},${b}: naive vs reference`).toBeLessThan(1e-5);
      }
    } finally {
      naive.destroy();
      grid.destroy();
    }
  });
});
