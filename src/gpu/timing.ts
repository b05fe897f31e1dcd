/**
 * GPU timestamps for compute passes, where the adapter has `timestamp-query`:
 * a query set with two slots per pass, resolved into a buffer and read back
 * through a small pool of staging buffers so that consecutive measurements
 * do not wait on each other's maps. Without the feature, `timestampWrites()`
 * returns undefined and `read()` resolves to null: callers fall back to
 * wall-clock time around `onSubmittedWorkDone`.
 */
import { type GpuContext, GpuError } from './context.ts';
import { BufferUsage } from './buffers.ts';
import { type Dispatch, encodeDispatches } from './kernel.ts';

const QUERY_RESOLVE = 0x200; // GPUBufferUsage.QUERY_RESOLVE

export class PassTimer {
  private readonly querySet: GPUQuerySet | null;
  private readonly resolveBuffer: GPUBuffer | null;
  private readonly pool: GPUBuffer[] = [];
  private used = 0;

  constructor(private readonly ctx: GpuContext, readonly capacity = 64) {
    if (!ctx.hasTimestamps) {
      this.querySet = null;
      this.resolveBuffer = null;
      return;
    }
    this.querySet = ctx.device.createQuerySet({ label: 'pass timer', type: 'timestamp', count: 2 * capacity });
    this.resolveBuffer = ctx.device.createBuffer({ label: 'pass timer resolve', size: 16 * capacity, usage: QUERY_RESOLVE | BufferUsage.COPY_SRC });
  }

  get available(): boolean {
    return this.querySet !== null;
  }

  /** Timestamp writes for the next pass, or undefined without timestamp-query. */
  timestampWrites(): GPUComputePassTimestampWrites | undefined {
    if (!this.querySet) return undefined;
    if (this.used >= this.capacity) throw new GpuError(`pass timer: more than ${this.capacity} passes in one measurement`);
    const i = this.used++;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Resolves the passes timed since the last read into a staging buffer
   * (encode this after the passes, then submit), and returns a function that
   * reads their durations in milliseconds.
   */
  resolve(encoder: GPUCommandEncoder): () => Promise<number[] | null> {
    const count = this.used;
    this.used = 0;
    if (!this.querySet || !this.resolveBuffer || count === 0) return async () => null;
    const staging = this.pool.pop() ?? this.ctx.device.createBuffer({ label: 'pass timer readback', size: 16 * this.capacity, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * count, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, staging, 0, 16 * count);
    return async () => {
      await staging.mapAsync(BufferUsage.MAP_READ, 0, 16 * count);
      const ticks = new BigInt64Array(staging.getMappedRange(0, 16 * count).slice(0));
      staging.unmap();
      this.pool.push(staging);
      const ms: number[] = [];
      for (let i = 0; i < count; i++) ms.push(Number(ticks[2 * i + 1]! - ticks[2 * i]!) / 1e6);
      return ms;
    };
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
    for (const b of this.pool) b.destroy();
  }
}

/**
 * The GPU time of each dispatch, in milliseconds: every dispatch in a compute
 * pass of its own with timestamps, all of one run in one submit, `runs` runs
 * after `warmup` untimed ones; each dispatch's median over the runs (a
 * shared machine's interruptions land on a few runs). Null where the adapter
 * has no timestamp-query.
 */
export async function profileDispatches(
  ctx: GpuContext, dispatches: readonly Dispatch[], o: { runs?: number; warmup?: number } = {},
): Promise<number[] | null> {
  if (!ctx.hasTimestamps) return null;
  const runs = o.runs ?? 9;
  const warmup = o.warmup ?? 2;
  if (!(runs >= 1)) throw new GpuError(`profileDispatches: runs must be at least 1, got ${runs}`);
  const timer = new PassTimer(ctx, dispatches.length);
  const samples: number[][] = dispatches.map(() => []);
  try {
    for (let run = 0; run < warmup + runs; run++) {
      const encoder = ctx.device.createCommandEncoder({ label: 'profile' });
      for (const d of dispatches) encodeDispatches(encoder, [d], d.kernel.name, timer.timestampWrites());
      const read = timer.resolve(encoder);
      ctx.device.queue.submit([encoder.finish()]);
      const ms = await read();
      if (run >= warmup) ms!.forEach((t, i) => samples[i]!.push(t));
    }
  } finally {
    timer.destroy();
  }
  return samples.map((s) => {
    const sorted = [...s].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  });
}
