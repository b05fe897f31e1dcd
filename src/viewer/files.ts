/**
 * Opening files in the page: dropped on it (files or whole folders), or
 * picked with the panel's "open files…" and "open folder…" buttons. The
 * files are sorted by what they hold (SPEC section 3), read with the io
 * module's readers, and handed over as one of
 * - a grid file (`loss` tensor, from `losscape grid`): shown as it is;
 * - a model directory's files (config.json + model.safetensors, or one
 *   checkpoint file beside config.json) or a run's (config.json +
 *   ckpt-STEP.safetensors, eval.safetensors, train.json), each optional
 *   file adding what it holds (tokenizer.json, a tokens file);
 * - a directions file (d1.*, d2.* from `losscape directions`), with a model
 *   or alone (then for the model already in the page).
 */
import { type GPTConfig, InputError, parseConfig } from '../model/config.ts';
import { type ParamLayout, paramLayout } from '../model/params.ts';
import { type GridFile, gridFromSafetensors, paramsFromSafetensors, type TokenBatch, tokensFromSafetensors } from '../io/formats.ts';
import { parseSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { CHECKPOINT_NAME } from '../landscape/run.ts';
import { parseTrainRecord } from '../train/run-record.ts';

export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

export interface RunCheckpoint {
  step: number;
  /** Flat canonical weights (src/model/params.ts). */
  params: Float32Array;
}

/** A model (one checkpoint) or a run (its checkpoints), as read from files. */
export interface OpenedModel {
  /** The files it came from, for the overlay. */
  label: string;
  config: GPTConfig;
  layout: ParamLayout;
  /** In step order; the last is the landscape's centre. */
  checkpoints: RunCheckpoint[];
  /** eval.safetensors or another tokens file, when one was given. */
  evalBatch: TokenBatch | null;
  /** tokenizer.json, when given (it can name a built-in dataset's evaluation batch). */
  tokenizer: unknown;
  /** train.json's per-step train loss, when given. */
  trainLoss: Float32Array | null;
}

export type Opened =
  | { kind: 'grid'; name: string; grid: GridFile }
  | { kind: 'model'; model: OpenedModel | null; directions: { name: string; file: SafetensorsFile } | null };

/** Files of a run directory the viewer has no use for (the optimizer state is for --resume). */
const IGNORED = new Set(['optim.safetensors']);

const EXPECTED = 'a grid file, a model directory\'s files (config.json + model.safetensors), a run\'s '
  + '(config.json + ckpt-STEP.safetensors + eval.safetensors), or a directions file';

function parseJson(f: NamedBytes): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(f.bytes));
  } catch (e) {
    throw new InputError(`${f.name}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Sorts the files by content and reads them; every error names the file and what was expected. */
export function openFiles(files: readonly NamedBytes[]): Opened {
  const json = new Map<string, NamedBytes>();
  const grids: Array<{ name: string; file: SafetensorsFile }> = [];
  const weights: Array<{ name: string; file: SafetensorsFile }> = [];
  const tokens: Array<{ name: string; file: SafetensorsFile }> = [];
  const directions: Array<{ name: string; file: SafetensorsFile }> = [];
  for (const f of files) {
    if (IGNORED.has(f.name)) continue;
    if (f.name.endsWith('.json')) {
      json.set(f.name, f);
      continue;
    }
    if (!f.name.endsWith('.safetensors')) continue;
    const file = parseSafetensors(f.bytes, f.name);
    const names = [...file.tensors.keys()];
    const entry = { name: f.name, file };
    if (file.tensors.has('loss')) grids.push(entry);
    else if (file.tensors.has('tokens')) tokens.push(entry);
    else if (names.length > 0 && names.every((n) => n.startsWith('d1.') || n.startsWith('d2.'))) directions.push(entry);
    else weights.push(entry);
  }
  if (grids.length > 0) {
    if (grids.length > 1 || files.length > 1) {
      throw new InputError(`${grids[0]!.name}: a grid file opens alone (got ${files.map((f) => f.name).join(', ')})`);
    }
    return { kind: 'grid', name: grids[0]!.name, grid: gridFromSafetensors(grids[0]!.file, grids[0]!.name) };
  }
  if (directions.length > 1) throw new InputError(`${directions.map((d) => d.name).join(', ')}: one directions file at a time`);
  if (tokens.length > 1) throw new InputError(`${tokens.map((d) => d.name).join(', ')}: one tokens file at a time (the evaluation batch)`);
  const direction = directions[0] ?? null;
  if (weights.length === 0) {
    if (!direction) throw new InputError(`${files.map((f) => f.name).join(', ') || 'no files'}: nothing to open; the viewer opens ${EXPECTED}`);
    if (json.has('config.json') || tokens.length > 0) {
      throw new InputError(`${direction.name}: no model weights among the files (model.safetensors or ckpt-STEP.safetensors beside config.json)`);
    }
    return { kind: 'model', model: null, directions: direction };
  }
  return { kind: 'model', model: readModel(json, weights, tokens[0] ?? null), directions: direction };
}

function readModel(
  json: Map<string, NamedBytes>, weights: Array<{ name: string; file: SafetensorsFile }>, tokens: { name: string; file: SafetensorsFile } | null,
): OpenedModel {
  const configFile = json.get('config.json');
  if (!configFile) throw new InputError(`${weights[0]!.name}: model weights need their config.json (drop it with them)`);
  const config = parseConfig(parseJson(configFile), 'config.json');
  const layout = paramLayout(config);
  const run = weights.filter((w) => CHECKPOINT_NAME.test(w.name));
  let chosen: Array<{ name: string; file: SafetensorsFile; step: number }>;
  if (run.length > 0 && run.length === weights.length) {
    chosen = run.map((w) => ({ ...w, step: Number(CHECKPOINT_NAME.exec(w.name)![1]) })).sort((x, y) => x.step - y.step);
  } else if (weights.length === 1) {
    chosen = [{ ...weights[0]!, step: 0 }];
  } else {
    throw new InputError(
      `${weights.map((w) => w.name).join(', ')}: expected one model file (model.safetensors) or a run's ckpt-STEP.safetensors files, not both`,
    );
  }
  const checkpoints = chosen.map((w) => ({ step: w.step, params: paramsFromSafetensors(layout, w.file, w.name) }));
  const record = json.get('train.json');
  const trainLoss = record ? Float32Array.from(parseTrainRecord(parseJson(record), 'train.json').trainLoss) : null;
  const tokenizer = json.get('tokenizer.json');
  const files = [...chosen.map((w) => w.name), ...(tokens ? [tokens.name] : [])];
  return {
    label: chosen.length > 1 ? `run of ${chosen.length} checkpoints (steps ${chosen[0]!.step}–${chosen[chosen.length - 1]!.step})` : files[0]!,
    config,
    layout,
    checkpoints,
    evalBatch: tokens ? tokensFromSafetensors(tokens.file, tokens.name, config.vocab_size, config.block_size) : null,
    tokenizer: tokenizer ? parseJson(tokenizer) : null,
    trainLoss,
  };
}

