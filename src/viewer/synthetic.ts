/**
 * syntheticEngine: a stand-in LandscapeEngine until the real GPU engine is
 * plugged in. Its "training" draws a loss curve and a spiral path into the
 * centre; its "landscape" is an analytic function (a saturating valley, a
 * few Gaussian hills and pits, a ripple) evaluated by a WGSL compute shader
 * straight into the heights storage buffer, coarse lattice first, exactly as
 * the real grid evaluator streams. syntheticLoss is its TypeScript
 * reference (the tests compare the two).
 */
import type { GpuContext } from '../gpu/context.ts';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.ts';
import { compileKernel, type Kernel } from '../gpu/kernel.ts';
import { linspace } from '../landscape/grid.ts';
import { Rng } from '../util/rng.ts';
import { abortError, type EvalSettings, type LandscapeEngine, type TrainedRun, type TrainSettings } from './engine.ts';
import { type HeightField, latticeCount, type PathData } from './source.ts';
import type { Settings } from './state.ts';

export type Metric = Settings['metric'];
const METRIC_CODE: Record<Metric, number> = { ce: 0, acc: 1, mse: 2 };

export interface SyntheticParams {
  /** Rotation of the valley's axes, radians. */
  angle: number;
  /** Curvatures along and across the valley. */
  k1: number;
  k2: number;
  floor: number;
  ripple: number;
  /** [n][4]: centre a, centre b, amplitude, width sigma. */
  bumps: Float32Array;
}

const BUMPS = 8;

/** The landscape of a seed: the same on every machine (Rng). */
export function syntheticParams(seed: number): SyntheticParams {
  const rng = new Rng(seed);
  const bumps = new Float32Array(BUMPS * 4);
  for (let k = 0; k < BUMPS; k++) {
    const pit = k >= 5;
    bumps[4 * k] = (rng.uniform() * 2 - 1) * 1.5;
    bumps[4 * k + 1] = (rng.uniform() * 2 - 1) * 1.5;
    // Pits are shallow so the loss stays positive: floor 0.5 > 3 * 0.13 + ripple.
    bumps[4 * k + 2] = pit ? -(0.05 + 0.08 * rng.uniform()) : 0.2 + 0.6 * rng.uniform();
    bumps[4 * k + 3] = 0.15 + 0.25 * rng.uniform();
  }
  return { angle: rng.uniform() * Math.PI, k1: 1 + rng.uniform(), k2: 4 + 4 * rng.uniform(), floor: 0.5, ripple: 0.05, bumps };
}

/** Reference value of the synthetic landscape at plane coordinates (a, b), in float64. */
export function syntheticLoss(p: SyntheticParams, a: number, b: number, metric: Metric): number {
  const c = Math.cos(p.angle);
  const s = Math.sin(p.angle);
  const u = c * a + s * b;
  const v = -s * a + c * b;
  let loss = p.floor + (0.5 * (p.k1 * u * u + p.k2 * v * v)) / (1 + 0.15 * (u * u + v * v));
  for (let k = 0; k < p.bumps.length / 4; k++) {
    const da = a - p.bumps[4 * k]!;
    const db = b - p.bumps[4 * k + 1]!;
    const sigma = p.bumps[4 * k + 3]!;
    loss += p.bumps[4 * k + 2]! * Math.exp(-(da * da + db * db) / (2 * sigma * sigma));
  }
  loss += p.ripple * Math.sin(3 * a + 1) * Math.sin(2.5 * b);
  if (metric === 'acc') return Math.exp(-1.2 * (loss - 0.05));
  if (metric === 'mse') return (1 - Math.exp(-loss)) ** 2;
  return loss;
}

