/**
 * The batched grid evaluator: the loss at many points
 * `centre + a*d1 + b*d2` at once, chunk by chunk. Each chunk is one replay of
 * a perturbed ForwardPlan (weights formed inside the kernels, never copied
 * per point); its results are copied on the GPU into a heights storage
 * buffer that a render pipeline can read, and handed to the host callback
 * as they finish.
 */
import { type GpuContext, GpuError, unlessLost } from '../gpu/context.ts';
import { BufferUsage, storageBuffer, uniformBuffer } from '../gpu/buffers.ts';
import { type Kernel, type KernelCache, encodeDispatches } from '../gpu/kernel.ts';
import { scatterKernel, SCATTER_WG } from '../../shaders/scatter.ts';
import { type ParamLayout } from '../model/params.ts';
import { ForwardPlan, type ForwardBatch, forwardBytesPerPoint, forwardGemmFlops } from '../model/gpu-forward.ts';
import { type Metric } from '../../shaders/loss.ts';
import { type GemmStrategy, type GemmTile } from '../../shaders/linear.ts';

/** A submitted chunk: when, how many points, and how to wait for its result. */
interface InFlight {
  submitted: number;
  count: number;
  finish: () => Promise<void>;
}

/** Inclusive linspace of n values from lo to hi (n == 1 gives lo). */
export function linspace(lo: number, hi: number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1);
  return out;
}

/**
 * Coordinates (a, b) of a grid's points in storage order: point k = j*nx + i
 * is (alpha[i], beta[j]), so `loss[j][i]` is its value (SPEC section 3).
 */
export function gridCoords(alpha: Float32Array, beta: Float32Array): Float32Array {
  const nx = alpha.length;
  const out = new Float32Array(nx * beta.length * 2);
  for (let j = 0; j < beta.length; j++) {
    for (let i = 0; i < nx; i++) {
      out[2 * (j * nx + i)] = alpha[i]!;
      out[2 * (j * nx + i) + 1] = beta[j]!;
    }
  }
  return out;
}

export interface GridEvaluatorOptions {
  metric: Metric;
  /** Points per chunk; default from the device's limits and `memoryBudgetBytes`. */
  chunkPoints?: number;
  /** The number of points the job has: no chunk is made larger, and the GEMM is chosen for that much work (gemmFor). */
  totalPoints?: number;
  /** GPU memory the activations of one chunk may take (default defaultMemoryBudget: 256 MiB on CPU adapters, 1 GiB on GPUs). */
  memoryBudgetBytes?: number;
  tile?: GemmTile;
  strategy?: GemmStrategy;
}

export const DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024;
/**
 * On GPUs 1 GiB: a chunk of ref (1.5 MB of activations a point) is then
 * about 680 points, a few milliseconds of a big GPU's time, against a few hundred
 * microseconds of host work per chunk (encode, submit, read back); at
 * 256 MiB the host's share would be four times as large.
 */
export const GPU_MEMORY_BUDGET = 1024 * 1024 * 1024;

/** The activations' memory budget of a chunk by default: GPU_MEMORY_BUDGET on GPUs, DEFAULT_MEMORY_BUDGET on CPU adapters. */
export function defaultMemoryBudget(adapter: { isFallback: boolean }): number {
  return adapter.isFallback ? DEFAULT_MEMORY_BUDGET : GPU_MEMORY_BUDGET;
}

/** The largest chunk that fits the device's binding and buffer limits and the memory budget. */
export function chooseChunkPoints(
  ctx: Pick<GpuContext, 'adapter'>, layout: ParamLayout, B: number, T: number, budgetBytes = defaultMemoryBudget(ctx.adapter),
): number {
  const { total, largest } = forwardBytesPerPoint(layout, B, T, false);
  const limits = ctx.adapter.limits;
  const byBinding = Math.floor(Math.min(limits.maxStorageBufferBindingSize!, limits.maxBufferSize!) / largest);
  const byBudget = Math.floor(budgetBytes / total);
  const points = Math.min(byBinding, byBudget, limits.maxComputeWorkgroupsPerDimension!);
  if (points < 1) {
    throw new GpuError(`grid: one point needs ${total} bytes of activations (largest tensor ${largest}), more than the device allows; use fewer tokens`);
  }
  return points;
}

