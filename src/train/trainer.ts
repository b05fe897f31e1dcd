/**
 * The training loop: mini-batches from a Dataset, forward + backward +
 * AdamW on the GPU, validation, checkpoints and progress.
 *
 * One step is one compute pass: the forward, the backward and the optimizer
 * (gradient norm, clipping, update) are recorded once as a dispatch list
 * and replayed every step; only the batch's tokens and the step's uniforms
 * (learning rate, bias corrections) are written between steps. The loss and
 * gradient norm of each step are copied to a log buffer on the GPU and read
 * back every few steps, so the host never waits on a single step.
 *
 * Determinism: the weights start from initParams(layout, seed), the batch of
 * step s is `dataset.sampleBatch(batchRng(seed, s), B, T)`, every kernel sums
 * in a fixed order, so a seed reproduces a run bit for bit on one adapter,
 * and a run resumed from a checkpoint's weights and optimizer state (step,
 * m, v) continues exactly as the uninterrupted run would have.
 *
 * No Node imports: the viewer trains with this too. Saving is the caller's
 * (`onCheckpoint`).
 */
import { type GpuContext } from '../gpu/context.ts';
import { InputError } from '../model/config.ts';
import { readFloats, storageBuffer } from '../gpu/buffers.ts';
import { type KernelCache, encodeDispatches } from '../gpu/kernel.ts';
import { type ParamLayout, initParams } from '../model/params.ts';
import { ForwardPlan, forwardGemmFlops } from '../model/gpu-forward.ts';
import { BackwardPlan } from '../model/gpu-backward.ts';
import { type GemmStrategy } from '../../shaders/linear.ts';
import { type Batch, type Dataset } from '../data/dataset.ts';
import { Rng } from '../util/rng.ts';
import { ADAMW_DEFAULTS } from './adamw.ts';
import { lrAt } from './schedule.ts';
import { GpuAdamW } from './gpu-adamw.ts';
import { type OptimState } from './optim-state.ts';

export interface TrainHyper {
  /** Optimizer steps of the whole run: the schedule's length. */
  steps: number;
  /** Sequences per batch (B) and tokens per sequence (T <= block_size). */
  batchSize: number;
  seqLen: number;
  /** Peak learning rate, reached after `warmupSteps`, decayed by a cosine to `minLr` at `steps`. */
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip; 0 turns clipping off. */
  gradClip: number;
  /** Seeds the initial weights and the batch sequence. */
  seed: number;
  /** A checkpoint (with the validation loss) every `saveEvery` steps, at step 0 and at the end. */
  saveEvery: number;
  /** The validation loss also every `valEvery` steps between checkpoints. */
  valEvery: number;
}

export const HYPER_DEFAULTS = {
  beta1: ADAMW_DEFAULTS.beta1, beta2: ADAMW_DEFAULTS.beta2, eps: ADAMW_DEFAULTS.eps, weightDecay: ADAMW_DEFAULTS.weightDecay, gradClip: 1,
} as const;

export interface TrainHistory {
  /** trainLoss[s-1]: the loss of the batch of step s, before its update. */
  trainLoss: number[];
  /** gradNorm[s-1]: the global gradient norm of step s, before clipping. */
  gradNorm: number[];
  /** Loss on the evaluation batch after `step` updates (step 0: the initial weights). */
  val: Array<{ step: number; loss: number }>;
}

