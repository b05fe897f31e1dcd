/**
 * `losscape bench`: the benchmark of SPEC section 6 and issue 6 in one run on
 * one adapter: the FMA ceiling, then for each case of the ladder the engine,
 * the naive WebGPU loop and the PyTorch baselines on the same files (values
 * checked before speeds), then training throughput; a table of ratios on
 * stdout (JSON with --json, and to --out FILE), progress on stderr. A value
 * mismatch is reported on stderr and makes the exit status 1.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command } from 'commander';
import { describeAdapter } from '../gpu/context.ts';
import { measureFmaCeiling } from '../gpu/fma.ts';
import { InputError } from '../model/config.ts';
import { nodeGpu } from '../node/gpu.ts';
import { writeFileAtomic } from '../node/files.ts';
import { BENCH_MODELS, benchModel, CHECK_LABELS, describeCheck, LADDER, QUICK_GRID, REFERENCE_MODEL, runGridCase, type BenchModel, type GridCaseResult, type ValueChecks } from '../../bench/harness.ts';
import { gridJson, gridTable, type LossComparison, profileTable, TARGETS, trainJson, trainTable } from '../../bench/report.ts';
import { runTrainCase, type TrainCaseResult } from '../../bench/training.ts';
import { type ModelProfile, PROFILE_POINTS, PROFILE_RUNS, profileModel } from '../../bench/profile.ts';
import { findTorchPython } from '../../bench/torch.ts';
import { GEMM_STRATEGIES, type GemmStrategy } from '../../shaders/linear.ts';
import { parseNumber } from './options.ts';

interface BenchFlags {
  json?: boolean;
  quick?: boolean;
  out?: string;
  models?: string;
  grids?: string;
  torch: boolean;
  train: boolean;
  naiveSeconds?: number;
  torchSeconds?: number;
  profile?: boolean;
  gemm?: GemmStrategy;
}

export function parseGemm(text: string): GemmStrategy {
  const s = GEMM_STRATEGIES.find((g) => g === text);
  if (!s) throw new InputError(`--gemm: unknown GEMM "${text}", expected one of ${GEMM_STRATEGIES.join(', ')}`);
  return s;
}

/** `33` or `17x9`, comma-separated. */
export function parseGrids(text: string): Array<{ nx: number; ny: number }> {
  return text.split(',').map((part) => {
    const m = /^\s*(\d+)(?:x(\d+))?\s*$/i.exec(part);
    const nx = m ? Number(m[1]) : NaN;
    const ny = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(nx >= 1 && ny >= 1)) throw new InputError(`--grids: expected a comma-separated list of NX or NXxNY (positive integers), got "${part}"`);
    return { nx, ny };
  });
}

export function parseModels(text: string): BenchModel[] {
  return text.split(',').map((name) => {
    const m = benchModel(name.trim());
    if (!m) throw new InputError(`--models: unknown model "${name.trim()}", expected names from ${BENCH_MODELS.map((b) => b.name).join(', ')}`);
    return m;
  });
}

const positiveSeconds = (flag: string) => (v: string): number => {
  const n = parseNumber(flag)(v);
  if (!(n > 0)) throw new InputError(`${flag}: expected a positive number of seconds, got "${v}"`);
  return n;
};