export interface ChunkResult {
  /** Index of the chunk's first point in the coordinate list. */
  start: number;
  values: Float32Array;
  /** Points evaluated so far, this chunk included. */
  done: number;
  total: number;
}

export class GridEvaluator {
  private constructor(
    readonly ctx: GpuContext,
    readonly plan: ForwardPlan,
    readonly chunkPoints: number,
    private readonly scatter: Kernel,
  ) {}

  static async create(
    ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, batch: ForwardBatch,
    weights: { centre: Float32Array; d1: Float32Array; d2: Float32Array }, opts: GridEvaluatorOptions,
  ): Promise<GridEvaluator> {
    const chunkPoints = Math.min(
      opts.chunkPoints ?? chooseChunkPoints(ctx, layout, batch.B, batch.T, opts.memoryBudgetBytes),
      opts.totalPoints ?? Infinity,
    );
    const plan = await ForwardPlan.create(ctx, kernels, layout, {
      mode: 'perturbed', points: chunkPoints, B: batch.B, T: batch.T, metric: opts.metric, keepActivations: false,
      workFlops: (opts.totalPoints ?? chunkPoints) * forwardGemmFlops(layout, batch.B, batch.T),
      ...(opts.tile ? { tile: opts.tile } : {}),
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
    });
    plan.setParams(weights.centre);
    plan.setDirections(weights.d1, weights.d2);
    plan.setBatch(batch);
    return new GridEvaluator(ctx, plan, chunkPoints, await kernels.get(scatterKernel()));
  }

  /** The fastest time per point of the biggest chunks waited for so far, and when the last one finished (see settle). */
  private estimate: { count: number; msPerPoint: number } | null = null;
  private lastDone = 0;

  /** Moves the plane's centre (the wormhole: one frame per checkpoint). */
  setCentre(centre: Float32Array): void {
    this.plan.setParams(centre);
  }

  /** A storage buffer for `points` heights that render pipelines can read as well. */
  heightsBuffer(points: number, label = 'heights'): GPUBuffer {
    return storageBuffer(this.ctx, label, points * 4);
  }

  /**
   * Evaluates the points `coords` ([count][2], a and b) into
   * `heights[heightsOffset + k]` on the GPU — or, with `indices`, into
   * `heights[indices[k]]` — chunk after chunk, two chunks in flight.
   * `onChunk` receives each chunk's values once read back (pass
   * `readBack: false` to keep everything on the GPU). Aborting `signal` stops
   * at the next chunk boundary with an AbortError.
   */
  async evaluate(
    coords: Float32Array, heights: GPUBuffer, heightsOffset = 0,
    opts: { onChunk?: (r: ChunkResult) => void; signal?: AbortSignal; readBack?: boolean; indices?: Uint32Array } = {},
  ): Promise<void> {
    const total = coords.length / 2;
    if (!Number.isInteger(total)) throw new GpuError('grid: coordinates must come in (a, b) pairs');
    if (opts.indices && opts.indices.length !== total) throw new GpuError(`grid: ${opts.indices.length} indices for ${total} points`);
    const readBack = opts.readBack ?? true;
    const scatter = opts.indices ? this.scatterTo(heights, opts.indices) : null;
    try {
      await this.run(coords, heights, heightsOffset, opts, readBack, scatter);
    } finally {
      scatter?.destroy();
    }
  }

