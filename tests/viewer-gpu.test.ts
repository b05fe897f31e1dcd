/**
 * The viewer's compute kernels on Node's WebGPU (Dawn; SwiftShader without a
 * GPU): the height statistics against a CPU computation, and the synthetic
 * landscape against its TypeScript reference, coarse lattice first.
 */
import { describe, expect, it } from 'vitest';
import { readFloats, storageBuffer } from '../src/gpu/buffers.ts';
import { nodeGpu } from '../src/node/gpu.ts';
import { Scene } from '../src/viewer/scene.ts';
import type { EvalProgress, HeightField } from '../src/viewer/source.ts';
import { defaultSettings } from '../src/viewer/state.ts';
import { landscapeSeed, strideLadder, syntheticEngine, syntheticLoss, syntheticParams } from '../src/viewer/synthetic.ts';

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

describe('synthetic engine', () => {
  it('streams its landscape coarse lattice first into the heights buffer, equal to the TypeScript reference', async () => {
    const ctx = await nodeGpu();
    const engine = syntheticEngine(ctx);
    const settings = { ...defaultSettings(), trainSteps: 40, resolution: 19, range: 0.8, seed: 3, directions: 'layer' as const, metric: 'mse' as const };
    const signal = new AbortController().signal;
    const run = await engine.train(settings, () => {}, signal);
    const n = settings.resolution;
    const snapshots: Array<{ stride: number; values: Promise<Float32Array> }> = [];
    const field = await engine.evaluate(run, settings, (f, p) => {
      // Read back at once: queued before the engine's next pass.
      snapshots.push({ stride: p.stride, values: readFloats(ctx, f.heights, 0, n * n) });
    }, signal);
    expect(snapshots.map((s) => s.stride)).toEqual(strideLadder(n));
    expect(strideLadder(n)[0]).toBeGreaterThan(1);

    const params = syntheticParams(landscapeSeed(settings));
    const want = (i: number, j: number): number => syntheticLoss(params, field.alpha[i]!, field.beta[j]!, 'mse');
    const first = await snapshots[0]!.values;
    const s = snapshots[0]!.stride;
    const last = await snapshots[snapshots.length - 1]!.values;
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const v = want(i, j);
        if (onLattice(i, n, s) && onLattice(j, n, s)) expect(first[j * n + i]).toBeCloseTo(v, 5);
        else expect(first[j * n + i]).toBe(0); // not evaluated yet: the buffer's initial zeros
        expect(Math.abs(last[j * n + i]! - v)).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
      }
    }
    expect(field.path!.planeLoss[0]).toBeCloseTo(syntheticLoss(params, field.path!.a[0]!, field.path!.b[0]!, 'mse'), 6);
    field.heights.destroy();
  });

  it('evaluates the wormhole as one plane per checkpoint, frame t centred on checkpoint t', async () => {
    const ctx = await nodeGpu();
    const engine = syntheticEngine(ctx);
    const settings = { ...defaultSettings(), trainSteps: 24, resolution: 7, range: 0.5, wormhole: true };
    const signal = new AbortController().signal;
    const run = await engine.train(settings, () => {}, signal);
    const ready: number[] = [];
    const field = await engine.evaluate(run, settings, (_f, p) => ready.push(p.framesReady), signal);
    expect(field.frames).toBe(field.path!.a.length);
    expect(ready).toEqual(Array.from({ length: field.frames }, (_, f) => f + 1));
    const params = syntheticParams(landscapeSeed(settings));
    const all = await readFloats(ctx, field.heights);
    for (const t of [0, 9, field.frames - 1]) {
      for (const [i, j] of [[0, 0], [6, 2], [3, 3]] as const) {
        const want = syntheticLoss(params, field.path!.a[t]! + field.alpha[i]!, field.path!.b[t]! + field.beta[j]!, 'ce');
        expect(all[(t * 7 + j) * 7 + i]).toBeCloseTo(want, 4);
      }
    }
    field.heights.destroy();
  });

  it('stops with an AbortError when cancelled', async () => {
    const ctx = await nodeGpu();
    const engine = syntheticEngine(ctx);
    const controller = new AbortController();
    const training = engine.train({ ...defaultSettings(), trainSteps: 600 }, (p) => { if (p.step >= 100) controller.abort(); }, controller.signal);
    await expect(training).rejects.toMatchObject({ name: 'AbortError' });
  });
});
