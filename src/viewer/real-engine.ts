/**
 * realEngine: the viewer's LandscapeEngine, the command line's engine on the
 * page's GPUDevice.
 *
 * - `train` runs the GPU trainer (src/train/trainer.ts) on a built-in
 *   dataset as `losscape train` would with the same dataset, preset, steps
 *   and seed, keeping every checkpoint's weights and the train loss of every
 *   step in memory.
 * - `open` takes a model or a run read from files (files.ts).
 * - `evaluate` builds the plane around the last checkpoint (random, filter,
 *   layer or model directions from makeDirections; the filter-normalised
 *   principal components of the run's checkpoints or top Hessian
 *   eigenvectors on the evaluation batch; or a directions file), streams the grid into the heights
 *   buffer with the batched GridEvaluator, coarse lattice first, projects
 *   every checkpoint onto the plane with its true loss and its height on the
 *   plane, and for the wormhole evaluates one plane per checkpoint.
 * Work stops at the next chunk (or step) boundary once the signal aborts.
 */
import type { GpuContext } from '../gpu/context.ts';
import { KernelCache } from '../gpu/kernel.ts';
import { type GPTConfig, InputError } from '../model/config.ts';
import { type ParamLayout, paramLayout } from '../model/params.ts';
import { type ForwardBatch } from '../model/gpu-forward.ts';
import { type Directions, directionsFromSafetensors } from '../io/formats.ts';
import { type Batch, type Dataset, DATASET_DEFAULT_SEED, makeDataset } from '../data/dataset.ts';
import { tokenizerFromJSON } from '../data/tokenizer.ts';
import { makeDirections, normalizeDirection } from '../landscape/directions.ts';
import { chooseChunkPoints, GridEvaluator, gridCoords, linspace } from '../landscape/grid.ts';
import { GPU_RELATIVE_STEP, gpuGradientFunction, hessianDirections } from '../landscape/hessian.ts';
import { pcaDirections } from '../landscape/pca.ts';
import { projectOntoPlane } from '../landscape/project.ts';
import { type TrainHyper, train } from '../train/trainer.ts';
import { PRESETS, presetHyper } from '../train/presets.ts';
import { abortError, type EvalSettings, type LandscapeEngine, type TrainedRun, type TrainSettings } from './engine.ts';
import type { Opened, RunCheckpoint } from './files.ts';
import { type EvalProgress, type HeightField, latticeOrder, type PathData } from './source.ts';
import { DATASETS } from './state.ts';

/** What the engine keeps of a run: everything a landscape of it needs. */
export class EngineRun implements TrainedRun {
  constructor(
    readonly label: string,
    readonly layout: ParamLayout,
    /** The fixed evaluation batch every loss of the landscape is taken on. */
    readonly evalBatch: ForwardBatch,
    /** In step order; the last is the landscape's centre. */
    readonly checkpoints: readonly RunCheckpoint[],
    readonly trainLoss: Float32Array,
    /** From a directions file: the plane of direction kind "file". */
    readonly directions: Directions | null,
  ) {
    if (checkpoints.length === 0) throw new InputError(`${label}: a run needs at least one checkpoint`);
  }

  get steps(): number {
    return this.final.step;
  }

  get final(): RunCheckpoint {
    return this.checkpoints[this.checkpoints.length - 1]!;
  }

  get hasDirections(): boolean {
    return this.directions !== null;
  }

  withDirections(directions: Directions): EngineRun {
    return new EngineRun(this.label, this.layout, this.evalBatch, this.checkpoints, this.trainLoss, directions);
  }
}

/**
 * Sequences of the evaluation batch (eval.safetensors of `losscape train
 * --eval-batch N`): half the command line's default for text, a quarter for
 * modadd, about 512 tokens either way, since every grid point evaluates
 * them all and SwiftShader pays for each.
 */
export const EVAL_SEQUENCES = { text: 8, modadd: 128 } as const;
/** The viewer checkpoints about this many times in a run, so the path is smooth. */
export const PATH_CHECKPOINTS = 24;

/** Lanczos steps (two GPU gradients each) for hessian directions: enough for the top two eigenvectors of a small model. */
export const HESSIAN_LANCZOS_STEPS = 30;

