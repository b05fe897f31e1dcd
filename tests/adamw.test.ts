import { describe, expect, it } from 'vitest';
import { type TensorSpec } from '../src/model/params.ts';
import { ADAMW_DEFAULTS, adamwStep, appliesWeightDecay, clipCoefficient, gradNorm } from '../src/train/adamw.ts';
import { lrAt } from '../src/train/schedule.ts';
import { sumChunk } from '../src/train/gpu-adamw.ts';
import { SUMSQ_WG } from '../shaders/adamw.ts';

/**
 * A hand-made layout of a few scalars: a 1x2 matrix `w` at 0 (decayed) and a
 * 2-vector `b` at 4 (not decayed), with padding at 2, 3, 6, 7.
 */
const layout: { tensors: TensorSpec[] } = {
  tensors: [
    { name: 'w', shape: [1, 2], offset: 0, size: 2, role: 'matrix', layer: -1 },
    { name: 'b', shape: [2], offset: 4, size: 2, role: 'vector', layer: -1 },
  ],
};
const hp = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

function expectF32(actual: ArrayLike<number>, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `entry ${i}`).toBeCloseTo(expected[i]!, 6);
}

describe('AdamW', () => {
  it('has nanoGPT\'s defaults and decays matrices and embeddings only', () => {
    expect(ADAMW_DEFAULTS).toEqual({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    const spec = (role: TensorSpec['role']): TensorSpec => ({ name: 'x', shape: [1], offset: 0, size: 1, role, layer: -1 });
    expect([appliesWeightDecay(spec('matrix')), appliesWeightDecay(spec('embedding')), appliesWeightDecay(spec('vector'))])
      .toEqual([true, true, false]);
  });

  it('takes two steps as computed by hand from the PyTorch formula', () => {
    const params = Float32Array.from([0.5, -2, 0, 0, -1, 0.25, 0, 0]);
    const m = new Float32Array(8);
    const v = new Float32Array(8);

    // Step 1, gradients w: [0.2, 0.03], b: [-0.4, 1e-8].
    // m = 0.1 g, v = 0.05 g^2; step size lr / (1 - 0.9) = 0.1; sqrt(v) / sqrt(1 - 0.95) = |g|.
    adamwStep(layout, params, Float32Array.from([0.2, 0.03, 0, 0, -0.4, 1e-8, 0, 0]), m, v, 1, hp);
    expectF32(m, [0.02, 0.003, 0, 0, -0.04, 1e-9, 0, 0]);
    expectF32(v, [0.002, 0.000045, 0, 0, 0.008, 5e-18, 0, 0]);
    expectF32(params, [
      0.5 * (1 - 0.01 * 0.1) - (0.1 * 0.02) / (0.2 + 1e-8), //   decayed: 0.4995 - 0.0099999995 = 0.4895000005
      -2 * (1 - 0.01 * 0.1) - (0.1 * 0.003) / (0.03 + 1e-8), //  -1.998 - 0.0099999967 = -2.0079999967
      0, 0,
      -1 - (0.1 * -0.04) / (0.4 + 1e-8), //                      not decayed: -0.99000000025
      0.25 - (0.1 * 1e-9) / (1e-8 + 1e-8), //                    eps matters at |g| = eps: 0.25 - 0.005 = 0.245
      0, 0,
    ]);

    // Step 2, gradients w: [-0.1, 0.03], b: [0, 0].
    // m = 0.9 m + 0.1 g = [0.008, 0.0057, -0.036, 9e-10]; v = 0.95 v + 0.05 g^2 = [0.0024, 0.00008775, 0.0076, 4.75e-18].
    adamwStep(layout, params, Float32Array.from([-0.1, 0.03, 0, 0, 0, 0, 0, 0]), m, v, 2, hp);
    const m2 = [0.9 * 0.02 + 0.1 * -0.1, 0.9 * 0.003 + 0.1 * 0.03, 0.9 * -0.04, 0.9 * 1e-9];
    const v2 = [0.95 * 0.002 + 0.05 * 0.01, 0.95 * 0.000045 + 0.05 * 0.0009, 0.95 * 0.008, 0.95 * 5e-18];
    expectF32(m, [m2[0]!, m2[1]!, 0, 0, m2[2]!, m2[3]!, 0, 0]);
    expectF32(v, [v2[0]!, v2[1]!, 0, 0, v2[2]!, v2[3]!, 0, 0]);
    // Bias corrections at step 2: 1 - 0.9^2 = 0.19 and 1 - 0.95^2 = 0.0975.
    const update = (j: number): number => ((0.01 / 0.19) * m2[j]!) / (Math.sqrt(v2[j]! / 0.0975) + 1e-8);
    expectF32(params, [
      0.4895000005 * 0.999 - update(0), // 0.48632680619
      -2.0079999967 * 0.999 - update(1), // -2.01599199334
      0, 0,
      -0.99000000025 - update(2), // -0.98321352302
      0.245 - update(3), //             eps still matters: 0.245 - 0.0027898
      0, 0,
    ]);
  });

  it('scales the gradients by gradScale before use (the clip coefficient)', () => {
    const grads = Float32Array.from([0.2, -0.3, 0, 0, 0.5, 0.125, 0, 0]);
    const a = { p: Float32Array.from([1, 2, 0, 0, 3, 4, 0, 0]), m: new Float32Array(8), v: new Float32Array(8) };
    const b = { p: a.p.slice(), m: new Float32Array(8), v: new Float32Array(8) };
    adamwStep(layout, a.p, grads, a.m, a.v, 1, hp);
    adamwStep(layout, b.p, grads.map((g) => 2 * g), b.m, b.v, 1, hp, 0.5);
    expect(Array.from(b.p)).toEqual(Array.from(a.p));
    expect(Array.from(b.v)).toEqual(Array.from(a.v));
  });

  it('counts steps from 1', () => {
    const z = new Float32Array(8);
    expect(() => adamwStep(layout, z, z, z, z, 0, hp)).toThrow(/counted from 1/);
  });
});

describe('gradient clipping', () => {
  it('measures the global L2 norm over all tensors', () => {
    expect(gradNorm(layout, [3, 0, 0, 0, 0, 4, 0, 0])).toBe(5);
  });

  it('scales by maxNorm / (norm + 1e-6) above maxNorm, 1 below it, and 1 when off', () => {
    expect(clipCoefficient(10, 1)).toBe(1 / (10 + 1e-6));
    expect(clipCoefficient(0.5, 1)).toBe(1);
    expect(clipCoefficient(1e6, 0)).toBe(1);
  });
});

describe('learning-rate schedule', () => {
  const s = { lr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-4 };

  it('warms up linearly from lr / (warmup + 1) to lr', () => {
    expect(lrAt(0, s)).toBeCloseTo(1e-3 / 11, 15);
    expect(lrAt(9, s)).toBeCloseTo(1e-3 * 10 / 11, 15);
    expect(lrAt(10, s)).toBeCloseTo(1e-3, 15);
  });

  it('decays on a cosine to minLr at totalSteps and stays there', () => {
    // Half-way through the decay cos(pi/2) = 0: the mean of lr and minLr.
    expect(lrAt(60, s)).toBeCloseTo(5.5e-4, 15);
    // A quarter of the way: minLr + 0.5 (1 + cos(pi/4)) (lr - minLr).
    expect(lrAt(35, s)).toBeCloseTo(1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4, 15);
    expect(lrAt(110, s)).toBe(1e-4);
    expect(lrAt(500, s)).toBe(1e-4);
    for (let t = 10; t < 110; t++) expect(lrAt(t + 1, s)).toBeLessThan(lrAt(t, s));
  });

  it('starts at lr without warm-up', () => {
    expect(lrAt(0, { ...s, warmupSteps: 0 })).toBe(1e-3);
  });
});

describe('the gradient norm\'s chunks (GpuAdamW)', () => {
  it('are multiples of the workgroup that cover the gradient: at most 8 on a CPU adapter, at most 65,535 and at least 1,024 floats on a GPU', () => {
    for (const count of [1, 1000, 27_840, 105_000, 1_016_192, 300_000_000]) {
      for (const cpu of [true, false]) {
        const chunk = sumChunk(count, cpu);
        const chunks = Math.ceil(count / chunk);
        expect(chunk % SUMSQ_WG).toBe(0);
        expect(chunk).toBeGreaterThanOrEqual(SUMSQ_WG * 16);
        expect(chunks * chunk).toBeGreaterThanOrEqual(count);
        expect(chunks).toBeLessThanOrEqual(cpu ? 8 : 65535);
        // as few floats a chunk as those bounds allow
        if (chunk > SUMSQ_WG * 16) expect(Math.ceil(count / (chunk - SUMSQ_WG))).toBeGreaterThan(cpu ? 8 : 65535);
      }
    }
    expect(sumChunk(105_000, false)).toBe(1024);
    expect(Math.ceil(105_000 / sumChunk(105_000, true))).toBe(8);
  });
});
