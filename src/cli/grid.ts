/**
 * `losscape grid`: the loss over a plane `centre + a d1 + b d2` on the GPU,
 * written as the grid file of SPEC section 3. With --run it adds the
 * training path (projection, residual, true loss and height on the plane of
 * every checkpoint); with --frames it evaluates the wormhole, one plane per
 * checkpoint. --shard K/N evaluates one share of the points for `losscape
 * merge`; an interrupted job leaves OUT.partial, which --resume continues.
 *
 * `runPlaneJob` is shared with `losscape line`.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { type GPTConfig, InputError } from '../model/config.ts';
import { type ParamLayout } from '../model/params.ts';
import { describeAdapter } from '../gpu/context.ts';
import { KernelCache } from '../gpu/kernel.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { type GridFile, type TokenBatch, gridToSafetensors } from '../io/formats.ts';
import { GridEvaluator, linspace } from '../landscape/grid.ts';
import { type GridJob, doneCount, newJobState, partialFromSafetensors, partialToSafetensors, runJob } from '../landscape/job.ts';
import {
  type GridFrame, type ShardSpec, joinAdapters, jobFingerprint, parseShard, sha256Hex, shardShare, shardToSafetensors,
} from '../landscape/shards.ts';
import { plainLosses, shiftedCentre } from '../landscape/path.ts';
import { projectOntoPlane } from '../landscape/project.ts';
import { type Run, everyKth, loadCheckpoint } from '../landscape/run.ts';
import { loadTokens, readBytes, writeFileAtomic } from '../node/files.ts';
import { nodeGpu } from '../node/gpu.ts';
import { loadRun, nodeRunReader } from '../node/run.ts';
import { type Metric } from '../../shaders/loss.ts';
import { type DirectionFlags, type DirectionKindFlag, addDirectionOptions, buildDirections, directionRequestFields, loadCentre, loadDirections, parseKind } from './directions.ts';
import { parseInteger, parseMetric } from './options.ts';
import { ENGINE } from './version.ts';

// ---------------------------------------------------------------- flag values

/** `NX` or `NXxNY` (NY = NX when omitted), each an integer >= 2. */
export function parseRes(v: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$/.exec(v);
  const nx = m ? Number(m[1]) : NaN;
  const ny = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || !(nx >= 2) || !(ny >= 2) || !Number.isSafeInteger(nx) || !Number.isSafeInteger(ny)) {
    throw new InputError(`--res: expected NX or NXxNY with integers >= 2 (e.g. 51 or 64x48), got "${v}"`);
  }
  return [nx, ny];
}

function parseInterval(flag: string, text: string, whole: string): [number, number] {
  const parts = text.split(':');
  const [lo, hi] = parts.map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (parts.length !== 2 || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new InputError(`${flag}: expected A:B with numbers A < B, got "${whole}"`);
  }
  if (!(lo! < hi!)) throw new InputError(`${flag}: the range ${text} is empty or descending; expected A < B (negate a direction to flip its axis)`);
  return [lo!, hi!];
}

/** `A:B` (both axes) or `A:B,C:D` (alpha, then beta), with A < B and C < D. */
export function parseRange(v: string): [number, number, number, number] {
  const parts = v.split(',');
  if (parts.length > 2) throw new InputError(`--range: expected A:B or A:B,C:D, got "${v}"`);
  const a = parseInterval('--range', parts[0]!, v);
  const b = parts.length === 2 ? parseInterval('--range', parts[1]!, v) : a;
  return [a[0], a[1], b[0], b[1]];
}

export function parseOffset(v: string): [number, number] {
  const parts = v.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (parts.length !== 2 || !parts.every(Number.isFinite)) throw new InputError(`--offset: expected a,b (two numbers), got "${v}"`);
  return [parts[0]!, parts[1]!];
}

/**
 * The target positions the loss is taken on, as weights [B*T]:
 * `all`, `last` (t = T-1 of each sequence), or a comma list of positions t
 * and ranges `t1-t2` (0-based; a negative t counts from the end, -1 = last).
 * They multiply the tokens file's own mask when it has one.
 */