// Writes syntheticLoss(centre + (alpha[i], beta[j])) into heights[frame][j][i]
// for the points of the lattice of stride `stride` that the coarser lattice
// `skipStride` (0 = none) did not already hold.
// Bindings: heights (read_write), alpha, beta, bumps (read), params (uniform).
// Dispatch: ceil(nx / 8) x ceil(ny / 8) workgroups of 8 x 8.
const SYNTHETIC_WGSL = /* wgsl */ `
struct Params {
  nx: u32, ny: u32, stride: u32, skipStride: u32,
  frame: u32, metric: u32, nBumps: u32, pad: u32,
  centreA: f32, centreB: f32, cosA: f32, sinA: f32,
  k1: f32, k2: f32, floorV: f32, ripple: f32,
}
@group(0) @binding(0) var<storage, read_write> heights: array<f32>;
@group(0) @binding(1) var<storage, read> alpha: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> bumps: array<vec4f>;
@group(0) @binding(4) var<uniform> params: Params;

fn onLattice(i: u32, n: u32, s: u32) -> bool { return i % s == 0u || i == n - 1u; }

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = id.x;
  let j = id.y;
  if (i >= params.nx || j >= params.ny) { return; }
  if (!onLattice(i, params.nx, params.stride) || !onLattice(j, params.ny, params.stride)) { return; }
  if (params.skipStride > 0u && onLattice(i, params.nx, params.skipStride) && onLattice(j, params.ny, params.skipStride)) { return; }
  let a = params.centreA + alpha[i];
  let b = params.centreB + beta[j];
  let u = params.cosA * a + params.sinA * b;
  let v = -params.sinA * a + params.cosA * b;
  var loss = params.floorV + 0.5 * (params.k1 * u * u + params.k2 * v * v) / (1.0 + 0.15 * (u * u + v * v));
  for (var k = 0u; k < params.nBumps; k++) {
    let bump = bumps[k];
    let d = vec2f(a - bump.x, b - bump.y);
    loss += bump.z * exp(-dot(d, d) / (2.0 * bump.w * bump.w));
  }
  loss += params.ripple * sin(3.0 * a + 1.0) * sin(2.5 * b);
  var value = loss;
  if (params.metric == 1u) { value = exp(-1.2 * (loss - 0.05)); }
  if (params.metric == 2u) { let e = 1.0 - exp(-loss); value = e * e; }
  heights[(params.frame * params.ny + j) * params.nx + i] = value;
}
`;

/** Lattice strides of a streamed evaluation, coarsest first (at least 9 points per side), halving down to 1. */
export function strideLadder(n: number): number[] {
  let s = 1;
  while (s * 16 <= n - 1) s *= 2;
  const ladder: number[] = [];
  for (; s >= 1; s /= 2) ladder.push(s);
  return ladder;
}

/** String to seed (FNV-1a), so that each setting gives its own landscape. */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The landscape seed of a setting: the synthetic engine draws a new landscape per direction kind and seed. */
export function landscapeSeed(settings: Pick<EvalSettings, 'directions' | 'seed'>): number {
  return hashSeed(`${settings.directions}:${settings.seed}`);
}

const CHECKPOINTS = 25;

class SyntheticRun implements TrainedRun {
  constructor(readonly label: string, readonly steps: number, readonly trainLoss: Float32Array, readonly spiralSeed: number) {}
}

