/**
 * Sharded grids: a job's points split into N deterministic shares so that N
 * processes (a Slurm array, a Kubernetes indexed Job) can each evaluate one,
 * and the shard files merged into the grid file an unsharded run writes,
 * bit for bit.
 *
 * Points are numbered in storage order, k = (f*ny + j)*nx + i for frame f,
 * row j (beta) and column i (alpha). Shard K of N (0 <= K < N) takes the
 * contiguous block [floor(K*P/N), floor((K+1)*P/N)) of the P points, so
 * shares differ in size by at most one point and cover every point once.
 *
 * A job's fingerprint is the SHA-256 of what determines its values (model,
 * directions, tokens, grid, metric, frames, path checkpoints): shards of
 * different jobs, and partial files of another job, are refused.
 */
import { InputError } from '../model/config.ts';
import { type GridFile } from '../io/formats.ts';
import { type SafetensorsFile, type TensorToWrite, serializeSafetensors } from '../io/safetensors.ts';

export interface ShardSpec {
  index: number;
  count: number;
}

/** A contiguous block of point indices [start, start + count). */
export interface Share {
  start: number;
  count: number;
}

/** `K/N` with integers 0 <= K < N (K as Slurm's SLURM_ARRAY_TASK_ID or Kubernetes' JOB_COMPLETION_INDEX with --array=0-(N-1)). */
export function parseShard(v: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw new InputError(`--shard: expected K/N with integers 0 <= K < N (e.g. --shard 0/4), got "${v}"`);
  }
  return { index, count };
}

