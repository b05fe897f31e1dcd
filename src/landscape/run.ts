/**
 * Run directories (SPEC section 3): what training leaves behind and the
 * landscape tools read. A run holds
 *   config.json            the model's GPTConfig
 *   tokenizer.json         the vocabulary (optional here)
 *   train.json             hyper-parameters, seed, dataset, loss history (optional here: a JSON object when present)
 *   ckpt-STEP.safetensors  one model per saved step, step 0 = initialisation
 *   eval.safetensors       the fixed evaluation batch (optional here: --tokens replaces it)
 *
 * The file system comes in through a `RunReader`, so that the same code
 * reads a run from disk in Node and from fetched files in the browser.
 */
import { type GPTConfig, InputError, parseConfig } from '../model/config.ts';
import { type ParamLayout, paramLayout } from '../model/params.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { paramsFromSafetensors } from '../io/formats.ts';

export interface RunReader {
  /** The file names in `dir`; an InputError naming it when it is not a readable directory. */
  list(dir: string): string[];
  /** The bytes of the file; an InputError naming it when it is missing or unreadable. */
  read(path: string): Uint8Array;
}

export interface Checkpoint {
  step: number;
  path: string;
}

export interface Run {
  dir: string;
  config: GPTConfig;
  layout: ParamLayout;
  /** Every ckpt-STEP.safetensors, by ascending step. */
  checkpoints: Checkpoint[];
  /** train.json parsed, or null when the run has none. */
  train: Record<string, unknown> | null;
  /** eval.safetensors, or null when the run has none. */
  evalPath: string | null;
  tokenizer: unknown | null;
}

/** `ckpt-STEP.safetensors` with STEP a non-negative integer in decimal (leading zeros allowed). */
export const CHECKPOINT_NAME = /^ckpt-(\d+)\.safetensors$/;

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function parseJson(reader: RunReader, path: string): unknown {
  const text = new TextDecoder().decode(reader.read(path));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The checkpoints among `names`, by ascending step (numerically: ckpt-10 after ckpt-9). Two names for one step are an error. */
export function listCheckpoints(dir: string, names: string[]): Checkpoint[] {
  const byStep = new Map<number, string>();
  for (const name of names) {
    const m = CHECKPOINT_NAME.exec(name);
    if (!m) continue;
    const step = Number(m[1]);
    if (!Number.isSafeInteger(step)) throw new InputError(`${joinPath(dir, name)}: step ${m[1]} is too large`);
    const other = byStep.get(step);
    if (other !== undefined) throw new InputError(`${dir}: checkpoints ${other} and ${name} both hold step ${step}`);
    byStep.set(step, name);
  }
  return [...byStep].sort((a, b) => a[0] - b[0]).map(([step, name]) => ({ step, path: joinPath(dir, name) }));
}

/** Reads the run's config, train.json and tokenizer and lists its checkpoints; the weights are loaded on demand. */
export function openRun(dir: string, reader: RunReader): Run {
  const names = reader.list(dir);
  const has = new Set(names);
  if (!has.has('config.json')) throw new InputError(`${dir}: not a run directory (no config.json)`);
  const configPath = joinPath(dir, 'config.json');
  const config = parseConfig(parseJson(reader, configPath), configPath);
  const checkpoints = listCheckpoints(dir, names);
  if (checkpoints.length === 0) throw new InputError(`${dir}: not a run directory (no ckpt-STEP.safetensors checkpoint)`);
  let train: Record<string, unknown> | null = null;
  if (has.has('train.json')) {
    const path = joinPath(dir, 'train.json');
    const json = parseJson(reader, path);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError(`${path}: expected a JSON object`);
    train = json as Record<string, unknown>;
  }
  return {
    dir,
    config,
    layout: paramLayout(config),
    checkpoints,
    train,
    evalPath: has.has('eval.safetensors') ? joinPath(dir, 'eval.safetensors') : null,
    tokenizer: has.has('tokenizer.json') ? parseJson(reader, joinPath(dir, 'tokenizer.json')) : null,
  };
}

/** Which checkpoint of a run: a step, the first (`init`) or the last (`final`). */
export type CheckpointChoice = number | 'init' | 'final';

export function findCheckpoint(run: Run, which: CheckpointChoice): Checkpoint {
  if (which === 'init') return run.checkpoints[0]!;
  if (which === 'final') return run.checkpoints[run.checkpoints.length - 1]!;
  const c = run.checkpoints.find((k) => k.step === which);
  if (!c) {
    const steps = run.checkpoints.map((k) => k.step);
    const shown = steps.length > 12 ? [...steps.slice(0, 6), '...', ...steps.slice(-6)] : steps;
    throw new InputError(`${run.dir}: no checkpoint for step ${which} (steps: ${shown.join(', ')})`);
  }
  return c;
}

export function loadCheckpoint(run: Run, ckpt: Checkpoint, reader: RunReader): Float32Array {
  return paramsFromSafetensors(run.layout, parseSafetensors(reader.read(ckpt.path), ckpt.path), ckpt.path);
}

/**
 * `RUN:STEP`, `RUN:init` or `RUN:final` (the text after the last colon), or
 * null when `spec` does not end that way (a plain path).
 */
export function parseCheckpointSpec(spec: string): { run: string; which: CheckpointChoice } | null {
  const m = /^(.+):(\d+|init|final)$/.exec(spec);
  if (!m) return null;
  const which = m[2] === 'init' || m[2] === 'final' ? m[2] : Number(m[2]);
  return { run: m[1]!, which };
}

/**
 * Every K-th checkpoint (indices 0, K, 2K, ...) and always the last one, so
 * that a sequence of frames or a path ends at the trained model.
 */
export function everyKth(checkpoints: Checkpoint[], k: number): Checkpoint[] {
  const out = checkpoints.filter((_, i) => i % k === 0);
  const last = checkpoints[checkpoints.length - 1]!;
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}
