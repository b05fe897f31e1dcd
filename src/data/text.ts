/**
 * A character-level dataset from a string (a UTF-8 file's contents, or the
 * grammar corpus): the vocabulary is every character of the text, the first
 * 90% of it is the training split and the last 10% the validation split, as
 * nanoGPT's shakespeare_char does. Sequences are windows of T+1 characters
 * at random offsets.
 */
import { InputError } from '../model/config.ts';
import { Rng } from '../util/rng.ts';
import { CharTokenizer } from './tokenizer.ts';
import { type Batch, batchFromTokens, checkBatchShape, entropyOfCounts } from './batch.ts';
import { type Dataset } from './dataset.ts';

export const TEXT_TRAIN_FRACTION = 0.9;

/** Windows of T+1 tokens of `stream` starting at `starts`. */
function windows(stream: Int32Array, starts: readonly number[], T: number): Batch {
  const tokens = new Int32Array(starts.length * (T + 1));
  starts.forEach((s, b) => tokens.set(stream.subarray(s, s + T + 1), b * (T + 1)));
  return batchFromTokens(tokens, starts.length, T, null);
}

/** `starts` for B windows of T+1 tokens inside `stream`, one rng.int each. */
function randomStarts(name: string, split: string, stream: Int32Array, rng: Rng, B: number, T: number): number[] {
  checkBatchShape(name, B, T);
  if (stream.length < T + 1) {
    throw new InputError(`${name}: the ${split} split has ${stream.length} characters, too few for sequences of ${T}+1`);
  }
  return Array.from({ length: B }, () => rng.int(stream.length - T));
}

export function textDataset(name: string, text: string, info: Record<string, string | number>): Dataset {
  const tokenizer = CharTokenizer.fromText(text);
  const all = tokenizer.encode(text);
  const nTrain = Math.floor(all.length * TEXT_TRAIN_FRACTION);
  const train = all.subarray(0, nTrain);
  const val = all.subarray(nTrain);
  if (val.length < 2) {
    throw new InputError(`${name}: ${all.length} characters are too few for a 90/10 train/validation split with sequences of 2 or more in each`);
  }
  const counts = new Float64Array(tokenizer.vocabSize);
  for (let i = 0; i < train.length; i++) counts[train[i]!]!++;
  return {
    name,
    tokenizer,
    vocabSize: tokenizer.vocabSize,
    sequenceLength: null,
    evalSequences: null,
    info: { ...info, characters: all.length, trainCharacters: train.length, valCharacters: val.length },
    sampleBatch: (rng, B, T) => windows(train, randomStarts(name, 'training', train, rng, B, T), T),
    evalBatch: (B, T, seed) => windows(val, randomStarts(name, 'validation', val, new Rng(seed), B, T), T),
    unigramEntropy: () => entropyOfCounts(counts),
  };
}
