/**
 * The grokking task of Power et al. (2022): a + b = c (mod p). All p*p pairs
 * (a, b) are split once, by a seeded shuffle, into a training and a
 * validation set. Each example is the 5-token sequence [a, '+', b, '=', c],
 * so T = 4: the inputs are "a + b =" and the loss is taken on the answer
 * only (mask 1 at the last position, 0 elsewhere).
 */
import { InputError } from '../model/config.ts';
import { Rng } from '../util/rng.ts';
import { ModAddTokenizer } from './tokenizer.ts';
import { type Batch, batchFromTokens, checkBatchShape, entropyOfCounts } from './batch.ts';
import { type Dataset } from './dataset.ts';

export const MODADD_DEFAULT_P = 97;
export const MODADD_DEFAULT_TRAIN_FRACTION = 0.5;
/** Input length of an example: a, '+', b, '='. */
export const MODADD_T = 4;

/** Fisher-Yates on the first `count` places: a uniform random choice of `count` items, in random order. */
function shuffleFirst(items: Int32Array, count: number, rng: Rng): void {
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(items.length - i);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

/** Pair indices a*p + b, shuffled with `seed`, cut into train and validation. */
export function modAddSplit(p: number, trainFraction: number, seed: number): { train: Int32Array; val: Int32Array } {
  const n = p * p;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  shuffleFirst(order, n, new Rng(seed));
  const nTrain = Math.round(n * trainFraction);
  return { train: order.slice(0, nTrain), val: order.slice(nTrain) };
}

export function modAddDataset(p: number, trainFraction: number, seed: number): Dataset {
  const tokenizer = new ModAddTokenizer(p);
  if (!(trainFraction > 0 && trainFraction < 1)) {
    throw new InputError(`modadd: the train fraction must be between 0 and 1 (exclusive), got ${trainFraction}`);
  }
  const { train, val } = modAddSplit(p, trainFraction, seed);
  if (train.length === 0 || val.length === 0) {
    throw new InputError(`modadd: p = ${p} with train fraction ${trainFraction} leaves an empty train or validation split`);
  }

  const examples = (pairs: ArrayLike<number>, T: number): Batch => {
    if (T !== MODADD_T) {
      throw new InputError(`modadd: sequences are "a + b =" (${MODADD_T} input tokens) followed by the answer; got T = ${T}`);
    }
    const B = pairs.length;
    const tokens = new Int32Array(B * (MODADD_T + 1));
    const mask = new Float32Array(B * MODADD_T);
    for (let r = 0; r < B; r++) {
      const a = Math.floor(pairs[r]! / p);
      const b = pairs[r]! % p;
      tokens.set([a, tokenizer.plus, b, tokenizer.equals, (a + b) % p], r * (MODADD_T + 1));
      mask[r * MODADD_T + MODADD_T - 1] = 1;
    }
    return batchFromTokens(tokens, B, MODADD_T, mask);
  };

  const answerCounts = new Float64Array(p);
  for (const pair of train) answerCounts[(Math.floor(pair / p) + (pair % p)) % p]!++;

  return {
    name: 'modadd',
    tokenizer,
    vocabSize: tokenizer.vocabSize,
    sequenceLength: MODADD_T,
    evalSequences: val.length,
    info: { p, trainFraction, seed, trainPairs: train.length, valPairs: val.length },
    sampleBatch(rng, B, T) {
      checkBatchShape('modadd', B, T);
      return examples(Array.from({ length: B }, () => train[rng.int(train.length)]!), T);
    },
    evalBatch(B, T, seed) {
      checkBatchShape('modadd', B, T);
      if (B > val.length) {
        throw new InputError(`modadd: an evaluation batch of ${B} asks for more than the ${val.length} validation pairs`);
      }
      const pool = val.slice();
      shuffleFirst(pool, B, new Rng(seed));
      return examples(pool.subarray(0, B), T);
    },
    unigramEntropy: () => entropyOfCounts(answerCounts),
  };
}
