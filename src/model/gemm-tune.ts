/**
 * The tile of each Linear layer's GEMM chosen on the device: the candidates
 * (shaders/linear.ts gemmCandidates) dispatched on the layer's real buffers
 * and shape, each timed with GPU timestamps in a pass of its own, the
 * fastest kept. GPUs differ too much (warp width, workgroup memory banks,
 * registers per invocation) for one tile to suit them all, and a layer's
 * shape decides how many workgroups fill the device. Choices are remembered
 * per device for the life of the process, so plans rebuilt for the same
 * shapes (the benchmark, a resumed grid) tune once.
 */
import { type GpuContext } from '../gpu/context.ts';
import { type Dispatch } from '../gpu/kernel.ts';
import { profileDispatches } from '../gpu/timing.ts';

/** One candidate's time on the layer, median of TUNE_RUNS. */
export interface GemmTrial {
  kernel: string;
  ms: number;
}

/** The GEMM a plan runs for one Linear layer, and how it was chosen. */
export interface GemmChoice {
  /** The layer's weight, e.g. `transformer.h.0.attn.c_attn.weight`. */
  weight: string;
  kernel: string;
  /** The layer's multiply-adds times 2, all points of the plan: a trial's GFLOP/s is flops / ms / 1e6. */
  flops: number;
  /** Every candidate timed, fastest first; empty where the GEMM was not tuned. */
  trials: GemmTrial[];
}

export const TUNE_RUNS = 5;

const remembered = new WeakMap<GPUDevice, Map<string, GemmTrial[]>>();

/**
 * The index of the fastest of `candidates` (dispatches of one layer that
 * differ only in their kernel), with every candidate's time, fastest first;
 * null where the device has no timestamp-query (the caller keeps its
 * default). `key` names the layer's shape (dimensions, points, options):
 * a second call with the same key and candidates reuses the first's times.
 */
export async function fastestDispatch(
  ctx: GpuContext, key: string, candidates: readonly Dispatch[],
): Promise<{ index: number; trials: GemmTrial[] } | null> {
  const names = candidates.map((d) => d.kernel.name);
  const fullKey = `${key}|${names.join(',')}`;
  let byKey = remembered.get(ctx.device);
  if (!byKey) {
    byKey = new Map();
    remembered.set(ctx.device, byKey);
  }
  let trials = byKey.get(fullKey);
  if (!trials) {
    const ms = await profileDispatches(ctx, candidates, { runs: TUNE_RUNS, warmup: 1 });
    if (!ms) return null;
    trials = names.map((kernel, i) => ({ kernel, ms: ms[i]! })).sort((a, b) => a.ms - b.ms);
    byKey.set(fullKey, trials);
  }
  return { index: names.indexOf(trials[0]!.kernel), trials };
}
