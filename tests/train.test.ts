/**
 * GPU AdamW against the reference step (src/train/adamw.ts), and the
 * training engine: determinism, resume, and that it learns.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache, encodeDispatches } from '../src/gpu/kernel.ts';
import { readFloats, storageBuffer } from '../src/gpu/buffers.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { ADAMW_DEFAULTS, adamwStep, clipCoefficient, gradNorm } from '../src/train/adamw.ts';
import { GpuAdamW } from '../src/train/gpu-adamw.ts';
import { Rng } from '../src/util/rng.ts';

const ODD: GPTConfig = { vocab_size: 37, block_size: 13, n_layer: 2, n_head: 3, n_embd: 48, bias: true, activation: 'gelu_tanh', tie_embeddings: false };

function maxRelErr(gpu: Float32Array, ref: Float32Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(gpu[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return err / scale;
}

describe('AdamW on the GPU', () => {
  const cases: Array<[string, number, number]> = [
    ['step 1 from zero moments, clipping off', 1, 0],
    ['step 7 from non-zero moments, the gradient clipped to norm 0.5', 7, 0.5],
  ];
  for (const [name, step, gradClip] of cases) {
    it(name, async () => {
      const ctx = await nodeGpu();
      const layout = paramLayout(ODD);
      const rng = new Rng(step);
      const params = initParams(layout, 3);
      const grads = new Float32Array(layout.totalFloats);
      const m = new Float32Array(layout.totalFloats);
      const v = new Float32Array(layout.totalFloats);
      for (const t of layout.tensors) {
        for (let i = t.offset; i < t.offset + t.size; i++) {
          grads[i] = rng.normal() * 0.05;
          if (step > 1) {
            m[i] = rng.normal() * 0.01;
            v[i] = rng.uniform() * 1e-4;
          }
        }
      }
      const hp = { ...ADAMW_DEFAULTS, lr: 3e-3 };
      const norm = gradNorm(layout, grads);
      if (gradClip > 0) expect(norm).toBeGreaterThan(gradClip * 2);
      const pBuf = storageBuffer(ctx, 'params', params);
      const gBuf = storageBuffer(ctx, 'grad', grads);
      const opt = await GpuAdamW.create(ctx, new KernelCache(ctx), layout, pBuf, gBuf, { ...ADAMW_DEFAULTS, gradClip });
      opt.setMoments(m, v);
      opt.prepare(step, hp.lr);
      const enc = ctx.device.createCommandEncoder();
      encodeDispatches(enc, opt.dispatches, 'adamw');
      ctx.device.queue.submit([enc.finish()]);
      const gpuParams = await readFloats(ctx, pBuf);
      const gpu = await opt.readMoments();
      const gpuNormSq = (await readFloats(ctx, opt.normSq))[0]!;

      adamwStep(layout, params, grads, m, v, step, hp, clipCoefficient(norm, gradClip));
      expect(Math.abs(Math.sqrt(gpuNormSq) - norm) / norm).toBeLessThan(1e-6);
      expect(maxRelErr(gpu.m, m)).toBeLessThan(1e-5);
      expect(maxRelErr(gpu.v, v)).toBeLessThan(1e-5);
      // The update itself is ~lr per element: compare the change, not just the weights.
      const initial = initParams(layout, 3);
      const refDelta = params.map((p, i) => p - initial[i]!);
      const gpuDelta = gpuParams.map((p, i) => p - initial[i]!);
      expect(maxRelErr(gpuDelta, refDelta)).toBeLessThan(1e-3);
      expect(maxRelErr(gpuParams, params)).toBeLessThan(1e-6);
      const inTensor = new Uint8Array(layout.totalFloats);
      for (const t of layout.tensors) inTensor.fill(1, t.offset, t.offset + t.size);
      expect(gpuParams.every((p, i) => inTensor[i] === 1 || p === 0)).toBe(true);
      opt.destroy();
      pBuf.destroy();
      gBuf.destroy();
    });
  }
});
