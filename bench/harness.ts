/**
 * The grid benchmark (SPEC section 6, issue 6): for one case (a model of the
 * ladder, a token batch, a grid) it writes the model, tokens and directions
 * files, then measures on one adapter, from those files, the engine
 * (GridEvaluator), the naive per-point WebGPU loop and the PyTorch baselines,
 * and checks that their values agree on the points they share before any
 * speed counts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GpuContext } from '../src/gpu/context.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { PassTimer } from '../src/gpu/timing.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout, type ParamLayout } from '../src/model/params.ts';
import { makeDirections } from '../src/landscape/directions.ts';
import { GridEvaluator, gridCoords, linspace } from '../src/landscape/grid.ts';
import { NaiveEvaluator } from '../src/landscape/naive.ts';
import { type GemmStrategy } from '../shaders/linear.ts';
import { type GemmChoice } from '../src/model/gemm-tune.ts';
import { directionsFromSafetensors, directionsToSafetensors, paramsToSafetensors, type TokenBatch, tokensToSafetensors } from '../src/io/formats.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { loadModel, loadTokens, readBytes } from '../src/node/files.ts';
import { Rng } from '../src/util/rng.ts';
import { PRESETS } from '../src/train/presets.ts';
import { compareLosses, type GridCase, type LossComparison } from './report.ts';
import { runTorchGrid, type TorchModeResult } from './torch.ts';

/** A model of the ladder with the token batch it is evaluated on and its default grid. */
export interface BenchModel {
  name: string;
  description: string;
  config: GPTConfig;
  /** Sequences and tokens per sequence of the evaluation batch. */
  B: number;
  T: number;
  grid: { nx: number; ny: number };
}

const model = (name: string, description: string, c: Partial<GPTConfig> & Pick<GPTConfig, 'n_layer' | 'n_head' | 'n_embd'>, grid: number, B = 16, T = 32): BenchModel => ({
  name,
  description,
  config: { vocab_size: 64, block_size: T, bias: true, activation: 'gelu', tie_embeddings: true, ...c },
  B,
  T,
  grid: { nx: grid, ny: grid },
});

/**
 * The ladder, from the tiny training preset's model to about a million
 * parameters (the small and base presets' models), all with a 64-token
 * vocabulary on 16 sequences of 32 tokens. `ref` is issue 6's reference case.
 * Grids shrink as the models grow so that a SwiftShader run stays in minutes.
 */
export const LADDER: readonly BenchModel[] = [
  model('tiny', 'the tiny training preset\'s model', PRESETS.tiny.model, 33),
  model('ref', 'issue 6 reference: C64 L2 H4 V64 block 32', { n_layer: 2, n_head: 4, n_embd: 64 }, 33),
  model('small', 'the small preset\'s model', PRESETS.small.model, 17),
  model('base', 'the base preset\'s model, ~1M parameters', PRESETS.base.model, 9),
];

/** Not in the default ladder: odd sizes for smoke tests (n_embd 48, 3 heads, vocab 37, T 13, untied). */
export const ODD_MODEL = model('odd', 'odd sizes for smoke tests: C48 L1 H3 V37 T13, untied',
  { n_layer: 1, n_head: 3, n_embd: 48, vocab_size: 37, tie_embeddings: false }, 7, 2, 13);

export const REFERENCE_MODEL = 'ref';
export const QUICK_GRID = { nx: 9, ny: 9 };
export const BENCH_MODELS: readonly BenchModel[] = [...LADDER, ODD_MODEL];

export function benchModel(name: string): BenchModel | undefined {
  return BENCH_MODELS.find((m) => m.name === name);
}

/** The plane every case evaluates: filter-normalised directions over [-1, 1]^2. */
export const GRID_RANGE: [number, number, number, number] = [-1, 1, -1, 1];
const SEEDS = { init: 1, directions: 2, tokens: 3 };

export interface CaseFiles {
  modelDir: string;
  tokens: string;
  directions: string;
  /** The grid's points in grid-file order, [[a, b], ...] as the engine's f32 coordinates. */
  points: string;
}

/**
 * Writes a case's files: a GPT-2-initialised model directory, seeded random
 * tokens [B, T+1] (throughput does not depend on the data) and seeded
 * filter-normalised directions, all through losscape's own writers.
 */