interface Plane {
  d1: Float32Array;
  d2: Float32Array;
  /** How the directions were made, for the overlay. */
  label: string;
}

/** The most grid points one chunk evaluates (the device's limits may allow fewer). */
export const MAX_CHUNK_POINTS = 64;

export type DatasetName = (typeof DATASETS)[number];

/**
 * The model and hyper-parameters of a run in the viewer: those of
 * `losscape train --dataset D --preset P --steps N --seed S --save-every K
 * --eval-batch E` with K = ceil(N / PATH_CHECKPOINTS) and E from
 * EVAL_SEQUENCES.
 */
export function viewerRun(settings: TrainSettings, dataset: Dataset): { config: GPTConfig; hyper: TrainHyper } {
  const preset = PRESETS[settings.preset];
  const steps = settings.trainSteps;
  const saveEvery = Math.max(1, Math.ceil(steps / PATH_CHECKPOINTS));
  const config: GPTConfig = { ...preset.model, vocab_size: dataset.vocabSize, block_size: dataset.sequenceLength ?? preset.model.block_size };
  const hyper = presetHyper(settings.preset, config.block_size, settings.seed, { steps, saveEvery });
  return { config, hyper };
}

/** The fixed evaluation batch of a built-in dataset for sequences of T tokens (EVAL_SEQUENCES of them). */
export function viewerEvalBatch(dataset: Dataset, T: number): Batch {
  const sequences = dataset.evalSequences === null ? EVAL_SEQUENCES.text : Math.min(EVAL_SEQUENCES.modadd, dataset.evalSequences);
  return dataset.evalBatch(sequences, T, DATASET_DEFAULT_SEED);
}

/** (a_t, b_t) of every checkpoint, least squares onto the plane (SPEC section 4); the losses are filled in later. */
function projectPath(run: EngineRun, d1: Float32Array, d2: Float32Array): PathData {
  const n = run.checkpoints.length;
  const path: PathData = {
    a: new Float32Array(n), b: new Float32Array(n), step: new Int32Array(n),
    trainLoss: new Float32Array(n), trueLoss: new Float32Array(n).fill(NaN), planeLoss: new Float32Array(n).fill(NaN),
  };
  run.checkpoints.forEach((c, t) => {
    const { a, b } = projectOntoPlane(c.params, run.final.params, d1, d2);
    path.a[t] = a;
    path.b[t] = b;
    path.step[t] = c.step;
    // The loss logged at step s is that of step s's batch (before its update); step 0 shows the first batch's.
    path.trainLoss[t] = run.trainLoss[Math.max(0, c.step - 1)] ?? NaN;
  });
  return path;
}

/** Coordinates (a, b) of the grid points `indices` (storage order j*nx + i). */
function coordsOf(indices: Uint32Array, alpha: Float32Array, beta: Float32Array): Float32Array {
  const nx = alpha.length;
  const out = new Float32Array(indices.length * 2);
  indices.forEach((k, n) => {
    out[2 * n] = alpha[k % nx]!;
    out[2 * n + 1] = beta[Math.floor(k / nx)]!;
  });
  return out;
}

