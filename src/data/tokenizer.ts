/**
 * Tokenizers and their tokenizer.json form (SPEC section 3):
 * `{"type": "char" | "modadd", "vocab": [...]}`, where token id i is vocab[i].
 *
 * - `char`: one token per Unicode code point, vocab sorted by code point (as
 *   nanoGPT's shakespeare_char prepare.py does with `sorted(set(data))`).
 * - `modadd`: the numbers "0".."p-1" followed by "+" and "="; text is
 *   numbers and signs separated by spaces ("3 + 5 = 8").
 */
import { InputError } from '../model/config.ts';

export type TokenizerType = 'char' | 'modadd';

export interface TokenizerJSON {
  type: TokenizerType;
  vocab: string[];
}

export interface Tokenizer {
  readonly type: TokenizerType;
  /** Token id i is vocab[i]. */
  readonly vocab: readonly string[];
  readonly vocabSize: number;
  /** Token ids of `text`; throws InputError for a character or word outside the vocabulary. */
  encode(text: string): Int32Array;
  /** Text of token ids; throws InputError for an id outside [0, vocabSize). */
  decode(ids: ArrayLike<number>): string;
  toJSON(): TokenizerJSON;
}

function checkIds(ids: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InputError(`token id ${id} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  return `${JSON.stringify(ch)} (U+${code})`;
}

/** Reads the common `{type, vocab}` shape; `source` names the file in messages. */
function parseShape(obj: unknown, source: string): TokenizerJSON {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new InputError(`${source}: expected a JSON object {"type": "char" | "modadd", "vocab": [...]}`);
  }
  const o = obj as Record<string, unknown>;
  if (o.type !== 'char' && o.type !== 'modadd') {
    throw new InputError(`${source}: "type" must be "char" or "modadd", got ${JSON.stringify(o.type)}`);
  }
  if (!Array.isArray(o.vocab) || o.vocab.length === 0) {
    throw new InputError(`${source}: "vocab" must be a non-empty array of strings`);
  }
  const vocab = o.vocab as unknown[];
  for (let i = 0; i < vocab.length; i++) {
    if (typeof vocab[i] !== 'string') {
      throw new InputError(`${source}: vocab[${i}] must be a string, got ${JSON.stringify(vocab[i])}`);
    }
  }
  return { type: o.type, vocab: vocab as string[] };
}

export class CharTokenizer implements Tokenizer {
  readonly type = 'char' as const;
  readonly vocab: readonly string[];
  private readonly ids: Map<string, number>;

  /** `vocab` must hold distinct single code points; use `fromText` or `fromJSON` to build one from data. */
  constructor(vocab: readonly string[]) {
    this.vocab = [...vocab];
    this.ids = new Map(this.vocab.map((ch, i) => [ch, i]));
  }

  /** The vocabulary of every code point in `text`, sorted by code point. */
  static fromText(text: string): CharTokenizer {
    const set = new Set(text);
    return new CharTokenizer([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  static fromJSON(obj: unknown, source: string): CharTokenizer {
    const { type, vocab } = parseShape(obj, source);
    if (type !== 'char') throw new InputError(`${source}: expected a "char" tokenizer, got "${type}"`);
    const seen = new Set<string>();
    vocab.forEach((ch, i) => {
      if ([...ch].length !== 1) {
        throw new InputError(`${source}: vocab[${i}] must be exactly one character, got ${JSON.stringify(ch)}`);
      }
      if (seen.has(ch)) throw new InputError(`${source}: vocab[${i}] ${describeChar(ch)} appears twice`);
      seen.add(ch);
    });
    return new CharTokenizer(vocab);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  encode(text: string): Int32Array {
    const chars = [...text];
    const out = new Int32Array(chars.length);
    chars.forEach((ch, i) => {
      const id = this.ids.get(ch);
      if (id === undefined) throw new InputError(`character ${describeChar(ch)} is not in the tokenizer's vocabulary`);
      out[i] = id;
    });
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    checkIds(ids, this.vocab.length);
    let s = '';
    for (let i = 0; i < ids.length; i++) s += this.vocab[ids[i]!];
    return s;
  }

  toJSON(): TokenizerJSON {
    return { type: 'char', vocab: [...this.vocab] };
  }
}

export class ModAddTokenizer implements Tokenizer {
  readonly type = 'modadd' as const;
  readonly vocab: readonly string[];
  readonly p: number;
  /** Token ids of the two signs. */
  readonly plus: number;
  readonly equals: number;

  constructor(p: number) {
    if (!Number.isInteger(p) || p < 2) throw new InputError(`modadd: the modulus p must be an integer >= 2, got ${p}`);
    this.p = p;
    this.vocab = [...Array.from({ length: p }, (_, i) => String(i)), '+', '='];
    this.plus = p;
    this.equals = p + 1;
  }

  /** The vocabulary must be exactly "0".."p-1", "+", "=" for some p. */
  static fromJSON(obj: unknown, source: string): ModAddTokenizer {
    const { type, vocab } = parseShape(obj, source);
    if (type !== 'modadd') throw new InputError(`${source}: expected a "modadd" tokenizer, got "${type}"`);
    const p = vocab.length - 2;
    if (p < 2) throw new InputError(`${source}: a modadd vocab holds "0".."p-1", "+", "=" (p >= 2); got ${vocab.length} entries`);
    const expected = new ModAddTokenizer(p).vocab;
    vocab.forEach((tok, i) => {
      if (tok !== expected[i]) {
        throw new InputError(`${source}: vocab[${i}] must be ${JSON.stringify(expected[i])} for p = ${p}, got ${JSON.stringify(tok)}`);
      }
    });
    return new ModAddTokenizer(p);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Numbers and signs, with or without spaces between them: "3 + 5 =" and "3+5=" give the same ids. */
  encode(text: string): Int32Array {
    const ids: number[] = [];
    const re = /\s*(?:(\d+)|([+=])|(\S))/gy;
    let m: RegExpExecArray | null;
    while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
      if (m[1] !== undefined) {
        const n = Number(m[1]);
        if (n >= this.p) throw new InputError(`modadd: number ${m[1]} is not below the modulus p = ${this.p}`);
        ids.push(n);
      } else if (m[2] !== undefined) {
        ids.push(m[2] === '+' ? this.plus : this.equals);
      } else if (m[3] !== undefined) {
        throw new InputError(`modadd: ${describeChar(m[3])} is not a number, "+" or "="`);
      }
    }
    return Int32Array.from(ids);
  }

  decode(ids: ArrayLike<number>): string {
    checkIds(ids, this.vocab.length);
    return Array.from(ids, (id) => this.vocab[id]).join(' ');
  }

  toJSON(): TokenizerJSON {
    return { type: 'modadd', vocab: [...this.vocab] };
  }
}

/** Any tokenizer.json: dispatches on "type". */
export function tokenizerFromJSON(obj: unknown, source: string): Tokenizer {
  const { type } = parseShape(obj, source);
  return type === 'char' ? CharTokenizer.fromJSON(obj, source) : ModAddTokenizer.fromJSON(obj, source);
}