export function positionsMask(spec: string, batch: TokenBatch): Float32Array | null {
  const { B, T } = batch;
  const fail = (why: string): never => {
    throw new InputError(`--positions ${JSON.stringify(spec)}: ${why}`);
  };
  const chosen = new Uint8Array(T);
  if (spec === 'all') return batch.mask;
  if (spec === 'last') {
    chosen[T - 1] = 1;
  } else {
    for (const item of spec.split(',').map((s) => s.trim())) {
      const single = /^-?\d+$/.exec(item);
      const range = /^(\d+)-(\d+)$/.exec(item);
      if (single) {
        const t = Number(item) < 0 ? T + Number(item) : Number(item);
        if (t < 0 || t >= T) fail(`position ${item} is outside 0..${T - 1} (T = ${T})`);
        chosen[t] = 1;
      } else if (range) {
        const [lo, hi] = [Number(range[1]), Number(range[2])];
        if (hi < lo) fail(`the range ${item} is empty`);
        if (hi >= T) fail(`position ${hi} is outside 0..${T - 1} (T = ${T})`);
        chosen.fill(1, lo, hi + 1);
      } else {
        fail(`"${item}" is not a position or range (expected all, last, or e.g. 0,5-7,-1)`);
      }
    }
  }
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) mask[b * T + t] = chosen[t]! * (batch.mask ? batch.mask[b * T + t]! : 1);
  if (!mask.some((w) => w > 0)) fail('selects no position with a non-zero weight in the tokens file\'s mask');
  return mask;
}

/** The batch: --tokens, else the run's eval.safetensors, checked against the model, with --positions applied. */
export function loadBatch(tokens: string | undefined, run: Run | null, config: GPTConfig, positions: string): { path: string; batch: TokenBatch } {
  const path = tokens ?? run?.evalPath;
  if (path === undefined || path === null) {
    throw new InputError(run ? `${run.dir}: the run has no eval.safetensors; pass --tokens FILE` : 'needs --tokens FILE or --run RUN');
  }
  const batch = loadTokens(path, config);
  return { path, batch: { ...batch, mask: positionsMask(positions, batch) } };
}

/** An InputError now, not after the GPU work, when the output cannot be written there. */
export function checkOutput(out: string): void {
  if (existsSync(out) && statSync(out).isDirectory()) throw new InputError(`--out ${out}: is a directory, expected a file name`);
  const dir = dirname(out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`--out ${out}: the directory ${dir} does not exist`);
}

// ---------------------------------------------------------------- the job

/** Checkpoints whose weights a job reads, by index. */
export interface CheckpointSeries {
  steps: number[];
  load: (i: number) => Float32Array;
  /** SHA-256 of each checkpoint file, for the fingerprint. */
  hashes: string[];
}

export interface PlaneJob {
  layout: ParamLayout;
  centre: Float32Array;
  d1: Float32Array;
  d2: Float32Array;
  batch: TokenBatch;
  metric: Metric;
  alpha: Float32Array;
  beta: Float32Array;
  /** A still grid's training path: each checkpoint projected onto the plane. */
  path?: CheckpointSeries;
  /** The wormhole: frame f centred so that checkpoint f sits at `offset` of the plane. */
  frames?: CheckpointSeries & { offset: [number, number] };
  /** The grid file's metadata, before engine, adapter and fingerprint. */
  metadata: Record<string, string>;
}

export interface JobFlags {
  out: string;
  json?: boolean;
  resume?: boolean;
  shard?: ShardSpec;
  chunk?: number;
  memory?: number;
}

/** Partial writes at most this often, besides the one on interruption: big grids have many small chunks. */
const PARTIAL_INTERVAL_MS = 1000;

function finiteRange(values: Float32Array): { min: number | null; max: number | null; nonFinite: number } {
  let min = Infinity;
  let max = -Infinity;
  let nonFinite = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) nonFinite++;
    else {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
  }
  return { min: nonFinite === values.length ? null : min, max: nonFinite === values.length ? null : max, nonFinite };
}

