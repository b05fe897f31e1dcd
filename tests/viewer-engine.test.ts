/**
 * The viewer's real engine on Node's WebGPU (Dawn; SwiftShader without a
 * GPU), on an odd model (n_embd 48, 3 heads, vocab 37, T 13) opened from
 * files: the streamed grid, the path and its losses, the wormhole's frames,
 * the PCA and Hessian planes against the float64 TypeScript reference; training
 * through the GPU trainer; cancellation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFloats } from '../src/gpu/buffers.ts';
import { nodeGpu } from '../src/node/gpu.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { forward } from '../src/model/reference.ts';
import { directionsToSafetensors, paramsToSafetensors, tokensToSafetensors } from '../src/io/formats.ts';
import { makeDataset } from '../src/data/dataset.ts';
import { makeDirections, normalizeDirection } from '../src/landscape/directions.ts';
import { GPU_RELATIVE_STEP, gpuGradientFunction, hessianDirections } from '../src/landscape/hessian.ts';
import { pcaDirections } from '../src/landscape/pca.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { Rng } from '../src/util/rng.ts';
import { randomPlane } from './helpers/runs.ts';
import { isAbort, type LandscapeEngine, type TrainedRun } from '../src/viewer/engine.ts';
import { type NamedBytes, openFiles } from '../src/viewer/files.ts';
import { HESSIAN_LANCZOS_STEPS, realEngine } from '../src/viewer/real-engine.ts';
import { strideLadder } from '../src/viewer/source.ts';
import { defaultSettings, type Settings } from '../src/viewer/state.ts';

const config: GPTConfig = { n_layer: 2, n_head: 3, n_embd: 48, vocab_size: 37, block_size: 13, bias: true, activation: 'gelu', tie_embeddings: false };
const layout = paramLayout(config);
const B = 3;
const T = 13;
const rng = new Rng(11);
const tokens = Int32Array.from({ length: B * (T + 1) }, () => rng.int(config.vocab_size));
const batch = {
  B, T,
  idx: Int32Array.from({ length: B * T }, (_, n) => tokens[Math.floor(n / T) * (T + 1) + (n % T)]!),
  targets: Int32Array.from({ length: B * T }, (_, n) => tokens[Math.floor(n / T) * (T + 1) + (n % T) + 1]!),
};

const json = (name: string, value: unknown): NamedBytes => ({ name, bytes: new TextEncoder().encode(JSON.stringify(value)) });
const ckpt = (step: number, params: Float32Array): NamedBytes => ({ name: `ckpt-${step}.safetensors`, bytes: paramsToSafetensors(layout, params) });
const evalFile: NamedBytes = { name: 'eval.safetensors', bytes: tokensToSafetensors(tokens, B, T + 1) };

/** w = centre + a d1 + b d2 in float32 (as the kernels form it), evaluated in float64. */
function weightsAt(centre: Float32Array, d1: Float32Array, d2: Float32Array, a: number, b: number): Float64Array {
  return Float64Array.from(centre, (c, i) => Math.fround(c + a * d1[i]! + b * d2[i]!));
}

function referenceLoss(w: ArrayLike<number>, tokenBatch = batch, cfgLayout = layout): number {
  return forward(cfgLayout, Float64Array.from(w), tokenBatch.idx, tokenBatch.targets, tokenBatch.B, tokenBatch.T).loss;
}

function expectClose(got: number, want: number, rel = 1e-4): void {
  expect(Math.abs(got - want)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want)));
}

const settings = (partial: Partial<Settings>): Settings => ({ ...defaultSettings(), ...partial });
const noAbort = new AbortController().signal;

// One engine for the file, so that each kernel compiles once (SwiftShader compiles slowly).
let engine: LandscapeEngine;
beforeAll(async () => {
  engine = realEngine(await nodeGpu());
});

async function open(files: NamedBytes[], current: TrainedRun | null = null): Promise<TrainedRun> {
  const opened = openFiles(files);
  if (opened.kind !== 'model') throw new Error('expected model files');
  return engine.open(opened, current);
}

