/**
 * The PyTorch baselines seen from Node: finds a Python that can `import
 * torch` (SPEC section 6: Debian's python3-torch lives in /usr/bin/python3,
 * which need not be the first python3 on PATH), runs bench/torch_grid.py and
 * bench/torch_train.py, and parses their JSON.
 */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type GPTConfig } from '../src/model/config.ts';

export const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3'];

/** The first candidate that imports torch, or null when none does (the torch baselines are then skipped). */
export function findTorchPython(candidates: readonly string[] = PYTHON_CANDIDATES): string | null {
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return python;
  }
  return null;
}

export interface TorchGridOptions {
  model: string;
  tokens: string;
  directions: string;
  /** Either a grid (points in grid-file order: beta outer, alpha inner) ... */
  res?: { nx: number; ny: number; range: [number, number, number, number] };
  /** ... or a file holding a JSON list of [alpha, beta]. */
  pointsFile?: string;
  mode?: 'both' | 'loop' | 'batched';
  /** Points per batched forward (script default: 16 on cpu, 256 on cuda). */
  batch?: number;
  /** Each mode stops after this long; points/s is over the points it timed. */
  maxSeconds?: number;
  device?: string;
  threads?: number;
  /** Include per-point losses (default true). */
  losses?: boolean;
}

export interface TorchModeResult {
  points: number;
  seconds: number;
  pointsPerSecond: number;
  /** Losses of points[0..points), in order; NaN/Infinity restored. */
  loss: number[] | null;
  batch?: number;
}

export interface TorchGridResult {
  torch: string;
  device: string;
  config: GPTConfig;
  params: number;
  B: number;
  T: number;
  points: number;
  directionsMissing: string[];
  loop: TorchModeResult | null;
  batched: TorchModeResult | null;
  maxAbsDiffLoopBatched: number | null;
}

export interface TorchTrainOptions {
  /** config.json (GPT-2 initialisation) or a model directory. */
  config?: string;
  model?: string;
  batch: number;
  block?: number;
  steps?: number;
  untimedSteps?: number;
  tokens?: string;
  lr?: number;
  device?: string;
  threads?: number;
}

export interface TorchTrainResult {
  torch: string;
  device: string;
  config: GPTConfig;
  params: number;
  batch: number;
  T: number;
  steps: number;
  seconds: number;
  tokensPerSecond: number;
  stepMs: number;
  lossFirst: number;
  lossLast: number;
}

/** The scripts write non-finite numbers as strings (JSON has none). */
export function jsonNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new Error(`expected a number or "NaN"/"Infinity"/"-Infinity", got ${JSON.stringify(v)}`);
}

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

function runPython(python: string, name: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(python, [script(name), ...args], { maxBuffer: 1 << 28, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as { code?: unknown }).code;
        reject(new Error(`${name} (${python}) failed${typeof code === 'number' ? ` with exit ${code}` : ''}: ${stderr.trim() || err.message}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as Record<string, unknown>);
      } catch (e) {
        reject(new Error(`${name}: output is not JSON (${(e as Error).message}): ${stdout.slice(0, 200)}`));
      }
    });
  });
}

function optional(flag: string, v: number | string | undefined): string[] {
  return v === undefined ? [] : [`${flag}=${v}`];
}

export function torchGridArgs(o: TorchGridOptions): string[] {
  if ((o.res === undefined) === (o.pointsFile === undefined)) throw new Error('torch_grid: give exactly one of res and pointsFile');
  const points = o.res
    ? [`--res=${o.res.nx}x${o.res.ny}`, `--range=${o.res.range[0]}:${o.res.range[1]},${o.res.range[2]}:${o.res.range[3]}`]
    : [`--points-file=${o.pointsFile}`];
  return [
    `--model=${o.model}`, `--tokens=${o.tokens}`, `--directions=${o.directions}`, ...points,
    ...optional('--mode', o.mode), ...optional('--batch', o.batch), ...optional('--max-seconds', o.maxSeconds),
    ...optional('--device', o.device), ...optional('--threads', o.threads), ...(o.losses === false ? ['--no-losses'] : []),
  ];
}

function modeResult(raw: unknown): TorchModeResult | null {
  if (raw === undefined) return null;
  const r = raw as Record<string, unknown>;
  return {
    points: r.points as number,
    seconds: r.seconds as number,
    pointsPerSecond: r.points_per_second as number,
    loss: Array.isArray(r.loss) ? r.loss.map(jsonNumber) : null,
    ...(r.batch === undefined ? {} : { batch: r.batch as number }),
  };
}

export async function runTorchGrid(python: string, o: TorchGridOptions): Promise<TorchGridResult> {
  const r = await runPython(python, 'torch_grid.py', torchGridArgs(o));
  return {
    torch: r.torch as string,
    device: r.device as string,
    config: r.config as GPTConfig,
    params: r.params as number,
    B: r.B as number,
    T: r.T as number,
    points: r.points as number,
    directionsMissing: r.directions_missing as string[],
    loop: modeResult(r.loop),
    batched: modeResult(r.batched),
    maxAbsDiffLoopBatched: r.max_abs_diff_loop_batched === undefined ? null : jsonNumber(r.max_abs_diff_loop_batched),
  };
}

export async function runTorchTrain(python: string, o: TorchTrainOptions): Promise<TorchTrainResult> {
  if ((o.config === undefined) === (o.model === undefined)) throw new Error('torch_train: give exactly one of config and model');
  const r = await runPython(python, 'torch_train.py', [
    ...optional('--config', o.config), ...optional('--model', o.model), `--batch=${o.batch}`, ...optional('--block', o.block),
    ...optional('--steps', o.steps), ...optional('--untimed-steps', o.untimedSteps), ...optional('--tokens', o.tokens),
    ...optional('--lr', o.lr), ...optional('--device', o.device), ...optional('--threads', o.threads),
  ]);
  return {
    torch: r.torch as string,
    device: r.device as string,
    config: r.config as GPTConfig,
    params: r.params as number,
    batch: r.batch as number,
    T: r.T as number,
    steps: r.steps as number,
    seconds: r.seconds as number,
    tokensPerSecond: r.tokens_per_second as number,
    stepMs: r.step_ms as number,
    lossFirst: jsonNumber(r.loss_first),
    lossLast: jsonNumber(r.loss_last),
  };
}
