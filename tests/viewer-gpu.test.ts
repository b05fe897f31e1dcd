/**
 * The viewer's own compute kernel on Node's WebGPU (Dawn; SwiftShader
 * without a GPU): the height statistics against a CPU computation. The
 * landscapes themselves are the engine's (viewer-engine.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { storageBuffer } from '../src/gpu/buffers.ts';
import { nodeGpu } from '../src/node/gpu.ts';
import { Scene } from '../src/viewer/scene.ts';
import type { EvalProgress, HeightField } from '../src/viewer/source.ts';

const onLattice = (i: number, n: number, s: number): boolean => i % s === 0 || i === n - 1;

describe('height statistics kernel', () => {
  it('finds min, max, smallest positive and the non-finite count over the valid lattice of the ready frames', async () => {
    const ctx = await nodeGpu();
    const scene = await Scene.create(ctx);
    const nx = 11;
    const ny = 7;
    const frames = 3;
    const values = new Float32Array(frames * ny * nx);
    for (let k = 0; k < values.length; k++) values[k] = Math.sin(k * 0.37) * 4 + (k % 5) * 0.1;
    // Off the stride-4 lattice: must be ignored however extreme.
    values[1 * nx + 1] = 1e9;
    values[1 * nx + 2] = NaN;
    // On it: counted.
    values[4 * nx + 8] = Infinity;
    values[6 * nx + 10] = NaN;
    values[0] = -7.5;
    // In frame 2, which is not ready yet.
    values[2 * nx * ny + 4] = -1e9;
    const field = { nx, ny, frames, heights: storageBuffer(ctx, 'test heights', values) } as HeightField;
    const progress: EvalProgress = { stride: 4, framesReady: 2, pointsDone: 0, pointsTotal: 0 };
    scene.setField(field, progress);
    const got = await scene.readStats();

    let lo = Infinity;
    let hi = -Infinity;
    let minPositive = Infinity;
    let nonFinite = 0;
    for (let f = 0; f < progress.framesReady; f++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          if (!onLattice(i, nx, 4) || !onLattice(j, ny, 4)) continue;
          const v = values[(f * ny + j) * nx + i]!;
          if (!Number.isFinite(v)) { nonFinite++; continue; }
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          if (v > 0) minPositive = Math.min(minPositive, v);
        }
      }
    }
    expect(nonFinite).toBe(2); // the Inf and the NaN on the lattice of frame 0
    expect(got).toEqual({ lo, hi, minPositive, nonFinite });
    field.heights.destroy();
  });
});
