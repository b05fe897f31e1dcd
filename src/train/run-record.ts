/**
 * train.json: the record of a training run (SPEC section 3), written at
 * every checkpoint. It holds what a run was made from (dataset, model,
 * hyper-parameters, seeds, evaluation batch), what it measured (the train
 * loss and gradient norm of every step, the validation loss on the
 * evaluation batch every save and every `valEvery` steps, and each
 * checkpoint's loss on eval.safetensors), and enough to resume it.
 */
import { type GPTConfig, InputError, parseConfig } from '../model/config.ts';
import { type TrainHistory, type TrainHyper } from './trainer.ts';

export const TRAIN_RECORD_FORMAT = 'losscape-train';
export const TRAIN_RECORD_VERSION = 1;

export interface DatasetRecord {
  /** As given to --dataset: grammar, modadd or text:PATH. */
  spec: string;
  /** Seed of the corpus (grammar) or of the train/validation split (modadd). */
  seed: number;
  /** modadd only: the modulus and the share of pairs that train. */
  p?: number;
  trainFraction?: number;
  vocabSize: number;
  /** Entropy (nats) of the unigram distribution of the training targets: the loss of a model that ignores context. */
  unigramEntropy: number;
  info: Record<string, string | number>;
}

export interface TrainRecord {
  format: typeof TRAIN_RECORD_FORMAT;
  version: number;
  dataset: DatasetRecord;
  preset: string | null;
  config: GPTConfig;
  hyper: TrainHyper;
  /** The fixed evaluation batch saved as eval.safetensors: `sequences` x T, drawn from the validation split with `seed`. */
  eval: { file: string; sequences: number; T: number; seed: number };
  adapter: string;
  /** Optimizer steps done. */
  step: number;
  trainLoss: number[];
  gradNorm: number[];
  val: Array<{ step: number; loss: number }>;
  checkpoints: Array<{ step: number; file: string; evalLoss: number }>;
  /** Of the last process that trained this run. */
  elapsedSeconds: number;
  tokensPerSecond: number;
}

export function checkpointFile(step: number): string {
  return `ckpt-${step}.safetensors`;
}

export function historyOf(r: TrainRecord): TrainHistory {
  return { trainLoss: r.trainLoss, gradNorm: r.gradNorm, val: r.val };
}

function fail(source: string, what: string): never {
  throw new InputError(`${source}: ${what}`);
}

function numbers(source: string, name: string, v: unknown): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) fail(source, `"${name}" must be an array of numbers`);
  return v as number[];
}

/** A train.json, checked enough to resume from it. */
export function parseTrainRecord(json: unknown, source: string): TrainRecord {
  if (typeof json !== 'object' || json === null) fail(source, 'expected a JSON object');
  const o = json as Record<string, unknown>;
  if (o.format !== TRAIN_RECORD_FORMAT) fail(source, `"format" must be "${TRAIN_RECORD_FORMAT}", got ${JSON.stringify(o.format)}`);
  if (o.version !== TRAIN_RECORD_VERSION) fail(source, `unsupported version ${JSON.stringify(o.version)} (this losscape reads ${TRAIN_RECORD_VERSION})`);
  const config = parseConfig(o.config, `${source} "config"`);
  const hyper = o.hyper as Record<string, unknown> | undefined;
  const hyperKeys: Array<keyof TrainHyper> = [
    'steps', 'batchSize', 'seqLen', 'lr', 'minLr', 'warmupSteps', 'weightDecay', 'beta1', 'beta2', 'eps', 'gradClip', 'seed', 'saveEvery', 'valEvery',
  ];
  for (const k of hyperKeys) if (typeof hyper?.[k] !== 'number') fail(source, `"hyper.${k}" must be a number`);
  const dataset = o.dataset as Record<string, unknown> | undefined;
  if (typeof dataset?.spec !== 'string' || typeof dataset.seed !== 'number') fail(source, '"dataset" must hold "spec" and "seed"');
  const ev = o.eval as Record<string, unknown> | undefined;
  if (typeof ev?.file !== 'string' || typeof ev.sequences !== 'number' || typeof ev.T !== 'number' || typeof ev.seed !== 'number') {
    fail(source, '"eval" must hold "file", "sequences", "T" and "seed"');
  }
  if (typeof o.step !== 'number' || !Array.isArray(o.val) || !Array.isArray(o.checkpoints)) fail(source, '"step", "val" and "checkpoints" are required');
  numbers(source, 'trainLoss', o.trainLoss);
  numbers(source, 'gradNorm', o.gradNorm);
  return { ...(o as unknown as TrainRecord), config };
}