describe('real engine: landscapes of opened files', () => {
  it('streams a filter-normalised grid coarse lattice first and projects the run\'s path with its true and plane losses', async () => {
    const ctx = await nodeGpu();
    const final = initParams(layout, 4);
    const { d1, d2 } = makeDirections(layout, final, { kind: 'filter', seed: 6 });
    // Checkpoints with known plane coordinates; the second leaves the plane along a third direction.
    const off = makeDirections(layout, final, { kind: 'filter', seed: 7 }).d1;
    const c0 = Float32Array.from(weightsAt(final, d1, d2, 0.6, -0.3));
    const c1 = Float32Array.from(final, (v, i) => v + 0.25 * d1[i]! + 0.5 * off[i]!);
    const run = await open([json('config.json', config), ckpt(0, c0), ckpt(20, c1), ckpt(40, final), evalFile]);
    const n = 17;
    const s = settings({ directions: 'filter', seed: 6, resolution: n, range: 0.8, metric: 'ce' });
    // Read back at once: what the heights hold when the viewer is told the lattice is ready (later chunks may be in as well).
    const snapshots: Array<{ stride: number; values: Promise<Float32Array> }> = [];
    const field = await engine.evaluate(run, s, (f, p) => snapshots.push({ stride: p.stride, values: readFloats(ctx, f.heights, 0, n * n) }), noAbort);
    expect([field.nx, field.ny, field.frames]).toEqual([n, n, 1]);
    const strides = snapshots.map((x) => x.stride);
    expect([...new Set(strides)]).toEqual(strideLadder(n));
    expect(strides[0]).toBe(2);

    const want = (i: number, j: number): number => referenceLoss(weightsAt(final, d1, d2, field.alpha[i]!, field.beta[j]!));
    const first = await snapshots[0]!.values;
    const last = await snapshots[snapshots.length - 1]!.values;
    const onLattice = (i: number): boolean => i % 2 === 0 || i === n - 1;
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const v = want(i, j);
        if (onLattice(i) && onLattice(j)) expectClose(first[j * n + i]!, v);
        expectClose(last[j * n + i]!, v);
      }
    }
    expect(Math.max(...last) - Math.min(...last)).toBeGreaterThan(0.01);

    const path = field.path!;
    expect([...path.step]).toEqual([0, 20, 40]);
    expect(path.a[0]).toBeCloseTo(0.6, 4);
    expect(path.b[0]).toBeCloseTo(-0.3, 4);
    expect([path.a[2], path.b[2]]).toEqual([0, 0]);
    for (let t = 0; t < 3; t++) {
      const w = [c0, c1, final][t]!;
      expectClose(path.trueLoss[t]!, referenceLoss(w));
      expectClose(path.planeLoss[t]!, referenceLoss(weightsAt(final, d1, d2, path.a[t]!, path.b[t]!)));
    }
    // Off the plane, the checkpoint's own loss is not its height on the plane.
    expect(Math.abs(path.trueLoss[1]! - path.planeLoss[1]!)).toBeGreaterThan(1e-3);
    expect(path.trainLoss.every(Number.isNaN)).toBe(true); // no train.json
    field.heights.destroy();
  });

  it('evaluates the wormhole in the plane of a directions file: frame t is centred on checkpoint t', async () => {
    const ctx = await nodeGpu();
    const ckpts = [initParams(layout, 1), initParams(layout, 2), initParams(layout, 3)];
    const { d1, d2 } = randomPlane(9, 0.05, 0.02, layout);
    const model = await open([json('config.json', config), ...ckpts.map((c, t) => ckpt(10 * t, c)), evalFile]);
    expect(model.hasDirections).toBe(false);
    const run = await open([{ name: 'dirs.safetensors', bytes: directionsToSafetensors(layout, { d1, d2, metadata: { kind: 'random' } }) }], model);
    expect(run.hasDirections).toBe(true);
    const n = 5;
    const ready: number[] = [];
    const field = await engine.evaluate(run, settings({ directions: 'file', wormhole: true, resolution: n, range: 0.5 }), (_f, p) => ready.push(p.framesReady), noAbort);
    expect(field.frames).toBe(3);
    expect(ready).toEqual([1, 2, 3, 3]);
    const all = await readFloats(ctx, field.heights);
    for (let t = 0; t < 3; t++) {
      for (const [i, j] of [[0, 0], [4, 1], [2, 2], [1, 4]] as const) {
        expectClose(all[(t * n + j) * n + i]!, referenceLoss(weightsAt(ckpts[t]!, d1, d2, field.alpha[i]!, field.beta[j]!)));
      }
    }
    field.heights.destroy();
    await expect(engine.evaluate(model, settings({ directions: 'file', resolution: n }), () => {}, noAbort)).rejects.toThrow('open a directions file');
  });

  it('takes the evaluation batch of the built-in dataset named by tokenizer.json, in the filter-normalised pca plane, with another metric', async () => {
    const ctx = await nodeGpu();
    const grammar = makeDataset('grammar');
    const gConfig = { ...config, vocab_size: grammar.vocabSize };
    const gLayout = paramLayout(gConfig);
    const ckpts = [1, 2, 3, 4].map((seed) => initParams(gLayout, seed));
    const run = await open([
      json('config.json', gConfig), json('tokenizer.json', grammar.tokenizer.toJSON()),
      ...ckpts.map((c, t) => ({ name: `ckpt-${t}.safetensors`, bytes: paramsToSafetensors(gLayout, c) })),
    ]);
    const n = 5;
    const field = await engine.evaluate(run, settings({ directions: 'pca', resolution: n, range: 0.5, metric: 'mse' }), () => {}, noAbort);
    const final = ckpts[3]!;
    const pca = pcaDirections(ckpts, final);
    const filter = { mode: 'filter', includeVectors: false } as const;
    const d1 = normalizeDirection(gLayout, pca.d1, final, filter);
    const d2 = normalizeDirection(gLayout, pca.d2, final, filter);
    const evalBatch = grammar.evalBatch(8, T, 1337);
    // mse: sum_v (softmax_v - onehot_v)^2, the mean over positions.
    const mse = (w: Float64Array): number => {
      const { logits } = forward(gLayout, w, evalBatch.idx, evalBatch.targets, evalBatch.B, T);
      const V = gConfig.vocab_size;
      let total = 0;
      for (let r = 0; r < evalBatch.B * T; r++) {
        const row = Array.from({ length: V }, (_, v) => logits[r * V + v]!);
        const max = Math.max(...row);
        const e = row.map((x) => Math.exp(x - max));
        const z = e.reduce((x, y) => x + y, 0);
        total += e.reduce((acc, x, v) => acc + (x / z - (v === evalBatch.targets[r] ? 1 : 0)) ** 2, 0);
      }
      return total / (evalBatch.B * T);
    };
    const all = await readFloats(ctx, field.heights);
    for (const [i, j] of [[0, 0], [4, 1], [2, 2]] as const) {
      expectClose(all[j * n + i]!, mse(weightsAt(final, d1, d2, field.alpha[i]!, field.beta[j]!)));
    }
    expectClose(field.path!.trueLoss[0]!, mse(Float64Array.from(ckpts[0]!)));
    field.heights.destroy();
  });

  it('evaluates the plane of the top Hessian eigenvectors on the evaluation batch, filter-normalised', async () => {
    const ctx = await nodeGpu();
    const final = initParams(layout, 5);
    const run = await open([json('config.json', config), ckpt(0, final), evalFile]);
    const n = 5;
    const field = await engine.evaluate(run, settings({ directions: 'hessian', seed: 3, resolution: n, range: 0.3 }), () => {}, noAbort);
    expect(field.label).toMatch(/hessian directions \(eigenvalues [-0-9.e+]+, [-0-9.e+]+\), filter-normalised/);
    // The same directions made here: the GPU gradient is deterministic on one adapter.
    const gpu = await gpuGradientFunction(ctx, new KernelCache(ctx), layout, { ...batch, mask: null });
    const h = await hessianDirections(layout, final, gpu.gradient, { seed: 3, relativeStep: GPU_RELATIVE_STEP, iterations: HESSIAN_LANCZOS_STEPS });
    gpu.destroy();
    const opts = { mode: 'filter', includeVectors: false } as const;
    const d1 = normalizeDirection(layout, h.d1, final, opts);
    const d2 = normalizeDirection(layout, h.d2, final, opts);
    const all = await readFloats(ctx, field.heights);
    for (const [i, j] of [[0, 0], [4, 1], [1, 3]] as const) {
      expectClose(all[j * n + i]!, referenceLoss(weightsAt(final, d1, d2, field.alpha[i]!, field.beta[j]!)));
    }
    field.heights.destroy();
  });

  it('stops an evaluation with an AbortError at a chunk boundary, and says what an opened model lacks', async () => {
    const run = await open([json('config.json', config), ckpt(0, initParams(layout, 1)), evalFile]);
    const controller = new AbortController();
    let chunks = 0;
    const evaluation = engine.evaluate(run, settings({ directions: 'random', resolution: 33 }), () => {
      chunks++;
      controller.abort();
    }, controller.signal);
    const error = await evaluation.catch((e: unknown) => e);
    expect(isAbort(error)).toBe(true);
    expect(chunks).toBe(1);
    await expect(engine.evaluate(run, settings({ directions: 'pca' }), () => {}, noAbort)).rejects.toThrow('pca directions need a run of at least 3 checkpoints');
    await expect(open([json('config.json', config), ckpt(0, initParams(layout, 1))])).rejects.toThrow('no evaluation batch; drop a tokens file (eval.safetensors)');
  });
});

