/**
 * A training run's directory on disk (SPEC section 3):
 *
 *   config.json           the model (nanoGPT's GPTConfig names)
 *   tokenizer.json        the vocabulary
 *   eval.safetensors      the fixed evaluation batch (`tokens` [B, T+1], `mask` for modadd)
 *   ckpt-STEP.safetensors the weights after STEP updates, nanoGPT names (step 0 = initialisation)
 *   optim.safetensors     AdamW's moments and step at the last checkpoint (src/train/optim-state.ts)
 *   train.json            the run's record (src/train/run-record.ts)
 *
 * Every file is written atomically. At a checkpoint the weights go first,
 * then train.json, then the optimizer state: whatever a crash leaves,
 * train.json lists only checkpoints that are on disk, and
 * optim.safetensors names one of them, from which --resume continues.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../model/config.ts';
import { type ParamLayout, paramLayout } from '../model/params.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { paramsFromSafetensors, paramsToSafetensors } from '../io/formats.ts';
import { type OptimState, optimFromSafetensors, optimToSafetensors } from '../train/optim-state.ts';
import { type TrainRecord, checkpointFile, parseTrainRecord } from '../train/run-record.ts';
import { readBytes, readJson, writeFileAtomic } from './files.ts';

export const TRAIN_JSON = 'train.json';
export const OPTIM_FILE = 'optim.safetensors';
export const EVAL_FILE = 'eval.safetensors';

/** Creates the directory of a new run; refuses one that already holds a run. */
export function createRunDir(dir: string): void {
  if (existsSync(join(dir, TRAIN_JSON))) {
    throw new InputError(`${dir}: already holds a training run (${TRAIN_JSON}); continue it with --resume or choose another --out`);
  }
  if (existsSync(dir) && readdirSync(dir).some((f) => /^ckpt-\d+\.safetensors$/.test(f))) {
    throw new InputError(`${dir}: already holds checkpoints; choose another --out`);
  }
  mkdirSync(dir, { recursive: true });
}

export function writeRunFiles(dir: string, files: { config: object; tokenizer: object; evalTokens: Uint8Array }): void {
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(files.config, null, 2)}\n`);
  writeFileAtomic(join(dir, 'tokenizer.json'), `${JSON.stringify(files.tokenizer)}\n`);
  writeFileAtomic(join(dir, EVAL_FILE), files.evalTokens);
}

/** Saves a checkpoint: ckpt-STEP.safetensors, train.json, then optim.safetensors. */
export function writeCheckpoint(dir: string, layout: ParamLayout, params: Float32Array, optim: OptimState, record: TrainRecord): void {
  writeFileAtomic(join(dir, checkpointFile(optim.step)), paramsToSafetensors(layout, params, { format: 'pt', step: String(optim.step) }));
  writeFileAtomic(join(dir, TRAIN_JSON), `${JSON.stringify(record)}\n`);
  writeFileAtomic(join(dir, OPTIM_FILE), optimToSafetensors(layout, optim, { format: 'pt' }));
}

export interface ResumePoint {
  record: TrainRecord;
  layout: ParamLayout;
  params: Float32Array;
  optim: OptimState;
}

/** The last checkpoint of a run and the optimizer state saved with it. */
export function loadResumePoint(dir: string): ResumePoint {
  const recordPath = join(dir, TRAIN_JSON);
  if (!existsSync(recordPath)) throw new InputError(`${dir}: no ${TRAIN_JSON}, so nothing to resume (train without --resume first)`);
  const record = parseTrainRecord(readJson(recordPath), recordPath);
  const layout = paramLayout(record.config);
  const optimPath = join(dir, OPTIM_FILE);
  const optim = optimFromSafetensors(layout, parseSafetensors(readBytes(optimPath), optimPath), optimPath);
  const ckptPath = join(dir, checkpointFile(optim.step));
  const params = paramsFromSafetensors(layout, parseSafetensors(readBytes(ckptPath), ckptPath), ckptPath);
  if (record.step < optim.step) {
    throw new InputError(`${recordPath}: records ${record.step} steps, but ${OPTIM_FILE} is at step ${optim.step}`);
  }
  // train.json may be one checkpoint ahead of optim.safetensors (interrupted while saving): resume from the optimizer's step.
  const checkpoints = record.checkpoints.filter((c) => c.step <= optim.step);
  return { record: { ...record, step: optim.step, checkpoints }, layout, params, optim };
}
