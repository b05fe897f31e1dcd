/**
 * A grid job: the points of one share of a grid (all of it, or one shard),
 * frame after frame, chunk after chunk, with a record of which points are
 * done so that an interrupted job resumes where it stopped. The state is
 * written as a partial file (values so far + done flags + the job's
 * fingerprint); resuming evaluates only the points not yet done, so a
 * resumed job's values are those of an uninterrupted one.
 */
import { InputError } from '../model/config.ts';
import { type SafetensorsFile, serializeSafetensors } from '../io/safetensors.ts';
import { type ChunkResult } from './grid.ts';
import { type Share } from './shards.ts';

export interface GridJob {
  nx: number;
  ny: number;
  frames: number;
  alpha: Float32Array;
  beta: Float32Array;
  /** The points this process evaluates, in storage order k = (f*ny + j)*nx + i. */
  share: Share;
}

export interface JobState {
  /** [share.count]: values[k - share.start]. */
  values: Float32Array;
  /** [share.count]: 1 once the point is evaluated. */
  done: Uint8Array;
}

export function newJobState(share: Share): JobState {
  return { values: new Float32Array(share.count), done: new Uint8Array(share.count) };
}

export function doneCount(state: JobState): number {
  let n = 0;
  for (const d of state.done) n += d;
  return n;
}

/** What the job needs of a GridEvaluator (an interface, so that the bookkeeping can be tested without a GPU). */
export interface PointEvaluator {
  setCentre(centre: Float32Array): void;
  values(coords: Float32Array, onChunk?: (r: ChunkResult) => void, signal?: AbortSignal): Promise<Float32Array>;
}

export interface JobProgress {
  frame: number;
  /** Points of the share done, across frames. */
  done: number;
  total: number;
}

export interface RunJobOptions {
  /** The plane's centre for frame f (the wormhole); without it every point uses the evaluator's centre (frames must be 1). */
  frameCentre?: (frame: number) => Float32Array;
  /** Called after each chunk, once its values are in the state. */
  onChunk?: (p: JobProgress) => void;
  signal?: AbortSignal;
}

/** Runs of consecutive not-done points, as [start, end) global point indices within [lo, hi). */
function pendingRuns(state: JobState, share: Share, lo: number, hi: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let k = lo;
  while (k < hi) {
    while (k < hi && state.done[k - share.start]) k++;
    const start = k;
    while (k < hi && !state.done[k - share.start]) k++;
    if (k > start) runs.push([start, k]);
  }
  return runs;
}

/** (a, b) of global points [start, end) of one frame. */
function runCoords(job: GridJob, start: number, end: number): Float32Array {
  const { nx, ny } = job;
  const coords = new Float32Array((end - start) * 2);
  for (let k = start; k < end; k++) {
    const r = k % (nx * ny);
    coords[2 * (k - start)] = job.alpha[r % nx]!;
    coords[2 * (k - start) + 1] = job.beta[Math.floor(r / nx)]!;
  }
  return coords;
}

/** Evaluates every point of the share not yet done in `state`, updating it chunk by chunk. */
export async function runJob(job: GridJob, state: JobState, evaluator: PointEvaluator, opts: RunJobOptions = {}): Promise<void> {
  const { share } = job;
  const perFrame = job.nx * job.ny;
  if (!opts.frameCentre && job.frames !== 1) throw new Error('runJob: a job of several frames needs frameCentre');
  let done = doneCount(state);
  const end = share.start + share.count;
  for (let f = Math.floor(share.start / perFrame); f * perFrame < end; f++) {
    const runs = pendingRuns(state, share, Math.max(share.start, f * perFrame), Math.min(end, (f + 1) * perFrame));
    if (runs.length === 0) continue;
    if (opts.frameCentre) evaluator.setCentre(opts.frameCentre(f));
    for (const [start, stop] of runs) {
      await evaluator.values(runCoords(job, start, stop), (r) => {
        const at = start + r.start - share.start;
        state.values.set(r.values, at);
        state.done.fill(1, at, at + r.values.length);
        done += r.values.length;
        opts.onChunk?.({ frame: f, done, total: share.count });
      }, opts.signal);
    }
  }
}

export interface JobPartial {
  fingerprint: string;
  share: Share;
  state: JobState;
  /** The adapter(s) that computed the values so far. */
  adapter: string;
}

/** A partial file: `values` F32 [count], `done` I32 [count] (0/1), metadata fingerprint, share and adapter. */
export function partialToSafetensors(p: JobPartial): Uint8Array {
  const n = p.share.count;
  return serializeSafetensors([
    { name: 'values', dtype: 'F32', shape: [n], data: p.state.values },
    { name: 'done', dtype: 'I32', shape: [n], data: Int32Array.from(p.state.done) },
  ], {
    losscape: 'grid partial',
    fingerprint: p.fingerprint,
    share_start: String(p.share.start),
    share_count: String(p.share.count),
    adapter: p.adapter,
  });
}

/**
 * Reads a partial file and checks that it belongs to the job being resumed
 * (same fingerprint and share); an InputError naming the file otherwise.
 */
export function partialFromSafetensors(file: SafetensorsFile, source: string, expected: { fingerprint: string; share: Share }): JobPartial {
  const m = file.metadata;
  if (m.losscape !== 'grid partial') throw new InputError(`${source}: not a losscape partial grid file`);
  if (m.fingerprint !== expected.fingerprint) {
    throw new InputError(`${source}: belongs to a different grid job (fingerprint ${String(m.fingerprint).slice(0, 12)}, this job ${expected.fingerprint.slice(0, 12)}): delete it or rerun the job it came from`);
  }
  const share = { start: Number(m.share_start), count: Number(m.share_count) };
  if (share.start !== expected.share.start || share.count !== expected.share.count) {
    throw new InputError(`${source}: holds points ${m.share_start}+${m.share_count}, this shard is ${expected.share.start}+${expected.share.count}`);
  }
  const values = file.tensors.get('values');
  const done = file.tensors.get('done');
  if (!values || values.dtype !== 'F32' || values.data.length !== share.count || !done || done.dtype !== 'I32' || done.data.length !== share.count) {
    throw new InputError(`${source}: expected tensors "values" F32 [${share.count}] and "done" I32 [${share.count}]`);
  }
  const flags = Uint8Array.from(done.data, (d) => (d ? 1 : 0));
  return { fingerprint: expected.fingerprint, share, state: { values: values.data as Float32Array, done: flags }, adapter: m.adapter ?? '' };
}