/** The names and bytes of dropped or picked files. */
export async function readFiles(files: readonly File[]): Promise<NamedBytes[]> {
  return Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
}

async function filesOfEntry(entry: FileSystemEntry): Promise<File[]> {
  if (entry.isFile) return [await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject))];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries returns the entries in batches until an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    children.push(...batch);
  }
  return (await Promise.all(children.map(filesOfEntry))).flat();
}

/** Calls `open` with the files dropped anywhere on `target` (the files inside a dropped folder). */
export function attachDrop(target: HTMLElement, open: (files: File[]) => void, fail: (e: unknown) => void): void {
  target.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  target.addEventListener('drop', (e) => {
    e.preventDefault();
    const items = [...(e.dataTransfer?.items ?? [])];
    const entries = items.map((item) => item.webkitGetAsEntry?.() ?? null);
    if (entries.length > 0 && entries.every((entry) => entry !== null)) {
      Promise.all(entries.map((entry) => filesOfEntry(entry!))).then((found) => open(found.flat()), fail);
      return;
    }
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length > 0) open(files);
  });
}

/** Opens the browser's file picker: several files, or (`folder`) one folder's files. */
export function pickFiles(folder: boolean, open: (files: File[]) => void): void {
  const input = document.createElement('input');
  input.type = 'file';
  input.multiple = true;
  if (folder) input.webkitdirectory = true;
  else input.accept = '.safetensors,.json';
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    if (files.length > 0) open(files);
  });
  input.click();
}