export function writeCaseFiles(dir: string, m: BenchModel, coords: Float32Array): CaseFiles {
  const layout = paramLayout(m.config);
  const theta = initParams(layout, SEEDS.init);
  const modelDir = join(dir, 'model');
  mkdirSync(modelDir, { recursive: true });
  writeFileSync(join(modelDir, 'config.json'), JSON.stringify(m.config, null, 2));
  writeFileSync(join(modelDir, 'model.safetensors'), paramsToSafetensors(layout, theta));
  const rng = new Rng(SEEDS.tokens);
  const ids = Int32Array.from({ length: m.B * (m.T + 1) }, () => rng.int(m.config.vocab_size));
  const tokens = join(dir, 'tokens.safetensors');
  writeFileSync(tokens, tokensToSafetensors(ids, m.B, m.T + 1));
  const directions = join(dir, 'directions.safetensors');
  writeFileSync(directions, directionsToSafetensors(layout, makeDirections(layout, theta, { kind: 'filter', seed: SEEDS.directions })));
  const points = join(dir, 'points.json');
  writeFileSync(points, JSON.stringify(Array.from({ length: coords.length / 2 }, (_, k) => [coords[2 * k], coords[2 * k + 1]])));
  return { modelDir, tokens, directions, points };
}

export interface EngineMeasurement {
  points: number;
  chunkPoints: number;
  /** The GEMM strategy the evaluator chose for this grid (shaders/linear.ts gemmFor); the naive loop uses the same. */
  strategy: GemmStrategy;
  /** Where the evaluator tuned its GEMMs (GPUs, big grids): each layer's choice and the candidates' times; the naive loop tunes too. */
  tunedGemms: GemmChoice[] | null;
  /** GridEvaluator.create: pipeline compilation and buffers. */
  compileMs: number;
  /** The untimed first chunk of a few points. */
  warmupMs: number;
  /** Wall clock around the whole grid (GridEvaluator.values: every chunk evaluated and read back). */
  seconds: number;
  pointsPerSecond: number;
  /**
   * One chunk timed by GPU timestamps after the grid (kernels only), when the adapter has them: a
   * full chunk, or fewer points where a chunk would take more than a few seconds.
   */
  gpuChunk: { points: number; ms: number; pointsPerSecond: number } | null;
}

export interface NaiveMeasurement {
  /** The grid indices of the sampled points (evenly spread over the grid). */
  indices: number[];
  compileMs: number;
  seconds: number;
  pointsPerSecond: number;
}

export interface TorchMeasurement {
  torch: string;
  device: string;
  loop: Omit<TorchModeResult, 'loss'> | null;
  batched: Omit<TorchModeResult, 'loss'> | null;
}

export interface ValueChecks {
  naive: LossComparison | null;
  torchLoop: LossComparison | null;
  torchBatched: LossComparison | null;
}

/** The baselines a check compares the engine with, as the messages name them. */
export const CHECK_LABELS: Record<keyof ValueChecks, string> = { naive: 'naive WebGPU loop', torchLoop: 'PyTorch loop', torchBatched: 'batched PyTorch' };

export interface GridCaseResult extends GridCase {
  model: string;
  engineDetail: EngineMeasurement;
  naiveDetail: NaiveMeasurement;
  torchDetail: TorchMeasurement | null;
  checks: ValueChecks;
}

export interface GridCaseOptions {
  ctx: GpuContext;
  dir: string;
  model: BenchModel;
  nx: number;
  ny: number;
  ceilingGflops: number;
  /** Time for the naive loop's sample of points spread over the grid. */
  naiveSeconds: number;
  /** A Python that imports torch, or null to skip the PyTorch baselines. */
  python: string | null;
  /** Each PyTorch mode stops after this long. */
  torchSeconds: number;
  /** The GEMM of the engine and the naive loop (default: the adapter's choice, gemmFor, tuned on GPUs). */
  gemm?: GemmStrategy;
  log: (line: string) => void;
}

const elapsed = (start: number): number => performance.now() - start;

async function measureEngine(
  ctx: GpuContext, layout: ParamLayout, batch: TokenBatch, weights: { centre: Float32Array; d1: Float32Array; d2: Float32Array },
  coords: Float32Array, gemm: GemmStrategy | undefined,
): Promise<{ values: Float32Array; m: EngineMeasurement }> {
  const total = coords.length / 2;
  let start = performance.now();
  const grid = await GridEvaluator.create(ctx, new KernelCache(ctx), layout, batch, weights, {
    metric: 'ce', totalPoints: total, ...(gemm ? { strategy: gemm } : {}),
  });
  const compileMs = elapsed(start);
  try {
    start = performance.now();
    await grid.values(coords.subarray(0, 2 * Math.min(grid.chunkPoints, 4)));
    const warmupMs = elapsed(start);
    start = performance.now();
    const values = await grid.values(coords);
    const seconds = elapsed(start) / 1000;
    // At most a chunk, and about GPU_CHUNK_SECONDS of work at the rate just measured.
    const gpuChunk = await timeChunk(ctx, grid, coords, Math.max(1, Math.round(GPU_CHUNK_SECONDS * total / seconds)));
    return { values, m: { points: total, chunkPoints: grid.chunkPoints, strategy: grid.plan.gemmStrategy, tunedGemms: grid.plan.tuned ? grid.plan.gemms : null, compileMs, warmupMs, seconds, pointsPerSecond: total / seconds, gpuChunk } };
  } finally {
    grid.destroy();
  }
}