export interface TrainProgress {
  step: number;
  steps: number;
  trainLoss: number;
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface Checkpoint {
  step: number;
  /** The weights after `step` updates, flat canonical layout. */
  params: Float32Array;
  /** The loss on the evaluation batch (what `losscape eval` computes for these weights). */
  evalLoss: number;
  optim: OptimState;
  /** Everything measured up to `step`. */
  history: TrainHistory;
}

export interface TrainRun {
  layout: ParamLayout;
  dataset: Dataset;
  /** The fixed evaluation batch (eval.safetensors). */
  evalBatch: Batch;
  hyper: TrainHyper;
  /** Continue from a checkpoint: its weights, optimizer state and history (from the run's files). */
  resume?: { params: Float32Array; optim: OptimState; history: TrainHistory };
  /** Stop after the checkpoint of this step, as if interrupted (a multiple of saveEvery). */
  stopAt?: number;
  /** Read the log buffers back (progress, train loss) every this many steps (default 10). */
  reportEvery?: number;
  /** The GEMM of the forward, dX and dW (default: gemmFor this run's length; the bench asks for a long run's). */
  gemm?: GemmStrategy;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  onCheckpoint: (c: Checkpoint) => void | Promise<void>;
}

export interface TrainResult {
  /** Steps reached: hyper.steps, stopAt, or where the signal stopped it. */
  step: number;
  history: TrainHistory;
  /** Of this call only (a resumed run counts from where it resumed). */
  elapsedSeconds: number;
  tokensPerSecond: number;
  /** The GEMM the run trained on (the same for every part of a stopped and resumed run). */
  gemm: GemmStrategy;
}

/** The seed of the generator that draws step s's batch: a mix of (seed, s) so that any step can be redrawn alone. */
export function batchSeed(seed: number, step: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (step >>> 0) ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function batchRng(seed: number, step: number): Rng {
  return new Rng(batchSeed(seed, step));
}

export function isCheckpointStep(step: number, hyper: Pick<TrainHyper, 'steps' | 'saveEvery'>): boolean {
  return step === 0 || step === hyper.steps || step % hyper.saveEvery === 0;
}

/** Checks that the hyper-parameters make a run; messages name the fields as the CLI's flags do. */
export function checkHyper(h: TrainHyper, blockSize: number): void {
  const positiveInt = (name: string, v: number): void => {
    if (!Number.isSafeInteger(v) || v < 1) throw new InputError(`${name} must be an integer >= 1, got ${v}`);
  };
  positiveInt('--steps', h.steps);
  positiveInt('--batch', h.batchSize);
  positiveInt('--block', h.seqLen);
  positiveInt('--save-every', h.saveEvery);
  positiveInt('--val-every', h.valEvery);
  if (h.seqLen > blockSize) throw new InputError(`--block ${h.seqLen} exceeds the model's block_size ${blockSize}`);
  if (!Number.isSafeInteger(h.warmupSteps) || h.warmupSteps < 0) throw new InputError(`--warmup must be an integer >= 0, got ${h.warmupSteps}`);
  if (!(h.lr > 0)) throw new InputError(`--lr must be positive, got ${h.lr}`);
  if (!(h.minLr >= 0 && h.minLr <= h.lr)) throw new InputError(`--min-lr must lie in [0, lr], got ${h.minLr}`);
  if (!(h.weightDecay >= 0)) throw new InputError(`--weight-decay must be >= 0, got ${h.weightDecay}`);
  if (!(h.gradClip >= 0)) throw new InputError(`--grad-clip must be >= 0, got ${h.gradClip}`);
  if (!(h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1 && h.eps > 0)) throw new InputError('betas must lie in [0, 1) and eps be positive');
}

/** Runs (or continues) training; resolves when `hyper.steps` (or `stopAt`) is reached or the signal aborts. */
export async function train(ctx: GpuContext, kernels: KernelCache, run: TrainRun): Promise<TrainResult> {
  const { layout, dataset, hyper, evalBatch } = run;
  const cfg = layout.config;
  checkHyper(hyper, cfg.block_size);
  if (dataset.vocabSize !== cfg.vocab_size) throw new InputError(`the dataset has ${dataset.vocabSize} tokens, the model's vocab_size is ${cfg.vocab_size}`);
  const stopAt = run.stopAt ?? hyper.steps;
  if (stopAt < 1 || stopAt > hyper.steps || !isCheckpointStep(stopAt, hyper)) {
    throw new InputError(`--stop-at ${stopAt} must be a checkpoint step (a multiple of --save-every ${hyper.saveEvery}, or ${hyper.steps}) in 1..${hyper.steps}`);
  }
  const reportEvery = run.reportEvery ?? 10;
  const { batchSize: B, seqLen: T } = hyper;
  const start = run.resume?.optim.step ?? 0;
  if (start > hyper.steps) throw new InputError(`the run is at step ${start}, past steps ${hyper.steps}`);

  const history: TrainHistory = run.resume
    ? { trainLoss: run.resume.history.trainLoss.slice(0, start), gradNorm: run.resume.history.gradNorm.slice(0, start), val: run.resume.history.val.filter((v) => v.step <= start) }
    : { trainLoss: [], gradNorm: [], val: [] };

  // The GEMM is chosen for the run's length (gemmFor): a long run pays for the compile of the unrolled
  // kernels, which then run the forward, dX and dW, three times the forward's GEMM FLOPs per step.
  // The whole run's length, not this call's: its parts, stopped and resumed, must train on the same
  // GEMM (their sums round alike) to end bit for bit where an uninterrupted run ends.
  const forward = await ForwardPlan.create(ctx, kernels, layout, {
    mode: 'plain', points: 1, B, T, metric: 'ce', keepActivations: true, workFlops: 3 * hyper.steps * forwardGemmFlops(layout, B, T),
    ...(run.gemm ? { strategy: run.gemm } : {}),
  });
  const evalPlan = await ForwardPlan.create(ctx, kernels, layout, { mode: 'plain', points: 1, B: evalBatch.B, T: evalBatch.T, metric: 'ce', keepActivations: false });
  const owned: Array<{ destroy(): void }> = [forward, evalPlan];
  try {
    const backward = await BackwardPlan.create(ctx, kernels, forward);
    owned.push(backward);
    const optimizer = await GpuAdamW.create(ctx, kernels, layout, forward.theta, backward.grad, {
      beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay, gradClip: hyper.gradClip,
    });
    owned.push(optimizer);
    const lossLog = storageBuffer(ctx, 'train loss log', reportEvery * 4);
    const normLog = storageBuffer(ctx, 'grad norm^2 log', reportEvery * 4);
    owned.push(lossLog, normLog);
    const stepDispatches = [...forward.dispatches, ...backward.dispatches, ...optimizer.dispatches];

    forward.setParams(run.resume?.params ?? initParams(layout, hyper.seed));
    if (run.resume) optimizer.setMoments(run.resume.optim.m, run.resume.optim.v);
    evalPlan.setBatch(evalBatch);

    const evalLoss = async (): Promise<number> => {
      const encoder = ctx.device.createCommandEncoder({ label: 'eval' });
      encoder.copyBufferToBuffer(forward.theta, 0, evalPlan.theta, 0, layout.totalFloats * 4);
      evalPlan.encode(encoder);
      ctx.device.queue.submit([encoder.finish()]);
      return (await readFloats(ctx, evalPlan.output, 0, 1))[0]!;
    };
    const schedule = { lr: hyper.lr, minLr: hyper.minLr, warmupSteps: hyper.warmupSteps, totalSteps: hyper.steps };
    const t0 = performance.now();
    let logged = 0;
    const flush = async (step: number): Promise<void> => {
      if (logged === 0) return;
      const losses = await readFloats(ctx, lossLog, 0, logged);
      const norms = await readFloats(ctx, normLog, 0, logged);
      history.trainLoss.push(...losses);
      history.gradNorm.push(...Array.from(norms, Math.sqrt));
      logged = 0;
      if (run.onProgress) {
        const seconds = (performance.now() - t0) / 1000;
        const done = step - start;
        run.onProgress({
          step, steps: hyper.steps, trainLoss: history.trainLoss[step - 1]!,
          tokensPerSecond: seconds > 0 ? (done * B * T) / seconds : 0,
          etaSeconds: done > 0 ? (seconds / done) * (stopAt - step) : 0,
        });
      }
    };
    const checkpoint = async (step: number): Promise<void> => {
      const loss = await evalLoss();
      history.val.push({ step, loss });
      const params = await readFloats(ctx, forward.theta, 0, layout.totalFloats);
      const { m, v } = await optimizer.readMoments();
      await run.onCheckpoint({
        step, params, evalLoss: loss, optim: { step, m, v },
        history: { trainLoss: history.trainLoss.slice(), gradNorm: history.gradNorm.slice(), val: history.val.slice() },
      });
    };

    if (start === 0) await checkpoint(0);
    let step = start;
    while (step < stopAt && !run.signal?.aborted) {
      step++;
      backward.setBatch(dataset.sampleBatch(batchRng(hyper.seed, step), B, T));
      backward.prepare();
      optimizer.prepare(step, lrAt(step - 1, schedule));
      const encoder = ctx.device.createCommandEncoder({ label: `train step ${step}` });
      encodeDispatches(encoder, stepDispatches, 'train step');
      encoder.copyBufferToBuffer(forward.output, 0, lossLog, logged * 4, 4);
      encoder.copyBufferToBuffer(optimizer.normSq, 0, normLog, logged * 4, 4);
      ctx.device.queue.submit([encoder.finish()]);
      logged++;
      const save = isCheckpointStep(step, hyper);
      const validate = !save && step % hyper.valEvery === 0;
      if (logged === reportEvery || save || validate || step === stopAt || run.signal?.aborted) await flush(step);
      if (save) await checkpoint(step);
      else if (validate) history.val.push({ step, loss: await evalLoss() });
    }
    const elapsedSeconds = (performance.now() - t0) / 1000;
    return {
      step, history, elapsedSeconds, tokensPerSecond: elapsedSeconds > 0 ? ((step - start) * B * T) / elapsedSeconds : 0,
      gemm: forward.gemmStrategy,
    };
  } finally {
    for (const o of owned) o.destroy();
  }
}