export function realEngine(ctx: GpuContext): LandscapeEngine {
  // One cache for the trainer and the evaluator: the evaluation forward reuses the trainer's kernels.
  const kernels = new KernelCache(ctx);
  const datasets = new Map<DatasetName, Dataset>();
  const dataset = (name: DatasetName): Dataset => {
    let ds = datasets.get(name);
    if (!ds) datasets.set(name, (ds = makeDataset(name)));
    return ds;
  };

  /** The evaluation batch of the built-in dataset whose tokenizer the model's tokenizer.json is. */
  const builtinEvalBatch = (tokenizer: unknown, config: GPTConfig, label: string): ForwardBatch => {
    const missing = `${label}: no evaluation batch; drop a tokens file (eval.safetensors) with the model`;
    if (tokenizer === null) throw new InputError(`${missing}, or its tokenizer.json if it was trained on ${DATASETS.join(' or ')}`);
    const wanted = JSON.stringify(tokenizerFromJSON(tokenizer, 'tokenizer.json').toJSON());
    const name = DATASETS.find((d) => JSON.stringify(dataset(d).tokenizer.toJSON()) === wanted);
    if (!name) throw new InputError(`${missing}: its tokenizer.json is not that of a built-in dataset (${DATASETS.join(', ')})`);
    const ds = dataset(name);
    return viewerEvalBatch(ds, ds.sequenceLength ?? config.block_size);
  };

  /** The plane of a landscape: its directions and how they were made. */
  const planeOf = async (run: EngineRun, settings: Pick<EvalSettings, 'directions' | 'seed'>, signal: AbortSignal): Promise<Plane> => {
    const kind = settings.directions;
    const centre = run.final.params;
    // The computed directions are filter-normalised like the random kinds, so that the range means the same:
    // at a = 1 every filter has moved by its own norm (raw unit vectors would put the path at |a| ~ ||ckpt_0 - final||).
    const filter = (d1: Float32Array, d2: Float32Array, label: string): Plane => {
      const opts = { mode: 'filter', includeVectors: false } as const;
      return { d1: normalizeDirection(run.layout, d1, centre, opts), d2: normalizeDirection(run.layout, d2, centre, opts), label: `${label}, filter-normalised` };
    };
    if (kind === 'file') {
      if (!run.directions) throw new InputError('direction kind "file": open a directions file (d1.*, d2.* from losscape directions) first');
      return { ...run.directions, label: `directions ${run.directions.metadata.kind ?? 'from a file'}` };
    }
    if (kind === 'pca') {
      if (run.checkpoints.length < 3) {
        throw new InputError(`pca directions need a run of at least 3 checkpoints; ${run.label} has ${run.checkpoints.length}`);
      }
      const pca = pcaDirections(run.checkpoints.map((c) => c.params), centre);
      const [v1, v2] = pca.explainedVariance.map((v) => `${(100 * v).toFixed(1)}%`);
      return filter(pca.d1, pca.d2, `pca directions (${v1}, ${v2} of the variance)`);
    }
    if (kind === 'hessian') {
      const gpu = await gpuGradientFunction(ctx, kernels, run.layout, run.evalBatch);
      try {
        const h = await hessianDirections(run.layout, centre, (params) => {
          if (signal.aborted) throw abortError();
          return gpu.gradient(params);
        }, { seed: settings.seed, relativeStep: GPU_RELATIVE_STEP, iterations: HESSIAN_LANCZOS_STEPS });
        const [l1, l2] = h.eigenvalues.map((l) => l.toPrecision(3));
        return filter(h.d1, h.d2, `hessian directions (eigenvalues ${l1}, ${l2})`);
      } finally {
        gpu.destroy();
      }
    }
    return { ...makeDirections(run.layout, centre, { kind, seed: settings.seed }), label: `${kind} directions, seed ${settings.seed}` };
  };

  const asRun = (run: TrainedRun): EngineRun => {
    if (!(run instanceof EngineRun)) throw new Error('realEngine: the run was not made by this engine');
    return run;
  };

  return {
    async train(settings, onProgress, signal): Promise<TrainedRun> {
      const ds = dataset(settings.dataset);
      const { config, hyper } = viewerRun(settings, ds);
      const layout = paramLayout(config);
      const evalBatch = viewerEvalBatch(ds, hyper.seqLen);
      const checkpoints: RunCheckpoint[] = [];
      const result = await train(ctx, kernels, {
        layout, dataset: ds, evalBatch, hyper, signal,
        onProgress: (p) => onProgress({ step: p.step, steps: p.steps, trainLoss: p.trainLoss }),
        onCheckpoint: (c) => { checkpoints.push({ step: c.step, params: c.params }); },
      });
      if (signal.aborted) throw abortError();
      return new EngineRun(
        `${settings.dataset}/${settings.preset}, ${hyper.steps} steps, seed ${hyper.seed}`,
        layout, evalBatch, checkpoints, Float32Array.from(result.history.trainLoss), null,
      );
    },

    async open(files: Extract<Opened, { kind: 'model' }>, current): Promise<TrainedRun> {
      const directions = (layout: ParamLayout): Directions | null =>
        files.directions && directionsFromSafetensors(layout, files.directions.file, files.directions.name);
      const m = files.model;
      if (!m) {
        if (!current) {
          throw new InputError(`${files.directions!.name}: a directions file needs a model: drop it with the model's files, or train one first`);
        }
        const run = asRun(current);
        return run.withDirections(directions(run.layout)!);
      }
      const evalBatch = m.evalBatch ?? builtinEvalBatch(m.tokenizer, m.config, m.label);
      return new EngineRun(m.label, m.layout, evalBatch, m.checkpoints, m.trainLoss ?? new Float32Array(0), directions(m.layout));
    },

    async evaluate(trained, settings: EvalSettings, onChunk, signal): Promise<HeightField> {
      const run = asRun(trained);
      const plane = await planeOf(run, settings, signal);
      if (signal.aborted) throw abortError();
      const n = settings.resolution;
      const alpha = linspace(-settings.range, settings.range, n);
      const beta = linspace(-settings.range, settings.range, n);
      const frames = settings.wormhole ? run.checkpoints.length : 1;
      const perFrame = n * n;
      const order = latticeOrder(n, n);
      // Small chunks: the picture refines chunk by chunk, and a cancelled evaluation leaves little work in
      // flight (on SwiftShader a chunk of 64 points of 512 tokens of the tiny model takes seconds).
      const chunkPoints = Math.min(chooseChunkPoints(ctx, run.layout, run.evalBatch.B, run.evalBatch.T), MAX_CHUNK_POINTS);
      const evaluator = await GridEvaluator.create(ctx, kernels, run.layout, run.evalBatch, { centre: run.final.params, d1: plane.d1, d2: plane.d2 }, {
        metric: settings.metric, chunkPoints,
      });
      const field: HeightField = {
        nx: n, ny: n, alpha, beta, frames,
        heights: evaluator.heightsBuffer(frames * perFrame, 'landscape heights'),
        path: projectPath(run, plane.d1, plane.d2),
        label: `${run.label} · ${plane.label} · ${settings.metric}`,
      };
      let handedOver = false;
      const show = (progress: EvalProgress): void => {
        if (signal.aborted) return;
        handedOver = true;
        onChunk(field, progress);
      };
      try {
        if (frames === 1) {
          await evaluator.evaluate(coordsOf(order.indices, alpha, beta), field.heights, 0, {
            indices: order.indices, readBack: false, signal,
            onChunk: (r) => {
              const complete = order.levels.filter((l) => l.end <= r.done);
              if (complete.length > 0) show({ stride: complete[complete.length - 1]!.stride, framesReady: 1, pointsDone: r.done, pointsTotal: perFrame });
            },
          });
        } else {
          const coords = gridCoords(alpha, beta);
          for (let f = 0; f < frames; f++) {
            evaluator.setCentre(run.checkpoints[f]!.params);
            await evaluator.evaluate(coords, field.heights, f * perFrame, {
              readBack: false, signal,
              onChunk: (r) => {
                const framesReady = r.done === perFrame ? f + 1 : f;
                if (framesReady > 0) show({ stride: 1, framesReady, pointsDone: f * perFrame + r.done, pointsTotal: frames * perFrame });
              },
            });
          }
          evaluator.setCentre(run.final.params);
        }
        const path = field.path!;
        const pathCoords = new Float32Array(path.a.length * 2);
        path.a.forEach((a, t) => pathCoords.set([a, path.b[t]!], 2 * t));
        path.planeLoss.set(await evaluator.values(pathCoords, undefined, signal));
        // A checkpoint's own loss: the plane re-centred on it, at (0, 0), where the kernels' weights
        // theta + 0 d1 + 0 d2 are exactly theta; this saves compiling a second (plain) forward.
        const origin = new Float32Array(2);
        for (let t = 0; t < run.checkpoints.length; t++) {
          evaluator.setCentre(run.checkpoints[t]!.params);
          path.trueLoss[t] = (await evaluator.values(origin, undefined, signal))[0]!;
        }
        if (signal.aborted) throw abortError();
        show({ stride: 1, framesReady: frames, pointsDone: frames * perFrame, pointsTotal: frames * perFrame });
      } catch (e) {
        if (!handedOver) field.heights.destroy();
        throw e;
      } finally {
        evaluator.destroy();
      }
      return field;
    },
  };
}