const GPU_CHUNK_SECONDS = 5;

/** The GPU time of one chunk's forward (of at most maxPoints points), or null without (plausible) timestamps. */
async function timeChunk(ctx: GpuContext, grid: GridEvaluator, coords: Float32Array, maxPoints: number): Promise<EngineMeasurement['gpuChunk']> {
  const timer = new PassTimer(ctx, 1);
  try {
    if (!timer.available) return null;
    const points = Math.min(grid.chunkPoints, coords.length / 2, maxPoints);
    grid.plan.setCoords(coords.subarray(0, 2 * points));
    const start = performance.now();
    const encoder = ctx.device.createCommandEncoder({ label: 'bench timed chunk' });
    grid.plan.encode(encoder, points, 0, timer.timestampWrites());
    const read = timer.resolve(encoder);
    ctx.device.queue.submit([encoder.finish()]);
    const ms = (await read())?.[0];
    const wallMs = elapsed(start);
    // Some implementations return zeros or quantised ticks: trust them only when plausible.
    if (ms === undefined || !(ms > 0) || ms > wallMs * 1.01) return null;
    return { points, ms, pointsPerSecond: (1000 * points) / ms };
  } finally {
    timer.destroy();
  }
}

/** Indices of n points spread evenly over 0..total-1 (both ends included). */
export function spreadIndices(total: number, n: number): number[] {
  if (n >= total) return Array.from({ length: total }, (_, i) => i);
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, i) => Math.round((i * (total - 1)) / (n - 1)));
}

async function measureNaive(
  ctx: GpuContext, layout: ParamLayout, batch: TokenBatch, weights: { centre: Float32Array; d1: Float32Array; d2: Float32Array },
  coords: Float32Array, budgetSeconds: number, gemm: { strategy: GemmStrategy; tune: boolean },
): Promise<{ values: Float32Array; m: NaiveMeasurement }> {
  const total = coords.length / 2;
  let start = performance.now();
  const naive = await NaiveEvaluator.create(ctx, new KernelCache(ctx), layout, batch, weights, { metric: 'ce', ...gemm });
  const compileMs = elapsed(start);
  try {
    start = performance.now();
    await naive.value(coords[0]!, coords[1]!); // warm-up, and the estimate of one point's time
    const perPoint = elapsed(start) / 1000;
    const indices = spreadIndices(total, Math.max(3, Math.floor(budgetSeconds / perPoint)));
    const sample = new Float32Array(indices.flatMap((k) => [coords[2 * k]!, coords[2 * k + 1]!]));
    start = performance.now();
    const values = await naive.values(sample);
    const seconds = elapsed(start) / 1000;
    return { values, m: { indices, compileMs, seconds, pointsPerSecond: indices.length / seconds } };
  } finally {
    naive.destroy();
  }
}

const rate = (r: { pointsPerSecond: number } | null | undefined): number | null => r?.pointsPerSecond ?? null;

/**
 * One tuned layer in a line, each candidate with its time and GFLOP/s:
 * `c_attn.weight: tiled/.../4x4/16x16/bk16 0.120 ms 5000 GFLOP/s (then tiled/.../8x8/8x8/bk16 0.151 ms 3974, ...)`.
 */