/** The synthetic run's checkpoints on the plane: a spiral into the centre (the final weights). */
export function syntheticPath(run: Pick<SyntheticRun, 'steps' | 'trainLoss' | 'spiralSeed'>, params: SyntheticParams, metric: Metric): PathData {
  const rng = new Rng(run.spiralSeed);
  const r0 = 0.7 + 0.15 * rng.uniform();
  const theta0 = rng.uniform() * 2 * Math.PI;
  const turns = 0.8 + 0.6 * rng.uniform();
  const n = CHECKPOINTS;
  const path: PathData = {
    a: new Float32Array(n), b: new Float32Array(n), step: new Int32Array(n),
    trainLoss: new Float32Array(n), trueLoss: new Float32Array(n), planeLoss: new Float32Array(n),
  };
  for (let t = 0; t < n; t++) {
    const f = t / (n - 1);
    const r = r0 * (1 - f) ** 1.5;
    const theta = theta0 + turns * 2 * Math.PI * f;
    path.a[t] = r * Math.cos(theta);
    path.b[t] = r * Math.sin(theta);
    path.step[t] = Math.round(f * run.steps);
    path.planeLoss[t] = syntheticLoss(params, path.a[t]!, path.b[t]!, metric);
    // The path leaves the plane in between: its true loss is above the plane's, equal at the centre.
    path.trueLoss[t] = path.planeLoss[t]! + 0.08 * (r / r0);
    path.trainLoss[t] = run.trainLoss[Math.max(0, path.step[t]! - 1)]!;
  }
  return path;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function syntheticEngine(ctx: GpuContext): LandscapeEngine {
  let kernel: Promise<Kernel> | null = null;
  const getKernel = (): Promise<Kernel> => {
    kernel ??= compileKernel(ctx, {
      name: 'synthetic landscape',
      code: SYNTHETIC_WGSL,
      bindings: [
        { name: 'heights', kind: 'readwrite' }, { name: 'alpha', kind: 'read' }, { name: 'beta', kind: 'read' },
        { name: 'bumps', kind: 'read' }, { name: 'params', kind: 'uniform' },
      ],
    });
    return kernel;
  };

  return {
    name: 'synthetic',

    async train(settings: TrainSettings, onProgress, signal): Promise<TrainedRun> {
      const seed = hashSeed(`${settings.dataset}:${settings.preset}:${settings.seed}`);
      const rng = new Rng(seed);
      const steps = settings.trainSteps;
      const trainLoss = new Float32Array(steps);
      const report = Math.max(1, Math.ceil(steps / 30));
      for (let s = 0; s < steps; s++) {
        trainLoss[s] = 0.45 + 3.2 * Math.exp(-(s + 1) / Math.max(1, steps / 5)) + 0.04 * rng.normal();
        if ((s + 1) % report === 0 || s + 1 === steps) {
          onProgress({ step: s + 1, steps, trainLoss: trainLoss[s]! });
          await sleep(10);
          if (signal.aborted) throw abortError();
        }
      }
      return new SyntheticRun(`synthetic ${settings.dataset}/${settings.preset}`, steps, trainLoss, seed);
    },

    async evaluate(run, settings: EvalSettings, onChunk, signal): Promise<HeightField> {
      if (!(run instanceof SyntheticRun)) throw new Error('syntheticEngine.evaluate: the run was not trained by the synthetic engine');
      const k = await getKernel();
      if (signal.aborted) throw abortError();
      const n = settings.resolution;
      const params = syntheticParams(landscapeSeed(settings));
      const path = syntheticPath(run, params, settings.metric);
      const frames = settings.wormhole ? path.a.length : 1;
      const alpha = linspace(-settings.range, settings.range, n);
      const beta = linspace(-settings.range, settings.range, n);
      const field: HeightField = {
        nx: n, ny: n, alpha, beta, frames, path,
        heights: storageBuffer(ctx, 'synthetic heights', frames * n * n * 4),
        label: `${run.label} · ${settings.directions} directions · ${settings.metric}`,
      };
      const inputs = {
        heights: field.heights,
        alpha: storageBuffer(ctx, 'synthetic alpha', alpha),
        beta: storageBuffer(ctx, 'synthetic beta', beta),
        bumps: storageBuffer(ctx, 'synthetic bumps', params.bumps),
      };
      const dispatch = async (frame: number, stride: number, skipStride: number): Promise<void> => {
        const u = new ArrayBuffer(64);
        new Uint32Array(u, 0, 8).set([n, n, stride, skipStride, frame, METRIC_CODE[settings.metric], BUMPS, 0]);
        new Float32Array(u, 32, 8).set([
          frames > 1 ? path.a[frame]! : 0, frames > 1 ? path.b[frame]! : 0, Math.cos(params.angle), Math.sin(params.angle),
          params.k1, params.k2, params.floor, params.ripple,
        ]);
        const uniforms = uniformBuffer(ctx, 'synthetic params', new Float32Array(u));
        const encoder = ctx.device.createCommandEncoder({ label: 'synthetic landscape' });
        const pass = encoder.beginComputePass({ label: 'synthetic landscape' });
        pass.setPipeline(k.pipeline);
        pass.setBindGroup(0, k.bind({ ...inputs, params: uniforms }));
        pass.dispatchWorkgroups(Math.ceil(n / 8), Math.ceil(n / 8));
        pass.end();
        ctx.device.queue.submit([encoder.finish()]);
        await ctx.device.queue.onSubmittedWorkDone();
        uniforms.destroy();
      };
      let handedOver = false;
      try {
        if (frames === 1) {
          const ladder = strideLadder(n);
          for (let p = 0; p < ladder.length; p++) {
            const stride = ladder[p]!;
            await dispatch(0, stride, p === 0 ? 0 : ladder[p - 1]!);
            if (signal.aborted) throw abortError();
            handedOver = true;
            const pointsDone = latticeCount(n, stride) ** 2;
            onChunk(field, { stride, framesReady: 1, pointsDone, pointsTotal: n * n });
          }
        } else {
          for (let f = 0; f < frames; f++) {
            await dispatch(f, 1, 0);
            if (signal.aborted) throw abortError();
            handedOver = true;
            onChunk(field, { stride: 1, framesReady: f + 1, pointsDone: (f + 1) * n * n, pointsTotal: frames * n * n });
          }
        }
      } catch (e) {
        if (!handedOver) field.heights.destroy();
        throw e;
      } finally {
        inputs.alpha.destroy();
        inputs.beta.destroy();
        inputs.bumps.destroy();
      }
      return field;
    },
  };
}
