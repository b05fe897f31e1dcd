/**
 * The file system side of SPEC section 3 in Node: reading files with errors
 * that name the path, atomic writes (SPEC section 7: a temporary file renamed
 * into place, so no half-written file stands under the final name), and the
 * loaders for model directories, run directories, tokens and grids.
 */
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type GPTConfig, InputError, parseConfig } from '../model/config.ts';
import { type ParamLayout, paramLayout } from '../model/params.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { type GridFile, type TokenBatch, gridFromSafetensors, paramsFromSafetensors, tokensFromSafetensors } from '../io/formats.ts';

function describeFsError(path: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new InputError(`${path}: no such file or directory`);
  if (code === 'EISDIR') return new InputError(`${path}: is a directory, expected a file`);
  if (code === 'EACCES') return new InputError(`${path}: permission denied`);
  return new InputError(`${path}: cannot read (${(e as Error).message})`);
}

/** The whole file as bytes; an InputError naming the path when it is missing or unreadable. */
export function readBytes(path: string): Uint8Array {
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw describeFsError(path, e);
  }
}

/** A JSON file, parsed; an InputError naming the path when it is missing or not JSON. */
export function readJson(path: string): unknown {
  const text = new TextDecoder().decode(readBytes(path));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Writes `<path>.tmp-<pid>`, flushes it to disk, then renames it over `path`. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  try {
    const fd = openSync(tmp, 'w');
    try {
      let written = 0;
      while (written < data.length) written += writeSync(fd, data, written, data.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface LoadedModel {
  config: GPTConfig;
  layout: ParamLayout;
  /** Flat canonical parameter buffer. */
  params: Float32Array;
  /** The directory holding config.json. */
  dir: string;
  /** The safetensors file the weights came from. */
  source: string;
  /** tokenizer.json parsed, or null when the directory has none. */
  tokenizer: unknown | null;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (e) {
    throw describeFsError(path, e);
  }
}

function exists(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false }) !== undefined;
}

const CHECKPOINT = /^ckpt-(\d+)\.safetensors$/;

/** The weights file of a directory: model.safetensors, else the checkpoint of the highest step. */
function weightsInDirectory(dir: string): string {
  const model = join(dir, 'model.safetensors');
  if (exists(model)) return model;
  let best: { step: number; name: string } | null = null;
  for (const name of readdirSync(dir)) {
    const m = CHECKPOINT.exec(name);
    if (m && (best === null || Number(m[1]) > best.step)) best = { step: Number(m[1]), name };
  }
  if (!best) throw new InputError(`${dir}: no model.safetensors and no ckpt-STEP.safetensors checkpoint in this directory`);
  return join(dir, best.name);
}

/**
 * Loads a model from a model directory (config.json + model.safetensors), a
 * run directory (config.json + ckpt-STEP.safetensors: the highest step), or
 * a .safetensors file with config.json beside it.
 */
export function loadModel(path: string): LoadedModel {
  const source = isDirectory(path) ? weightsInDirectory(path) : path;
  const dir = dirname(source);
  const configPath = join(dir, 'config.json');
  if (!exists(configPath)) {
    throw new InputError(`${configPath}: no such file; a model needs config.json beside ${basename(source)}`);
  }
  const config = parseConfig(readJson(configPath), configPath);
  const layout = paramLayout(config);
  const params = paramsFromSafetensors(layout, parseSafetensors(readBytes(source), source), source);
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizer = exists(tokenizerPath) ? readJson(tokenizerPath) : null;
  return { config, layout, params, dir, source, tokenizer };
}

/** A tokens file; with `config`, ids are checked against vocab_size and T against block_size. */
export function loadTokens(path: string, config?: GPTConfig): TokenBatch {
  return tokensFromSafetensors(parseSafetensors(readBytes(path), path), path, config?.vocab_size, config?.block_size);
}

export function loadGrid(path: string): GridFile {
  return gridFromSafetensors(parseSafetensors(readBytes(path), path), path);
}