describe('real engine: training', () => {
  it('trains the tiny preset on the GPU, keeping every checkpoint and the train loss of every step', async () => {
    const progress: number[] = [];
    const run = await engine.train(settings({ dataset: 'modadd', preset: 'tiny', trainSteps: 10, seed: 2 }), (p) => progress.push(p.step), noAbort);
    expect(run.steps).toBe(10);
    expect(run.trainLoss.length).toBe(10);
    expect(progress[progress.length - 1]).toBe(10);
    // At initialisation (weights ~ N(0, 0.02)) the predictions are near uniform: the loss is near ln(vocab).
    const vocab = makeDataset('modadd').vocabSize;
    expect(Math.abs(run.trainLoss[0]! - Math.log(vocab))).toBeLessThan(0.1);
    const field = await engine.evaluate(run, settings({ directions: 'pca', resolution: 5 }), () => {}, noAbort);
    // A checkpoint every ceil(10 / 24) = 1 step, from step 0.
    expect([...field.path!.step]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(field.path!.trainLoss[3]).toBe(run.trainLoss[2]);
    field.heights.destroy();

    const controller = new AbortController();
    const training = engine.train(settings({ dataset: 'modadd', trainSteps: 500 }), (p) => { if (p.step >= 20) controller.abort(); }, controller.signal);
    await expect(training).rejects.toMatchObject({ name: 'AbortError' });
  });
});