export function shardShare(shard: ShardSpec, points: number): Share {
  const start = Math.floor((shard.index * points) / shard.count);
  const end = Math.floor(((shard.index + 1) * points) / shard.count);
  return { start, count: end - start };
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** SHA-256 (WebCrypto, in Node and browsers) of the bytes of `data` or of a string's UTF-8. */
export async function sha256Hex(data: ArrayBufferView | string): Promise<string> {
  const bytes = typeof data === 'string'
    ? new TextEncoder().encode(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

/** The fingerprint of a job: SHA-256 of the JSON of what determines its values (hashes of large arrays, sizes, flags). */
export function jobFingerprint(identity: Record<string, unknown>): Promise<string> {
  return sha256Hex(JSON.stringify(identity));
}

/** The per-checkpoint vectors a grid may carry: field of GridFile, tensor name, dtype. */
const PATH_TENSORS = [
  ['path', 'path', 'F32'],
  ['pathResidual', 'path_residual', 'F32'],
  ['pathLoss', 'path_loss', 'F32'],
  ['pathPlaneLoss', 'path_plane_loss', 'F32'],
  ['pathStep', 'path_step', 'I32'],
] as const;

/** The grid without its loss values: everything every shard of one job agrees on (`adapter` in the metadata names the adapter(s) that computed it). */
export type GridFrame = Omit<GridFile, 'loss'>;

export interface GridShard {
  grid: GridFrame;
  shard: ShardSpec;
  share: Share;
  fingerprint: string;
  /** [share.count] values of points share.start .. share.start + share.count - 1. */
  values: Float32Array;
}

export function gridPoints(g: Pick<GridFrame, 'nx' | 'ny' | 'frames'>): number {
  return g.frames * g.ny * g.nx;
}

/** A shard file: `values` [count], `alpha`, `beta` and (shard 0 only) the path tensors; the grid's metadata as JSON. */
export function shardToSafetensors(s: GridShard): Uint8Array {
  const { grid } = s;
  if (s.values.length !== s.share.count) throw new Error(`shard: ${s.values.length} values for a share of ${s.share.count} points`);
  const tensors: TensorToWrite[] = [
    { name: 'values', dtype: 'F32', shape: [s.share.count], data: s.values },
    { name: 'alpha', dtype: 'F32', shape: [grid.nx], data: grid.alpha },
    { name: 'beta', dtype: 'F32', shape: [grid.ny], data: grid.beta },
  ];
  for (const [field, name, dtype] of PATH_TENSORS) {
    const v = grid[field];
    if (v) tensors.push({ name, dtype, shape: field === 'path' ? [v.length / 2, 2] : [v.length], data: v });
  }
  return serializeSafetensors(tensors, {
    losscape: 'grid shard',
    shard: `${s.shard.index}/${s.shard.count}`,
    shard_start: String(s.share.start),
    shard_count: String(s.share.count),
    nx: String(grid.nx),
    ny: String(grid.ny),
    frames: String(grid.frames),
    animated: String(grid.animated),
    fingerprint: s.fingerprint,
    grid_metadata: JSON.stringify(grid.metadata),
  });
}

function metaInt(file: SafetensorsFile, key: string, source: string): number {
  const v = file.metadata[key];
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || !Number.isSafeInteger(n)) {
    throw new InputError(`${source}: not a losscape shard file (metadata "${key}" is ${v === undefined ? 'missing' : JSON.stringify(v)}, expected an integer)`);
  }
  return n;
}

function floats(file: SafetensorsFile, name: string, length: number, source: string): Float32Array {
  const t = file.tensors.get(name);
  if (!t) throw new InputError(`${source}: missing tensor "${name}" [${length}]`);
  if (t.dtype !== 'F32' || t.data.length !== length) throw new InputError(`${source}: tensor "${name}" is ${t.dtype} [${t.shape.join(', ')}], expected F32 [${length}]`);
  return t.data as Float32Array;
}

export function shardFromSafetensors(file: SafetensorsFile, source: string): GridShard {
  if (file.metadata.losscape !== 'grid shard') throw new InputError(`${source}: not a losscape shard file (written by losscape grid --shard K/N)`);
  const shard = parseShardMeta(file.metadata.shard, source);
  const nx = metaInt(file, 'nx', source);
  const ny = metaInt(file, 'ny', source);
  const frames = metaInt(file, 'frames', source);
  const share = { start: metaInt(file, 'shard_start', source), count: metaInt(file, 'shard_count', source) };
  const expected = shardShare(shard, frames * ny * nx);
  if (share.start !== expected.start || share.count !== expected.count) {
    throw new InputError(`${source}: shard ${shard.index}/${shard.count} holds points ${share.start}+${share.count}, expected ${expected.start}+${expected.count}`);
  }
  let metadata: Record<string, string>;
  try {
    metadata = JSON.parse(file.metadata.grid_metadata ?? '') as Record<string, string>;
  } catch {
    throw new InputError(`${source}: metadata "grid_metadata" is not JSON`);
  }
  const grid: GridFrame = {
    nx, ny, frames, animated: file.metadata.animated === 'true',
    alpha: floats(file, 'alpha', nx, source), beta: floats(file, 'beta', ny, source), metadata,
  };
  const path = file.tensors.get('path');
  if (path) {
    const P = path.data.length / 2;
    for (const [field, name, dtype] of PATH_TENSORS) {
      const t = file.tensors.get(name);
      if (!t) continue;
      const length = field === 'path' ? 2 * P : P;
      if (t.dtype !== dtype || t.data.length !== length) throw new InputError(`${source}: tensor "${name}" is ${t.dtype} [${t.shape.join(', ')}], expected ${dtype} with ${length} values`);
      (grid as unknown as Record<string, unknown>)[field] = t.data;
    }
  }
  return { grid, shard, share, fingerprint: file.metadata.fingerprint ?? '', values: floats(file, 'values', share.count, source) };
}

function parseShardMeta(v: string | undefined, source: string): ShardSpec {
  try {
    return parseShard(v ?? '');
  } catch {
    throw new InputError(`${source}: metadata "shard" is ${JSON.stringify(v)}, expected K/N`);
  }
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.every((v, i) => v === y[i]);
}

/** The adapters of several pieces of one grid, in order, each once: one name when all agree. */
export function joinAdapters(adapters: string[]): string {
  return [...new Set(adapters.flatMap((a) => a.split(' | ')))].join(' | ');
}

/**
 * Joins the shards of one job (any order) into its grid file. Refuses, with
 * an InputError naming the files: shards of different jobs (fingerprint, N
 * or grid size), a share given twice, a missing share.
 */
export function mergeShards(shards: Array<{ shard: GridShard; source: string }>): GridFile {
  if (shards.length === 0) throw new InputError('merge: no shard files given');
  const first = shards[0]!;
  const N = first.shard.shard.count;
  const bySlot = new Map<number, { shard: GridShard; source: string }>();
  for (const s of shards) {
    const { shard, source } = s;
    if (shard.fingerprint !== first.shard.fingerprint) {
      throw new InputError(`merge: ${source} is a shard of a different grid than ${first.source} (fingerprint ${shard.fingerprint.slice(0, 12)} vs ${first.shard.fingerprint.slice(0, 12)})`);
    }
    if (shard.shard.count !== N) throw new InputError(`merge: ${source} is shard ${shard.shard.index}/${shard.shard.count}, but ${first.source} is one of ${N}`);
    if (!sameBits(shard.grid.alpha, first.shard.grid.alpha) || !sameBits(shard.grid.beta, first.shard.grid.beta)) {
      throw new InputError(`merge: ${source} has other alpha/beta axes than ${first.source}`);
    }
    const other = bySlot.get(shard.shard.index);
    if (other) throw new InputError(`merge: ${other.source} and ${source} are both shard ${shard.shard.index}/${N} (overlapping shares)`);
    bySlot.set(shard.shard.index, s);
  }
  const missing = Array.from({ length: N }, (_, k) => k).filter((k) => !bySlot.has(k));
  if (missing.length > 0) {
    const shown = missing.length > 10 ? `${missing.slice(0, 10).join(', ')}, ...` : missing.join(', ');
    throw new InputError(`merge: missing shard${missing.length > 1 ? 's' : ''} ${shown} of ${N} (${missing.length} not given)`);
  }
  const ordered = Array.from({ length: N }, (_, k) => bySlot.get(k)!.shard);
  const grid = ordered[0]!.grid;
  const loss = new Float32Array(gridPoints(grid));
  for (const s of ordered) loss.set(s.values, s.share.start);
  const metadata = { ...grid.metadata };
  metadata.adapter = joinAdapters(ordered.map((s) => s.grid.metadata.adapter ?? ''));
  const out: GridFile = {
    nx: grid.nx, ny: grid.ny, frames: grid.frames, animated: grid.animated, alpha: grid.alpha, beta: grid.beta, loss, metadata,
  };
  for (const [field] of PATH_TENSORS) {
    const v = grid[field];
    if (v) (out as unknown as Record<string, unknown>)[field] = v;
  }
  return out;
}
