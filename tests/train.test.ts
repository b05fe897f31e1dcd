/**
 * GPU AdamW against the reference step (src/train/adamw.ts), the training
 * engine (determinism, resume), and a few steps of training against
 * PyTorch's nanoGPT loop.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/node/files.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { type Batch, batchFromTokens } from '../src/data/batch.ts';
import { type Dataset } from '../src/data/dataset.ts';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache, encodeDispatches } from '../src/gpu/kernel.ts';
import { readFloats, storageBuffer } from '../src/gpu/buffers.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { type ParamLayout, initParams, paramLayout } from '../src/model/params.ts';
import { makeDataset } from '../src/data/dataset.ts';
import {
  type Checkpoint, type TrainHyper, type TrainResult, type TrainRun, HYPER_DEFAULTS, batchRng, batchSeed, train,
} from '../src/train/trainer.ts';
import { ADAMW_DEFAULTS, adamwStep, clipCoefficient, gradNorm } from '../src/train/adamw.ts';
import { GpuAdamW } from '../src/train/gpu-adamw.ts';
import { PRESETS } from '../src/train/presets.ts';
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

const GRAMMAR = makeDataset('grammar', { chars: 20_000 });

function smallRun(over: Partial<TrainHyper> = {}): { layout: ParamLayout; hyper: TrainHyper } {
  const cfg: GPTConfig = { vocab_size: GRAMMAR.vocabSize, block_size: 16, n_layer: 1, n_head: 2, n_embd: 16, bias: true, activation: 'gelu', tie_embeddings: true };
  return {
    layout: paramLayout(cfg),
    hyper: {
      ...HYPER_DEFAULTS, steps: 6, batchSize: 4, seqLen: 16, lr: 1e-2, minLr: 1e-3, warmupSteps: 2, seed: 5, saveEvery: 2, valEvery: 2, ...over,
    },
  };
}

async function runTraining(layout: ParamLayout, hyper: TrainHyper, extra: Partial<TrainRun> = {}): Promise<{ checkpoints: Checkpoint[]; result: TrainResult }> {
  const ctx = await nodeGpu();
  const checkpoints: Checkpoint[] = [];
  const result = await train(ctx, new KernelCache(ctx), {
    layout, dataset: GRAMMAR, evalBatch: GRAMMAR.evalBatch(4, hyper.seqLen, 1), hyper, reportEvery: 3,
    onCheckpoint: (c) => {
      checkpoints.push(c);
    },
    ...extra,
  });
  return { checkpoints, result };
}

const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('the training engine', () => {
  it('checkpoints at 0, every save-every and the end; the same seed gives the same bits, another seed other weights', async () => {
    const { layout, hyper } = smallRun({ steps: 5 });
    const a = await runTraining(layout, hyper);
    const b = await runTraining(layout, hyper);
    expect(a.checkpoints.map((c) => c.step)).toEqual([0, 2, 4, 5]);
    expect(a.result.history.trainLoss).toHaveLength(5);
    expect(a.result.history.gradNorm.every((g) => g > 0)).toBe(true);
    expect(a.result.history.val.map((v) => v.step)).toEqual([0, 2, 4, 5]);
    expect(a.checkpoints[0]!.params).toEqual(initParams(layout, hyper.seed));
    for (let i = 0; i < a.checkpoints.length; i++) {
      expect(bits(b.checkpoints[i]!.params).equals(bits(a.checkpoints[i]!.params))).toBe(true);
      expect(bits(b.checkpoints[i]!.optim.v).equals(bits(a.checkpoints[i]!.optim.v))).toBe(true);
    }
    expect(b.result.history).toEqual(a.result.history);
    const other = await runTraining(layout, { ...hyper, seed: 6 });
    expect(bits(other.checkpoints[3]!.params).equals(bits(a.checkpoints[3]!.params))).toBe(false);
  });

  it('stopped at a checkpoint and resumed from it, ends bit for bit where the uninterrupted run ends', async () => {
    const { layout, hyper } = smallRun();
    const whole = await runTraining(layout, hyper);
    const first = await runTraining(layout, hyper, { stopAt: 4 });
    expect(first.result.step).toBe(4);
    const at4 = first.checkpoints[first.checkpoints.length - 1]!;
    expect(at4.step).toBe(4);
    const rest = await runTraining(layout, hyper, { resume: { params: at4.params, optim: at4.optim, history: at4.history } });
    expect(rest.checkpoints.map((c) => c.step)).toEqual([6]);
    const end = whole.checkpoints[whole.checkpoints.length - 1]!;
    expect(bits(rest.checkpoints[0]!.params).equals(bits(end.params))).toBe(true);
    expect(bits(rest.checkpoints[0]!.optim.m).equals(bits(end.optim.m))).toBe(true);
    expect(rest.result.history).toEqual(whole.result.history);
    expect([first.result.gemm, rest.result.gemm]).toEqual([whole.result.gemm, whole.result.gemm]);
  });

  it('trains on the GEMM of the whole run\'s length, even in a part of it (resume stays bit-exact)', async () => {
    const { layout, hyper } = smallRun();
    // 2 steps alone would take the register tiles; a part of a 100,000-step run takes the unrolled GEMM
    const short = await runTraining(layout, hyper, { stopAt: 2 });
    const part = await runTraining(layout, { ...hyper, steps: 100_000 }, { stopAt: 2 });
    expect(short.result.gemm).toBe('register');
    expect(part.result.gemm).toBe('subgroup');
    expect(part.result.step).toBe(2);
  });

  it('batches are redrawn from (seed, step) alone', () => {
    const one = GRAMMAR.sampleBatch(batchRng(5, 3), 4, 16);
    GRAMMAR.sampleBatch(batchRng(5, 2), 4, 16);
    expect(GRAMMAR.sampleBatch(batchRng(5, 3), 4, 16).tokens).toEqual(one.tokens);
    expect(GRAMMAR.sampleBatch(batchRng(5, 4), 4, 16).tokens).not.toEqual(one.tokens);
    expect(batchSeed(5, 3)).not.toBe(batchSeed(3, 5));
  });

  it('refuses a stop-at that is not a checkpoint step, and a sequence longer than block_size', async () => {
    const { layout, hyper } = smallRun();
    await expect(runTraining(layout, hyper, { stopAt: 3 })).rejects.toThrow(/--stop-at 3/);
    await expect(runTraining(layout, { ...hyper, seqLen: 17 })).rejects.toThrow(/--block 17 exceeds the model's block_size 16/);
  });
});

describe('learning', () => {
  it('the tiny preset\'s model, 100 steps of 8 x 32 characters of grammar: the validation loss falls below the unigram entropy', async () => {
    const grammar = makeDataset('grammar');
    const layout = paramLayout({ ...PRESETS.tiny.model, vocab_size: grammar.vocabSize });
    const hyper: TrainHyper = {
      ...HYPER_DEFAULTS, steps: 100, batchSize: 8, seqLen: 32, lr: PRESETS.tiny.train.lr, minLr: PRESETS.tiny.train.lr / 10, warmupSteps: 10,
      seed: 1, saveEvery: 100, valEvery: 100,
    };
    const ctx = await nodeGpu();
    const result = await train(ctx, new KernelCache(ctx), {
      layout, dataset: grammar, evalBatch: grammar.evalBatch(16, 32, 1337), hyper, onCheckpoint: () => undefined,
    });
    const [first, last] = [result.history.val[0]!.loss, result.history.val[1]!.loss];
    // Untrained: about ln V. Below the unigram entropy the model uses the context.
    expect(Math.abs(first - Math.log(grammar.vocabSize))).toBeLessThan(0.1);
    expect(last).toBeLessThan(grammar.unigramEntropy() - 0.25);
  });
});

describe('training against PyTorch (tests/fixtures/make_torch_training.py)', () => {
  it('four steps of nanoGPT\'s loop (AdamW groups, clip_grad_norm_, warm-up + cosine) give torch\'s losses, norms and weights', async () => {
    const dir = join(import.meta.dirname, 'fixtures/torch-training');
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
      steps: number; batch: number; loss: number[]; grad_norm: number[];
      hyper: { lr: number; min_lr: number; warmup: number; weight_decay: number; beta1: number; beta2: number; eps: number; grad_clip: number };
    };
    const init = loadModel(join(dir, 'init.safetensors'));
    const final = loadModel(join(dir, 'final.safetensors'));
    const { layout } = init;
    const T = layout.config.block_size;
    const B = expected.batch;
    const tokens = parseSafetensors(readFileSync(join(dir, 'batches.safetensors')), 'batches.safetensors').tensors.get('tokens')!.data as Int32Array;
    const batchAt = (s: number): Batch => batchFromTokens(tokens.slice(s * B * (T + 1), (s + 1) * B * (T + 1)), B, T, null);
    let drawn = 0;
    // The fixture's batches in order, whatever the generator: one sampleBatch per step.
    const dataset: Dataset = { ...GRAMMAR, vocabSize: layout.config.vocab_size, sampleBatch: () => batchAt(drawn++) };
    const h = expected.hyper;
    const hyper: TrainHyper = {
      steps: expected.steps, batchSize: B, seqLen: T, lr: h.lr, minLr: h.min_lr, warmupSteps: h.warmup, weightDecay: h.weight_decay,
      beta1: h.beta1, beta2: h.beta2, eps: h.eps, gradClip: h.grad_clip, seed: 0, saveEvery: expected.steps, valEvery: expected.steps,
    };
    const zeros = new Float32Array(layout.totalFloats);
    const ctx = await nodeGpu();
    let last: Checkpoint | null = null;
    const result = await train(ctx, new KernelCache(ctx), {
      layout, dataset, evalBatch: batchAt(0), hyper,
      resume: { params: init.params, optim: { step: 0, m: zeros, v: zeros }, history: { trainLoss: [], gradNorm: [], val: [] } },
      onCheckpoint: (c) => {
        last = c;
      },
    });
    expect(drawn).toBe(expected.steps);
    for (let s = 0; s < expected.steps; s++) {
      expect(Math.abs(result.history.trainLoss[s]! - expected.loss[s]!) / expected.loss[s]!).toBeLessThan(1e-5);
      expect(Math.abs(result.history.gradNorm[s]! - expected.grad_norm[s]!) / expected.grad_norm[s]!).toBeLessThan(1e-4);
    }
    // Each step moves a weight by about lr: compare the moves, tensor by tensor.
    const params = last!.params;
    for (const t of layout.tensors) {
      let err = 0;
      let moved = 0;
      for (let i = t.offset; i < t.offset + t.size; i++) {
        err = Math.max(err, Math.abs(params[i]! - final.params[i]!));
        moved = Math.max(moved, Math.abs(final.params[i]! - init.params[i]!));
      }
      expect(moved, t.name).toBeGreaterThan(expected.steps * h.lr * 0.1);
      expect(err / moved, t.name).toBeLessThan(1e-3);
    }
  });
});