export function describeTuning(g: GemmChoice): string {
  const short = (kernel: string): string => kernel.replace(/^linear\//, '');
  const gflops = (ms: number): string => (g.flops / ms / 1e6).toFixed(0);
  const [best, ...rest] = g.trials;
  if (!best) return `${g.weight}: ${short(g.kernel)}`;
  return `${g.weight}: ${short(best.kernel)} ${best.ms.toFixed(3)} ms ${gflops(best.ms)} GFLOP/s`
    + (rest.length ? ` (then ${rest.map((t) => `${short(t.kernel)} ${t.ms.toFixed(3)} ms ${gflops(t.ms)}`).join(', ')})` : '');
}

export function describeCheck(what: string, c: LossComparison): string {
  const verdict = c.ok ? 'agree' : `DISAGREE at ${c.mismatches.length} point(s), first at point ${c.mismatches[0]}`;
  return `${what}: ${c.points} shared points ${verdict} (max |diff| ${c.maxAbsDiff.toExponential(2)}, max rel ${c.maxRelDiff.toExponential(2)})`;
}

/** Measures one case: files, engine, naive loop, PyTorch; values checked before speeds. */
export async function runGridCase(o: GridCaseOptions): Promise<GridCaseResult> {
  const { ctx, model: m, nx, ny, log } = o;
  const name = `${m.name} ${nx}x${ny}`;
  const coords = gridCoords(linspace(GRID_RANGE[0], GRID_RANGE[1], nx), linspace(GRID_RANGE[2], GRID_RANGE[3], ny));
  const files = writeCaseFiles(o.dir, m, coords);
  const loaded = loadModel(files.modelDir);
  const batch = loadTokens(files.tokens, loaded.config);
  const dirs = directionsFromSafetensors(loaded.layout, parseSafetensors(readBytes(files.directions), files.directions), files.directions);
  const weights = { centre: loaded.params, d1: dirs.d1, d2: dirs.d2 };

  log(`${name}: engine, ${nx * ny} points`);
  const engine = await measureEngine(ctx, loaded.layout, batch, weights, coords, o.gemm);
  const e = engine.m;
  log(`${name}: engine (${e.tunedGemms ? 'tuned' : e.strategy} GEMM) compile ${(e.compileMs / 1000).toFixed(1)} s, ${e.points} points in ${e.seconds.toFixed(1)} s = ${e.pointsPerSecond.toFixed(1)} pt/s`
    + (e.gpuChunk ? ` (kernels alone ${e.gpuChunk.pointsPerSecond.toFixed(1)} pt/s)` : ''));
  for (const g of e.tunedGemms ?? []) log(`${name}:   ${describeTuning(g)}`);

  log(`${name}: naive WebGPU loop, sampled for ~${o.naiveSeconds} s`);
  // The GEMM the engine chose for this grid: the two differ in the loop, not in the kernels.
  const naiveRun = await measureNaive(ctx, loaded.layout, batch, weights, coords, o.naiveSeconds, { strategy: e.strategy, tune: e.tunedGemms !== null });
  const naive = naiveRun.m;
  const checks: ValueChecks = {
    naive: compareLosses(naive.indices.map((k) => engine.values[k]!), naiveRun.values), torchLoop: null, torchBatched: null,
  };
  log(`${name}: naive ${naive.indices.length} points in ${naive.seconds.toFixed(1)} s = ${naive.pointsPerSecond.toFixed(2)} pt/s`);

  let torch: TorchMeasurement | null = null;
  if (o.python) {
    log(`${name}: PyTorch loop and batched (${o.python}), up to ${o.torchSeconds} s each`);
    const r = await runTorchGrid(o.python, {
      model: files.modelDir, tokens: files.tokens, directions: files.directions, pointsFile: files.points, mode: 'both', maxSeconds: o.torchSeconds,
    });
    const strip = (x: TorchModeResult | null): Omit<TorchModeResult, 'loss'> | null => {
      if (!x) return null;
      const { loss: _, ...rest } = x;
      return rest;
    };
    torch = { torch: r.torch, device: r.device, loop: strip(r.loop), batched: strip(r.batched) };
    if (r.loop?.loss) checks.torchLoop = compareLosses(engine.values, r.loop.loss);
    if (r.batched?.loss) checks.torchBatched = compareLosses(engine.values, r.batched.loss);
    log(`${name}: torch ${r.torch} loop ${rate(torch.loop)?.toFixed(1)} pt/s, batched ${rate(torch.batched)?.toFixed(1)} pt/s`);
  }

  for (const [key, c] of Object.entries(checks) as Array<[keyof ValueChecks, LossComparison | null]>) {
    if (c) log(`${name}: values ${describeCheck(`engine vs ${CHECK_LABELS[key]}`, c)}`);
  }
  return {
    name,
    model: m.name,
    config: loaded.config,
    params: loaded.layout.paramCount,
    B: batch.B,
    T: batch.T,
    nx,
    ny,
    engine: e.pointsPerSecond,
    naive: naive.pointsPerSecond,
    torchLoop: rate(torch?.loop),
    torchBatched: rate(torch?.batched),
    ceilingGflops: o.ceilingGflops,
    engineDetail: e,
    naiveDetail: naive,
    torchDetail: torch,
    checks,
  };
}