  private async run(
    coords: Float32Array, heights: GPUBuffer, heightsOffset: number, opts: { onChunk?: (r: ChunkResult) => void; signal?: AbortSignal },
    readBack: boolean, scatter: ReturnType<GridEvaluator['scatterTo']> | null,
  ): Promise<void> {
    const total = coords.length / 2;
    const { device } = this.ctx;
    const pending: InFlight[] = [];
    let done = 0;
    for (let start = 0; start < total; start += this.chunkPoints) {
      if (opts.signal?.aborted) {
        // A chunk may still run: let it finish before the caller frees its buffers or the process
        // exits (exiting while SwiftShader's threads still run a dispatch can crash the process).
        if (pending.length > 0) await this.wait(device.queue.onSubmittedWorkDone());
        throw new DOMException('grid evaluation cancelled', 'AbortError');
      }
      if (this.ctx.lostReason) throw new GpuError(this.ctx.lostReason);
      const count = Math.min(this.chunkPoints, total - start);
      this.plan.setCoords(coords.subarray(start * 2, (start + count) * 2));
      const encoder = device.createCommandEncoder({ label: `grid chunk ${start}` });
      this.plan.encode(encoder, count);
      if (scatter) scatter.encode(encoder, start, count);
      else encoder.copyBufferToBuffer(this.plan.output, 0, heights, (heightsOffset + start) * 4, count * 4);
      let staging: GPUBuffer | null = null;
      if (readBack) {
        staging = device.createBuffer({ label: 'grid chunk readback', size: count * 4, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
        encoder.copyBufferToBuffer(this.plan.output, 0, staging, 0, count * 4);
      }
      device.queue.submit([encoder.finish()]);
      const chunkStart = start;
      // The promise is made only when the chunk is waited for (see settle).
      const finish = (): Promise<void> => (staging
        ? staging.mapAsync(BufferUsage.MAP_READ).then(() => {
          const values = new Float32Array(staging!.getMappedRange().slice(0));
          staging!.unmap();
          staging!.destroy();
          done += count;
          opts.onChunk?.({ start: chunkStart, values, done, total });
        })
        : device.queue.onSubmittedWorkDone().then(() => {
          done += count;
          opts.onChunk?.({ start: chunkStart, values: new Float32Array(0), done, total });
        }));
      pending.push({ submitted: performance.now(), count, finish });
      if (pending.length >= 2) await this.settle(pending.shift()!);
    }
    for (const c of pending) await this.settle(c);
  }

  /**
   * Waits for a chunk. Dawn's Node binding spins the main thread for as long
   * as a GPU promise is pending, which on a CPU adapter takes a core's share
   * from the device's own threads; so the wait first sleeps through most of
   * the chunk's expected time and only then asks for the result. A small
   * chunk costs more per point than a big one, so the estimate is the
   * fastest time per point of the biggest chunks seen so far, used only for
   * chunks no bigger than those, and the sleep is 90% of it: a wait never
   * outlasts the work it waits for.
   */
  private async settle(c: InFlight): Promise<void> {
    const began = Math.max(c.submitted, this.lastDone);
    const est = this.estimate;
    if (est && c.count <= est.count) {
      const sleep = began + 0.9 * est.msPerPoint * c.count - performance.now();
      if (sleep > 2) await new Promise((r) => setTimeout(r, sleep));
    }
    await this.wait(c.finish());
    const now = performance.now();
    const msPerPoint = (now - began) / c.count;
    if (!est || c.count > est.count || (c.count === est.count && msPerPoint < est.msPerPoint)) {
      this.estimate = { count: c.count, msPerPoint };
    }
    this.lastDone = now;
  }

  /** A scatter from the plan's output to heights[indices[k]], one uniform buffer per chunk in flight. */
  private scatterTo(heights: GPUBuffer, indices: Uint32Array): { encode: (e: GPUCommandEncoder, start: number, count: number) => void; destroy: () => void } {
    const ctx = this.ctx;
    const index = storageBuffer(ctx, 'grid indices', indices);
    const owned: GPUBuffer[] = [index];
    return {
      encode: (encoder, start, count) => {
        const u = uniformBuffer(ctx, 'scatter uniforms', new Uint32Array([count, start]));
        owned.push(u);
        encodeDispatches(encoder, [{
          kernel: this.scatter,
          bindGroup: this.scatter.bind({ u, values: this.plan.output, index, heights }),
          workgroups: [Math.ceil(count / SCATTER_WG), 1, 1],
        }], 'scatter');
      },
      destroy: () => owned.forEach((b) => b.destroy()),
    };
  }

  private wait(p: Promise<void>): Promise<void> {
    return unlessLost(this.ctx, p, 'grid evaluation');
  }

  /** Evaluates `coords` and returns the values (a convenience over `evaluate`). */
  async values(coords: Float32Array, onChunk?: (r: ChunkResult) => void, signal?: AbortSignal): Promise<Float32Array> {
    const total = coords.length / 2;
    const heights = this.heightsBuffer(total);
    const out = new Float32Array(total);
    try {
      await this.evaluate(coords, heights, 0, {
        onChunk: (r) => {
          out.set(r.values, r.start);
          onChunk?.(r);
        },
        ...(signal ? { signal } : {}),
      });
    } finally {
      heights.destroy();
    }
    return out;
  }

  destroy(): void {
    this.plan.destroy();
  }
}