async function fingerprintOf(job: PlaneJob): Promise<string> {
  const { batch } = job;
  return jobFingerprint({
    engine: ENGINE,
    centre: await sha256Hex(job.centre),
    d1: await sha256Hex(job.d1),
    d2: await sha256Hex(job.d2),
    tokens: [await sha256Hex(batch.idx), await sha256Hex(batch.targets), batch.mask ? await sha256Hex(batch.mask) : null, batch.B, batch.T],
    metric: job.metric,
    alpha: await sha256Hex(job.alpha),
    beta: await sha256Hex(job.beta),
    frames: job.frames ? { steps: job.frames.steps, files: job.frames.hashes, offset: job.frames.offset } : null,
    path: job.path ? { steps: job.path.steps, files: job.path.hashes } : null,
  });
}

/** A bar on stderr (drawn only on a terminal): points done, points/s, ETA, and the frame of a wormhole. */
function progressBar(total: number, frames: number): { update(done: number, frame: number): void; stop(): void } {
  const bar = new cliProgress.SingleBar({
    format: `grid |{bar}| {percentage}% {value}/{total} points | {speed} points/s | ETA {eta_formatted}${frames > 1 ? ' | frame {frame}' : ''}`,
    stream: process.stderr,
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  const started = performance.now();
  let first = -1;
  bar.start(total, 0, { speed: '-', frame: `1/${frames}` });
  return {
    update(done: number, frame: number) {
      if (first < 0) first = done;
      const seconds = (performance.now() - started) / 1000;
      bar.update(done, { speed: seconds > 0 ? ((done - first) / seconds).toFixed(1) : '-', frame: `${frame + 1}/${frames}` });
    },
    stop: () => bar.stop(),
  };
}

/**
 * Evaluates a plane job (all of it, or the share of --shard), resuming from
 * OUT.partial with --resume, and writes the grid file (or shard file)
 * atomically. SIGINT/SIGTERM stop it at a chunk boundary with the partial
 * file written (exit 130/143).
 */
export async function runPlaneJob(job: PlaneJob, flags: JobFlags): Promise<void> {
  const nx = job.alpha.length;
  const ny = job.beta.length;
  const frames = job.frames ? job.frames.steps.length : 1;
  const points = frames * nx * ny;
  const share = flags.shard ? shardShare(flags.shard, points) : { start: 0, count: points };
  const fingerprint = await fingerprintOf(job);
  const partialPath = `${flags.out}.partial`;

  let state = newJobState(share);
  let previousAdapter = '';
  if (existsSync(partialPath)) {
    if (!flags.resume) throw new InputError(`${partialPath}: an interrupted run of this output left it; pass --resume to continue it, or delete it`);
    const partial = partialFromSafetensors(parseSafetensors(readBytes(partialPath), partialPath), partialPath, { fingerprint, share });
    state = partial.state;
    previousAdapter = partial.adapter;
  }
  const resumedPoints = doneCount(state);

  const ctx = await nodeGpu();
  const adapter = joinAdapters([previousAdapter, describeAdapter(ctx.adapter)].filter((a) => a !== ''));
  const kernels = new KernelCache(ctx);
  const withPath = !flags.shard || flags.shard.index === 0;
  const pathPoints = withPath ? (job.path?.steps.length ?? frames) : 0;
  const evaluator = await GridEvaluator.create(ctx, kernels, job.layout, job.batch, { centre: job.centre, d1: job.d1, d2: job.d2 }, {
    metric: job.metric,
    totalPoints: Math.max(share.count - resumedPoints, pathPoints, 1),
    ...(flags.chunk ? { chunkPoints: flags.chunk } : {}),
    ...(flags.memory ? { memoryBudgetBytes: flags.memory * 1024 * 1024 } : {}),
  });
  const frameCentre = (f: number): Float32Array => {
    const fr = job.frames!;
    return shiftedCentre(fr.load(f), job.d1, job.d2, fr.offset[0], fr.offset[1]);
  };

  const writePartial = (): void => {
    writeFileAtomic(partialPath, partialToSafetensors({ fingerprint, share, state, adapter }));
  };
  const controller = new AbortController();
  let interruptCode = 0;
  const interrupt = (code: number): void => {
    if (controller.signal.aborted) return;
    interruptCode = code;
    controller.abort();
  };
  const onSigint = (): void => interrupt(130);
  const onSigterm = (): void => interrupt(143);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  // Tests simulate an interruption after this many chunks (partial written, exit 130).
  const stopAfter = Number(process.env.LOSSCAPE_TEST_STOP_AFTER_CHUNKS ?? 0);
  let chunks = 0;
  let lastWrite = performance.now();
  const started = performance.now();
  const bar = progressBar(share.count, frames);
  bar.update(resumedPoints, Math.floor(share.start / (nx * ny)));
  const gridJob: GridJob = { nx, ny, frames, alpha: job.alpha, beta: job.beta, share };
  try {
    await runJob(gridJob, state, evaluator, {
      ...(job.frames ? { frameCentre } : {}),
      signal: controller.signal,
      onChunk: (p) => {
        bar.update(p.done, p.frame);
        chunks++;
        if (chunks === stopAfter) {
          writePartial();
          interrupt(130);
        } else if (performance.now() - lastWrite >= PARTIAL_INTERVAL_MS) {
          writePartial();
          lastWrite = performance.now();
        }
      },
    });
  } catch (e) {
    if (!controller.signal.aborted) throw e;
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
  if (controller.signal.aborted) {
    evaluator.destroy();
    writePartial();
    console.error(`losscape: interrupted: ${doneCount(state)} of ${share.count} points saved in ${partialPath}; rerun the same command with --resume to continue`);
    process.exitCode = interruptCode;
    return;
  }
  const seconds = (performance.now() - started) / 1000;

  const grid: GridFrame = {
    nx, ny, frames, animated: job.frames !== undefined, alpha: job.alpha, beta: job.beta,
    metadata: { ...job.metadata, engine: ENGINE, adapter, fingerprint },
  };
  if (withPath && job.path) await addPath(grid, job, job.path, evaluator, ctx, kernels);
  if (withPath && job.frames) await addFramePath(grid, job, job.frames, evaluator, frameCentre, ctx, kernels);
  const gemm = evaluator.plan.gemmName;
  evaluator.destroy();

  if (flags.shard) {
    writeFileAtomic(flags.out, shardToSafetensors({ grid, shard: flags.shard, share, fingerprint, values: state.values }));
  } else {
    const file: GridFile = { ...grid, loss: state.values };
    writeFileAtomic(flags.out, gridToSafetensors(file));
  }
  rmSync(partialPath, { force: true });

  const { min, max, nonFinite } = finiteRange(state.values);
  const evaluated = share.count - resumedPoints;
  const summary = {
    out: flags.out, nx, ny, frames, points: share.count, total_points: points, resumed_points: resumedPoints,
    ...(flags.shard ? { shard: `${flags.shard.index}/${flags.shard.count}`, shard_start: share.start } : {}),
    min, max, non_finite: nonFinite, seconds, points_per_second: seconds > 0 ? evaluated / seconds : null,
    path: grid.path ? grid.path.length / 2 : 0, adapter, gemm, fingerprint,
  };
  if (flags.json) {
    console.log(JSON.stringify(summary));
  } else {
    const what = flags.shard ? `shard ${summary.shard} (${share.count} of ${points} points)` : `${frames > 1 ? `${frames} frames of ` : ''}${nx}x${ny} grid`;
    const span = min === null ? 'no finite value' : `loss ${min.toPrecision(5)} .. ${max!.toPrecision(5)}`;
    console.log(`${what}: ${span}${nonFinite ? `, ${nonFinite} non-finite` : ''}, ${summary.points_per_second?.toFixed(1) ?? '-'} points/s on ${adapter} -> ${flags.out}`);
  }
}

/** A still grid's path: projection and residual of each checkpoint, its true loss and its height on the plane. */
async function addPath(
  grid: GridFrame, job: PlaneJob, series: CheckpointSeries, evaluator: GridEvaluator,
  ctx: Awaited<ReturnType<typeof nodeGpu>>, kernels: KernelCache,
): Promise<void> {
  const n = series.steps.length;
  const path = new Float32Array(2 * n);
  const residual = new Float32Array(n);
  grid.pathLoss = await plainLosses(ctx, kernels, job.layout, job.batch, job.metric, n, (i) => {
    const w = series.load(i);
    const p = projectOntoPlane(w, job.centre, job.d1, job.d2);
    path[2 * i] = p.a;
    path[2 * i + 1] = p.b;
    residual[i] = p.residual;
    return w;
  });
  evaluator.setCentre(job.centre);
  grid.pathPlaneLoss = await evaluator.values(path);
  grid.path = path;
  grid.pathResidual = residual;
  grid.pathStep = Int32Array.from(series.steps);
}

/** The wormhole's path: checkpoint f sits at the offset of frame f, on the plane (residual 0). */
async function addFramePath(
  grid: GridFrame, job: PlaneJob, series: CheckpointSeries & { offset: [number, number] }, evaluator: GridEvaluator,
  frameCentre: (f: number) => Float32Array, ctx: Awaited<ReturnType<typeof nodeGpu>>, kernels: KernelCache,
): Promise<void> {
  const n = series.steps.length;
  const at = new Float32Array(series.offset);
  const planeLoss = new Float32Array(n);
  for (let f = 0; f < n; f++) {
    evaluator.setCentre(frameCentre(f));
    planeLoss[f] = (await evaluator.values(at))[0]!;
  }
  grid.pathLoss = await plainLosses(ctx, kernels, job.layout, job.batch, job.metric, n, series.load);
  grid.path = Float32Array.from({ length: 2 * n }, (_, k) => series.offset[k % 2]!);
  grid.pathResidual = new Float32Array(n);
  grid.pathPlaneLoss = planeLoss;
  grid.pathStep = Int32Array.from(series.steps);
}

// ---------------------------------------------------------------- the verb

interface GridFlags extends JobFlags, DirectionFlags {
  model?: string;
  directions?: string;
  kind?: DirectionKindFlag;
  tokens?: string;
  run?: string;
  res: [number, number];
  range: [number, number, number, number];
  metric: Metric;
  positions: string;
  frames?: boolean;
  every?: number;
  offset?: [number, number];
}

/** `file:PATH` or `KIND seed S`, as the grid's metadata names its directions. */
function describeDirections(opts: GridFlags, kind: DirectionKindFlag): string {
  return opts.directions !== undefined ? `file:${opts.directions}` : `${kind} seed ${opts.seed}`;
}

export function register(program: Command): void {
  const cmd = program
    .command('grid')
    .description('evaluate the loss over the plane centre + a*d1 + b*d2 on the GPU and write a grid file')
    .option('--model <path>', 'centre: model directory, checkpoint file, run directory (last checkpoint) or RUN:STEP / RUN:init / RUN:final (default: the --run\'s final checkpoint)')
    .option('--directions <file>', 'directions file (losscape directions), its shapes those of the model')
    .option('--kind <k>', 'compute the directions instead: random|filter|layer|model|pca|hessian|axis (default filter)', parseKind);
  addDirectionOptions(cmd, 'with --kind ')
    .option('--tokens <file>', 'tokens file of the batch (default: the --run\'s eval.safetensors)')
    .option('--run <dir>', 'training run: adds its path (or, with --frames, one frame per checkpoint)')
    .requiredOption('--res <NXxNY>', 'points along alpha and beta: NX or NXxNY, each >= 2', parseRes)
    .addOption(new Option('--range <A:B[,C:D]>', 'alpha from A to B and beta from C to D (both A:B when one is given), A < B')
      .argParser(parseRange).default([-1, 1, -1, 1], '-1:1'))
    .option('--metric <m>', 'ce (cross-entropy), acc (top-1 accuracy) or mse (softmax vs one-hot)', parseMetric, 'ce' as Metric)
    .option('--positions <spec>', 'target positions the loss is taken on: all, last, or a list like 0,5-7,-1', 'all')
    .option('--frames', 'the wormhole: with --run, one grid per checkpoint, centred on it (loss [frames, ny, nx])')
    .option('--every <k>', 'with --run: every k-th checkpoint (and the last) for the path or the frames', parseInteger('--every', 1))
    .option('--offset <a,b>', 'with --frames: each checkpoint sits at (a, b) of its frame instead of (0, 0)', parseOffset)
    .requiredOption('--out <file>', 'the grid file to write (or this shard\'s file with --shard)')
    .option('--json', 'print a JSON summary')
    .option('--resume', 'continue from OUT.partial, left by an interrupted run of the same job')
    .option('--shard <K/N>', 'evaluate share K (0-based) of N: points floor(K*P/N) .. floor((K+1)*P/N)-1 in storage order; join with losscape merge', parseShard)
    .option('--chunk <p>', 'points per GPU chunk (default: from the device limits and --memory)', parseInteger('--chunk', 1))
    .option('--memory <mb>', 'GPU memory for one chunk\'s activations, MiB (default 256 on CPU adapters, 1024 on GPUs)', parseInteger('--memory', 1))
    .action(async (opts: GridFlags) => {
      if (opts.directions !== undefined && opts.kind !== undefined) throw new InputError('give --directions FILE or --kind K, not both');
      if (opts.kind === 'file') throw new InputError('--kind file: give the file as --directions FILE');
      if (opts.frames && opts.run === undefined) throw new InputError('--frames needs --run RUN (one frame per checkpoint)');
      if (opts.every !== undefined && opts.run === undefined) throw new InputError('--every needs --run RUN');
      if (opts.offset !== undefined && !opts.frames) throw new InputError('--offset applies to --frames only');
      checkOutput(opts.out);
      const run = opts.run !== undefined ? loadRun(opts.run) : null;
      const model = loadCentre(opts.model, run);
      const { path: tokensPath, batch } = loadBatch(opts.tokens, run, model.config, opts.positions);
      const kind = opts.kind ?? 'filter';
      const dirs = opts.directions !== undefined
        ? loadDirections(model.layout, opts.directions)
        : await buildDirections(model.layout, model.params, model.source, {
          kind, ...directionRequestFields(opts), run, tokens: batch,
        });
      const [nx, ny] = opts.res;
      const [a0, a1, b0, b1] = opts.range;
      const series = run ? everyKth(run.checkpoints, opts.every ?? 1) : [];
      const checkpoints: CheckpointSeries | undefined = run
        ? {
          steps: series.map((c) => c.step),
          load: (i) => loadCheckpoint(run, series[i]!, nodeRunReader),
          hashes: await Promise.all(series.map((c) => sha256Hex(readBytes(c.path)))),
        }
        : undefined;
      const metadata: Record<string, string> = {
        model: model.source,
        ...(run ? { run: run.dir } : {}),
        directions: describeDirections(opts, kind),
        ...Object.fromEntries(Object.entries(dirs.metadata).map(([k, v]) => [`directions.${k}`, v])),
        metric: opts.metric,
        positions: opts.positions,
        tokens: String(batch.B * batch.T),
        tokens_file: tokensPath,
        tokens_shape: `${batch.B}x${batch.T}`,
        range: `${a0}:${a1},${b0}:${b1}`,
        res: `${nx}x${ny}`,
        ...(opts.frames ? { frame_steps: checkpoints!.steps.join(','), offset: (opts.offset ?? [0, 0]).join(',') } : {}),
        ...(checkpoints && !opts.frames ? { path_steps: checkpoints.steps.join(',') } : {}),
      };
      const job: PlaneJob = {
        layout: model.layout, centre: model.params, d1: dirs.d1, d2: dirs.d2, batch, metric: opts.metric,
        alpha: linspace(a0, a1, nx), beta: linspace(b0, b1, ny), metadata,
        ...(checkpoints && opts.frames ? { frames: { ...checkpoints, offset: opts.offset ?? [0, 0] } } : {}),
        ...(checkpoints && !opts.frames ? { path: checkpoints } : {}),
      };
      await runPlaneJob(job, {
        out: opts.out,
        ...(opts.json ? { json: true } : {}), ...(opts.resume ? { resume: true } : {}), ...(opts.shard ? { shard: opts.shard } : {}),
        ...(opts.chunk ? { chunk: opts.chunk } : {}), ...(opts.memory ? { memory: opts.memory } : {}),
      });
    });
}
