/**
 * The common shape of every dataset, and `makeDataset` for the CLI's
 * `--dataset grammar | modadd | text:PATH`.
 *
 * Batches are the `Batch` of ./batch.ts.
 */
import { InputError } from '../model/config.ts';
import { type Rng } from '../util/rng.ts';
import { type Tokenizer } from './tokenizer.ts';
import { type Batch } from './batch.ts';
import { GRAMMAR_DEFAULT_CHARS, generateGrammarText } from './grammar.ts';
import { MODADD_DEFAULT_P, MODADD_DEFAULT_TRAIN_FRACTION, modAddDataset } from './modadd.ts';
import { textDataset } from './text.ts';

export interface Dataset {
  /** 'grammar', 'modadd' or 'text:PATH'. */
  name: string;
  tokenizer: Tokenizer;
  vocabSize: number;
  /** The T every sequence has (modadd: 4), or null when any T fits (text). */
  sequenceLength: number | null;
  /** How many distinct validation sequences `evalBatch` can draw (modadd), or null for text. */
  evalSequences: number | null;
  /** What the dataset was built from, for train.json (seed, sizes, split). */
  info: Record<string, string | number>;
  /**
   * B random training sequences of T+1 tokens. Draws exactly B numbers from
   * `rng` (one `rng.int` per sequence), so a trainer can reproduce a step.
   */
  sampleBatch(rng: Rng, B: number, T: number): Batch;
  /** A fixed validation batch, the same for the same (B, T, seed): the run's eval.safetensors. */
  evalBatch(B: number, T: number, seed: number): Batch;
  /**
   * Entropy in nats of the unigram distribution of the training split's
   * target tokens (those the loss counts: for modadd, the answers): the loss
   * of a model that ignores context.
   */
  unigramEntropy(): number;
}

export interface DatasetOptions {
  /** Seed of the corpus (grammar) or of the train/validation split (modadd); default 1337. */
  seed?: number;
  /** grammar: corpus length in characters (default 200000). */
  chars?: number;
  /** modadd: the modulus (default 97). */
  p?: number;
  /** modadd: the share of the p*p pairs used for training (default 0.5). */
  trainFraction?: number;
  /** text: the file's contents (the CLI reads the file). */
  text?: string;
}

export const DATASET_DEFAULT_SEED = 1337;

/**
 * The dataset named by `spec`: 'grammar', 'modadd', or 'text' / 'text:PATH'
 * with the contents in `opts.text` (PATH only names it in messages).
 */
export function makeDataset(spec: string, opts: DatasetOptions = {}): Dataset {
  const seed = opts.seed ?? DATASET_DEFAULT_SEED;
  if (spec === 'grammar') {
    const chars = opts.chars ?? GRAMMAR_DEFAULT_CHARS;
    if (!Number.isInteger(chars) || chars < 1000) {
      throw new InputError(`grammar: the corpus needs at least 1000 characters, got ${chars}`);
    }
    return textDataset('grammar', generateGrammarText(seed, chars), { seed, chars });
  }
  if (spec === 'modadd') {
    return modAddDataset(opts.p ?? MODADD_DEFAULT_P, opts.trainFraction ?? MODADD_DEFAULT_TRAIN_FRACTION, seed);
  }
  if (spec === 'text' || spec.startsWith('text:')) {
    if (opts.text === undefined) throw new InputError(`${spec}: no text given (the dataset reads the file's contents)`);
    return textDataset(spec, opts.text, {});
  }
  throw new InputError(`unknown dataset ${JSON.stringify(spec)}: expected grammar, modadd or text:PATH`);
}

export type { Batch } from './batch.ts';
