/**
 * What the viewer draws: a height field that lives on the GPU. The engine's
 * grid evaluator (or a dropped grid file) fills the storage buffer; the
 * terrain's vertex shader reads it directly, so heights never come back
 * through the CPU to be drawn.
 */
import type { GridFile } from '../io/formats.ts';
import { type GpuContext, GpuError } from '../gpu/context.ts';
import { storageBuffer } from '../gpu/buffers.ts';

/** The projected training path, one entry per checkpoint. */
export interface PathData {
  /** Plane coordinates (a_t, b_t) of each checkpoint (SPEC section 4, least squares). */
  a: Float32Array;
  b: Float32Array;
  /** Training step of each checkpoint. */
  step: Int32Array;
  /** Training loss logged at that step (NaN when unknown). */
  trainLoss: Float32Array;
  /** Loss of the checkpoint's own weights (NaN when unknown). */
  trueLoss: Float32Array;
  /** Loss at centre + a_t d1 + b_t d2, the checkpoint's height on the plane (NaN when unknown). */
  planeLoss: Float32Array;
}

export interface HeightField {
  nx: number;
  ny: number;
  /** Inclusive linspaces: alpha[i] along d1 (length nx), beta[j] along d2 (length ny). */
  alpha: Float32Array;
  beta: Float32Array;
  /**
   * Storage buffer of f32 [frames][ny][nx]: the value at alpha[i], beta[j]
   * of frame f is heights[(f * ny + j) * nx + i]. NaN and Inf are kept.
   * Usage must include STORAGE and COPY_SRC (exports read it back).
   */
  heights: GPUBuffer;
  /** 1 for a still grid; the number of re-centred planes for the wormhole. */
  frames: number;
  path?: PathData;
  /** Shown in the overlay: where the field came from (file name, engine, metric). */
  label?: string;
}

/**
 * How much of a field being streamed is valid. Points come coarse first: a
 * lattice of stride s holds the points with (i % s == 0 or i == nx - 1) and
 * (j % s == 0 or j == ny - 1); while s > 1 the terrain interpolates between
 * lattice points, so a coarse surface shows at once and refines in place.
 */
export interface EvalProgress {
  /** The finest lattice stride complete in every ready frame (1 = all points). */
  stride: number;
  /** Frames [0, framesReady) hold valid points (wormhole frames arrive in order). */
  framesReady: number;
  pointsDone: number;
  pointsTotal: number;
}

/** Number of lattice points of stride `s` along an axis of `n` points (both ends included). */
export function latticeCount(n: number, s: number): number {
  return Math.floor((n - 1 + s - 1) / s) + 1;
}

/** Lattice strides of a streamed evaluation, coarsest first (at least 9 points per side), halving down to 1. */
export function strideLadder(n: number): number[] {
  let s = 1;
  while (s * 16 <= n - 1) s *= 2;
  const ladder: number[] = [];
  for (; s >= 1; s /= 2) ladder.push(s);
  return ladder;
}

const onLattice = (i: number, n: number, s: number): boolean => i % s === 0 || i === n - 1;

/**
 * The points of an nx x ny grid in streaming order: the coarsest lattice
 * of strideLadder(min(nx, ny)) first, then the points each finer lattice
 * adds. `indices[k]` is the storage index j*nx + i of the k-th point;
 * `levels[p].end` is how many points precede the end of level p, so once
 * that many are done the lattice of stride `levels[p].stride` is complete.
 */
export function latticeOrder(nx: number, ny: number): { indices: Uint32Array; levels: Array<{ stride: number; end: number }> } {
  const indices = new Uint32Array(nx * ny);
  const levels: Array<{ stride: number; end: number }> = [];
  const ladder = strideLadder(Math.min(nx, ny));
  let k = 0;
  ladder.forEach((stride, p) => {
    const coarser = p > 0 ? ladder[p - 1]! : 0;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        if (!onLattice(i, nx, stride) || !onLattice(j, ny, stride)) continue;
        if (coarser > 0 && onLattice(i, nx, coarser) && onLattice(j, ny, coarser)) continue;
        indices[k++] = j * nx + i;
      }
    }
    levels.push({ stride, end: k });
  });
  return { indices, levels };
}

/** Uploads a grid file's loss (all frames) into a storage buffer and wraps it as a HeightField. */
export function heightFieldFromGrid(ctx: GpuContext, grid: GridFile, label: string): HeightField {
  const floats = grid.frames * grid.ny * grid.nx;
  if (grid.loss.length !== floats) {
    throw new GpuError(`${label}: loss has ${grid.loss.length} values, expected frames*ny*nx = ${grid.frames}*${grid.ny}*${grid.nx}`);
  }
  const maxBinding = ctx.adapter.limits.maxStorageBufferBindingSize!;
  if (floats * 4 > maxBinding) {
    throw new GpuError(`${label}: ${floats * 4} bytes of heights exceed this GPU's maxStorageBufferBindingSize (${maxBinding})`);
  }
  const field: HeightField = {
    nx: grid.nx,
    ny: grid.ny,
    alpha: grid.alpha,
    beta: grid.beta,
    heights: storageBuffer(ctx, `${label} heights`, grid.loss),
    frames: grid.frames,
    label,
  };
  if (grid.path) field.path = pathFromGrid(grid);
  return field;
}

function pathFromGrid(grid: GridFile): PathData {
  const path = grid.path!;
  const n = path.length / 2;
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let t = 0; t < n; t++) {
    a[t] = path[2 * t]!;
    b[t] = path[2 * t + 1]!;
  }
  const unknown = (): Float32Array => new Float32Array(n).fill(NaN);
  return {
    a,
    b,
    step: grid.pathStep ?? Int32Array.from({ length: n }, (_, t) => t),
    trainLoss: unknown(),
    trueLoss: grid.pathLoss ?? unknown(),
    planeLoss: grid.pathPlaneLoss ?? unknown(),
  };
}
