/**
 * Where a grid chunk's and a training step's time goes (`losscape bench
 * --profile`): every dispatch of the engine's plans timed on the GPU in a
 * pass of its own (src/gpu/timing.ts, profileDispatches), per kernel the sum
 * over the layers that use it. The plans are the ones the engine runs for
 * big jobs on this adapter (gemmFor(adapter, Infinity)): a grid chunk of
 * perturbed models (profilePoints), and a training step (forward, backward,
 * AdamW) on the model's batch.
 */
import { type GpuContext, GpuError } from '../src/gpu/context.ts';
import { type Dispatch, KernelCache } from '../src/gpu/kernel.ts';
import { profileDispatches } from '../src/gpu/timing.ts';
import { makeDirections } from '../src/landscape/directions.ts';
import { chooseChunkPoints } from '../src/landscape/grid.ts';
import { ForwardPlan } from '../src/model/gpu-forward.ts';
import { BackwardPlan } from '../src/model/gpu-backward.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { GpuAdamW } from '../src/train/gpu-adamw.ts';
import { HYPER_DEFAULTS } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import { type GemmStrategy, gemmFor } from '../shaders/linear.ts';
import { type BenchModel } from './harness.ts';

/** Grid points in the profiled chunk on CPU adapters. */
export const PROFILE_POINTS = 32;

/**
 * The points of the profiled chunk: PROFILE_POINTS on CPU adapters; on GPUs,
 * whose dispatches 32 points would leave mostly idle, the chunk the grid
 * evaluator would run (chooseChunkPoints).
 */
export function profilePoints(ctx: GpuContext, m: BenchModel): number {
  return ctx.adapter.isFallback ? PROFILE_POINTS : chooseChunkPoints(ctx, paramLayout(m.config), m.B, m.T);
}

/** Timed runs of each plan (after 2 untimed ones); each dispatch counts with its median. */
export const PROFILE_RUNS = 9;

export interface KernelTime {
  kernel: string;
  /** Dispatches of this kernel in the plan (one per layer that uses it, and per pass of a reduction). */
  dispatches: number;
  /** Their GPU time together, ms (each dispatch's median over the runs). */
  ms: number;
}

export interface PlanProfile {
  /** By kernel, the slowest first. */
  kernels: KernelTime[];
  /** All dispatches together, ms. */
  totalMs: number;
  dispatches: number;
  /** The GEMM the plan ran; `tuned` where each layer's was chosen by timing (GPUs), the kernels' names saying which. */
  gemm: GemmStrategy | 'tuned';
}

export interface ModelProfile {
  model: string;
  /** A chunk of `points` perturbed models: the grid evaluator's unit of work. */
  grid: PlanProfile & { points: number; msPerPoint: number };
  /** One training step on the model's batch (null when not asked for). */
  train: PlanProfile | null;
}

/** Sums per-dispatch times by kernel name, the slowest kernel first. */
export function byKernel(dispatches: readonly Dispatch[], ms: readonly number[]): KernelTime[] {
  if (ms.length !== dispatches.length) throw new Error(`byKernel: ${ms.length} times for ${dispatches.length} dispatches`);
  const out = new Map<string, KernelTime>();
  dispatches.forEach((d, i) => {
    const k = out.get(d.kernel.name) ?? { kernel: d.kernel.name, dispatches: 0, ms: 0 };
    k.dispatches++;
    k.ms += ms[i]!;
    out.set(d.kernel.name, k);
  });
  return [...out.values()].sort((a, b) => b.ms - a.ms);
}

async function profilePlan(ctx: GpuContext, dispatches: readonly Dispatch[], gemm: PlanProfile['gemm'], runs: number): Promise<PlanProfile> {
  const ms = await profileDispatches(ctx, dispatches, { runs });
  if (!ms) throw new GpuError('bench --profile needs GPU timestamps (the adapter has no timestamp-query)');
  const kernels = byKernel(dispatches, ms);
  return { kernels, totalMs: kernels.reduce((s, k) => s + k.ms, 0), dispatches: dispatches.length, gemm };
}

export async function profileModel(
  ctx: GpuContext, m: BenchModel, o: { runs?: number; train?: boolean; log?: (line: string) => void } = {},
): Promise<ModelProfile> {
  const runs = o.runs ?? PROFILE_RUNS;
  const log = o.log ?? (() => {});
  const layout = paramLayout(m.config);
  const { B, T } = m;
  const { strategy, tune } = gemmFor(ctx.adapter, Infinity);
  const points = profilePoints(ctx, m);
  const kernels = new KernelCache(ctx);
  const rng = new Rng(1);
  // Seeded random tokens: the time does not depend on the data.
  const tokens = (): Int32Array => Int32Array.from({ length: B * T }, () => rng.int(m.config.vocab_size));
  const batch = { B, T, idx: tokens(), targets: tokens(), mask: null };
  const theta = initParams(layout, 1);

  log(`${m.name}: compiling the grid plan (${tune ? 'tuned' : strategy} GEMM)`);
  const grid = await ForwardPlan.create(ctx, kernels, layout, {
    mode: 'perturbed', points, B, T, metric: 'ce', keepActivations: false, strategy, tune,
  });
  let gridProfile: PlanProfile;
  try {
    const dirs = makeDirections(layout, theta, { kind: 'filter', seed: 2 });
    grid.setParams(theta);
    grid.setDirections(dirs.d1, dirs.d2);
    grid.setBatch(batch);
    grid.setCoords(Float32Array.from({ length: 2 * points }, () => 2 * rng.uniform() - 1));
    grid.prepare();
    log(`${m.name}: timing a chunk of ${points} points, ${runs} runs`);
    gridProfile = await profilePlan(ctx, grid.dispatches, grid.gemmName, runs);
  } finally {
    grid.destroy();
  }

  const gridResult = { ...gridProfile, points, msPerPoint: gridProfile.totalMs / points };
  if (o.train === false) return { model: m.name, grid: gridResult, train: null };
  log(`${m.name}: compiling the training plans`);
  const forward = await ForwardPlan.create(ctx, kernels, layout, { mode: 'plain', points: 1, B, T, metric: 'ce', keepActivations: true, strategy });
  const owned: Array<{ destroy(): void }> = [forward];
  try {
    const backward = await BackwardPlan.create(ctx, kernels, forward);
    owned.push(backward);
    const optimizer = await GpuAdamW.create(ctx, kernels, layout, forward.theta, backward.grad, HYPER_DEFAULTS);
    owned.push(optimizer);
    forward.setParams(theta);
    backward.setBatch(batch);
    backward.prepare();
    log(`${m.name}: timing a training step, ${runs} runs`);
    const train = await profilePlan(ctx, [...forward.dispatches, ...backward.dispatches, ...optimizer.dispatches], forward.gemmName, runs);
    return { model: m.name, grid: gridResult, train };
  } finally {
    for (const x of owned) x.destroy();
  }
}