function gitCommit(): string | null {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** One line per value check that failed: the bench then exits 1, whatever the speeds. */
export function valueFailures(results: ReadonlyArray<Pick<GridCaseResult, 'name' | 'checks'>>): string[] {
  return results.flatMap((r) => (Object.entries(r.checks) as Array<[keyof ValueChecks, LossComparison | null]>)
    .flatMap(([key, c]) => (c && !c.ok ? [`${r.name}: ${describeCheck(`engine vs ${CHECK_LABELS[key]}`, c)}`] : [])));
}

const fmtLoad = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');

/** `losscape bench --profile`: per model, the per-kernel GPU time of a grid chunk and of a training step. */
async function profile(models: readonly BenchModel[], flags: BenchFlags, log: (line: string) => void): Promise<void> {
  const ctx = await nodeGpu();
  const adapter = describeAdapter(ctx.adapter);
  log(`adapter ${adapter}`);
  const profiles: ModelProfile[] = [];
  for (const m of models) profiles.push(await profileModel(ctx, m, { train: flags.train, log }));
  const report = { date: new Date().toISOString(), commit: gitCommit(), adapter: ctx.adapter, profiles };
  const json = JSON.stringify(report, null, 2);
  if (flags.out) writeFileAtomic(flags.out, `${json}\n`);
  if (flags.json) {
    console.log(json);
    return;
  }
  console.log(`losscape bench --profile on ${adapter}: each dispatch timed in a pass of its own on the GPU, the median of ${PROFILE_RUNS} runs`);
  for (const p of profiles) {
    console.log('');
    console.log(`${p.model}: a grid chunk of ${p.grid.points} points (${p.grid.gemm} GEMM), ${p.grid.msPerPoint.toFixed(3)} ms per point`);
    console.log(profileTable(p.grid));
    if (p.train) {
      console.log('');
      console.log(`${p.model}: a training step (${p.train.gemm} GEMM)`);
      console.log(profileTable(p.train));
    }
  }
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure grid evaluation (and training) against the FMA ceiling, a naive WebGPU loop and PyTorch, on one adapter')
    .option('--json', 'print the results as JSON instead of the table')
    .option('--quick', `a smoke run: the reference case (${REFERENCE_MODEL}, unless --models) on a ${QUICK_GRID.nx}x${QUICK_GRID.ny} grid (unless --grids), short time budgets, few training steps`)
    .option('--out <file>', 'also write the JSON results to FILE')
    .option('--models <list>', `comma-separated models of the ladder: ${BENCH_MODELS.map((m) => `${m.name} (${m.description})`).join('; ')}`)
    .option('--grids <list>', 'comma-separated grid sizes NX or NXxNY, each run for every model (default: each model\'s own)')
    .option('--no-torch', 'skip the PyTorch baselines')
    .option('--no-train', 'skip the training throughput')
    .option('--naive-seconds <s>', 'time for the naive loop\'s sample of points (default 15, 3 with --quick)', positiveSeconds('--naive-seconds'))
    .option('--torch-seconds <s>', 'time limit of each PyTorch mode (default 30, 10 with --quick)', positiveSeconds('--torch-seconds'))
    .option('--gemm <strategy>', `the grid engine's and the naive loop's GEMM, one of ${GEMM_STRATEGIES.join(', ')} (default: the adapter's choice; tuned on GPUs for big grids, never with --gemm)`, parseGemm)
    .option('--profile', `instead of the benchmark: where the time goes, per kernel, in a grid chunk (${PROFILE_POINTS} points on CPU adapters, a full chunk on GPUs) and (unless --no-train) a training step of each model (--models, default ${REFERENCE_MODEL}), timed on the GPU`)
    .action(async (flags: BenchFlags) => {
      const log = (line: string): void => {
        process.stderr.write(`bench: ${line}\n`);
      };
      if (flags.profile) {
        if (flags.quick || flags.grids || flags.gemm) throw new InputError('--profile takes --models, --json and --out; --quick, --grids and --gemm are for the benchmark');
        await profile(flags.models ? parseModels(flags.models) : [benchModel(REFERENCE_MODEL)!], flags, log);
        return;
      }
      const quick = flags.quick ?? false;
      const models = flags.models ? parseModels(flags.models) : quick ? [benchModel(REFERENCE_MODEL)!] : [...LADDER];
      const grids = flags.grids ? parseGrids(flags.grids) : null;
      const cases = models.flatMap((m) => (grids ?? [quick ? QUICK_GRID : m.grid]).map((g) => ({ model: m, ...g })));
      const naiveSeconds = flags.naiveSeconds ?? (quick ? 3 : 15);
      const torchSeconds = flags.torchSeconds ?? (quick ? 10 : 30);
      const loadStart = loadavg();

      const ctx = await nodeGpu();
      const adapter = describeAdapter(ctx.adapter);
      const targets = ctx.adapter.isFallback ? TARGETS.software : TARGETS.gpu;
      const python = flags.torch ? findTorchPython() : null;
      log(`adapter ${adapter}; ${python ? `PyTorch through ${python}` : flags.torch ? 'no Python that imports torch: PyTorch baselines skipped' : 'PyTorch skipped (--no-torch)'}`);
      const fmaOptions = quick ? {} : { seconds: 1.5, repeats: 5 };
      const fmaStart = await measureFmaCeiling(ctx, fmaOptions);
      log(`FMA ceiling ${fmaStart.gflops.toFixed(2)} GFLOP/s (${fmaStart.timer} timer)`);

      const dir = mkdtempSync(join(tmpdir(), 'losscape-bench-'));
      const results: GridCaseResult[] = [];
      const trains: TrainCaseResult[] = [];
      try {
        for (const c of cases) {
          results.push(await runGridCase({
            ctx, dir: join(dir, `${c.model.name}-${c.nx}x${c.ny}`), model: c.model, nx: c.nx, ny: c.ny, ceilingGflops: fmaStart.gflops,
            naiveSeconds, python, torchSeconds, log, ...(flags.gemm ? { gemm: flags.gemm } : {}),
          }));
        }
        if (flags.train) {
          const steps = quick ? { warmup: 2, timed: 4 } : { warmup: 3, timed: 12 };
          for (const m of models) {
            trains.push(await runTrainCase({ ctx, dir: join(dir, `${m.name}-train`), model: m, steps, ceilingGflops: fmaStart.gflops, python, log }));
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // Measured again at the end; the faster of the two is the ceiling (a busy machine only slows a run).
      const fmaEnd = await measureFmaCeiling(ctx, fmaOptions);
      log(`FMA ceiling at the end ${fmaEnd.gflops.toFixed(2)} GFLOP/s`);
      const fma = fmaEnd.gflops > fmaStart.gflops ? fmaEnd : fmaStart;
      for (const r of [...results, ...trains]) r.ceilingGflops = fma.gflops;
      const valuesAgree = valueFailures(results).length === 0;
      const loadEnd = loadavg();
      const report = {
        date: new Date().toISOString(),
        commit: gitCommit(),
        machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, loadavgStart: loadStart, loadavgEnd: loadEnd },
        adapter: ctx.adapter,
        hasTimestamps: ctx.hasTimestamps,
        torch: python ? { python, version: results.find((r) => r.torchDetail)?.torchDetail?.torch ?? null } : null,
        fma,
        fmaRuns: [fmaStart.gflops, fmaEnd.gflops],
        targetsFor: ctx.adapter.isFallback ? 'software' : 'gpu',
        targets,
        grid: gridJson(results, targets),
        train: trainJson(trains),
        valuesAgree,
      };
      const json = JSON.stringify(report, null, 2);
      if (flags.out) writeFileAtomic(flags.out, `${json}\n`);
      if (flags.json) {
        console.log(json);
      } else {
        console.log(`losscape bench on ${adapter}: FMA ceiling ${fma.gflops.toFixed(2)} GFLOP/s (${fma.timer} timer); `
          + `${report.machine.cpus} CPUs (${report.machine.cpu}), load average ${fmtLoad(loadStart)} at start, ${fmtLoad(loadEnd)} at end`);
        console.log('');
        console.log(gridTable(results, targets));
        if (trains.length > 0) {
          console.log('');
          console.log(trainTable(trains));
        }
        console.log('');
        console.log(`targets (${report.targetsFor}): >= ${100 * targets.ofCeiling}% of the FMA ceiling`
          + `${targets.vsNaive ? `, >= ${targets.vsNaive}x naive` : ''}, >= ${targets.vsTorchLoop}x the PyTorch loop`
          + `${targets.vsTorchBatched ? `, >= ${targets.vsTorchBatched}x batched PyTorch` : ''}; ok = met, ! = missed`);
        console.log(valuesAgree ? 'values: the engine agrees with every baseline on the points they share' : 'values: MISMATCH (see stderr)');
      }
      const failures = valueFailures(results);
      for (const f of failures) console.error(`losscape bench: VALUE CHECK FAILED for ${f}`);
      if (failures.length > 0) process.exitCode = 1;
    });
}
