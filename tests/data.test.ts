import { describe, expect, it } from 'vitest';
import { InputError } from '../src/model/config.ts';
import { Rng } from '../src/util/rng.ts';
import { CharTokenizer, ModAddTokenizer, tokenizerFromJSON } from '../src/data/tokenizer.ts';
import { GrammarGenerator, generateGrammarText } from '../src/data/grammar.ts';
import { modAddSplit } from '../src/data/modadd.ts';
import { type Batch, type Dataset, makeDataset } from '../src/data/dataset.ts';

/** The batch's tokens rows must be its idx / targets (shifted by one) and have the declared sizes. */
function expectConsistent(batch: Batch): void {
  const { B, T } = batch;
  expect(batch.tokens.length).toBe(B * (T + 1));
  expect(batch.idx.length).toBe(B * T);
  expect(batch.targets.length).toBe(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      expect(batch.idx[b * T + t]).toBe(batch.tokens[b * (T + 1) + t]);
      expect(batch.targets[b * T + t]).toBe(batch.tokens[b * (T + 1) + t + 1]);
    }
  }
}

/** Entropy in nats of the empirical distribution of the items (characters of a string, or numbers). */
function entropyOf(items: Iterable<string | number>): number {
  const counts = new Map<string | number, number>();
  let n = 0;
  for (const x of items) {
    counts.set(x, (counts.get(x) ?? 0) + 1);
    n++;
  }
  let h = 0;
  for (const c of counts.values()) h -= (c / n) * Math.log(c / n);
  return h;
}

describe('CharTokenizer', () => {
  it('sorts the characters of a text by code point and round-trips text, including astral characters', () => {
    const tok = CharTokenizer.fromText('hello, wörld 🙂');
    expect(tok.vocab).toEqual([' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w', 'ö', '🙂']);
    expect(Array.from(tok.encode('hold'))).toEqual([4, 6, 5, 2]);
    expect(tok.decode(tok.encode('wörld 🙂, hello'))).toBe('wörld 🙂, hello');
  });

  it('writes the tokenizer.json object and reads it back', () => {
    const tok = CharTokenizer.fromText('abc\n');
    const json = JSON.parse(JSON.stringify(tok.toJSON()));
    expect(json).toEqual({ type: 'char', vocab: ['\n', 'a', 'b', 'c'] });
    const back = tokenizerFromJSON(json, 'tokenizer.json');
    expect(back).toBeInstanceOf(CharTokenizer);
    expect(back.decode([3, 1, 0])).toBe('ca\n');
  });

  it('rejects bad tokenizer.json with messages naming the file and the entry', () => {
    const bad: Array<[unknown, RegExp]> = [
      [null, /run\/tokenizer.json: expected a JSON object/],
      [{ type: 'bpe', vocab: ['a'] }, /"type" must be "char" or "modadd"/],
      [{ type: 'char', vocab: [] }, /"vocab" must be a non-empty array/],
      [{ type: 'char', vocab: ['a', 3] }, /vocab\[1\] must be a string/],
      [{ type: 'char', vocab: ['a', 'bc'] }, /vocab\[1\] must be exactly one character/],
      [{ type: 'char', vocab: ['a', 'b', 'a'] }, /vocab\[2\] "a" \(U\+0061\) appears twice/],
    ];
    for (const [obj, re] of bad) {
      expect(() => CharTokenizer.fromJSON(obj, 'run/tokenizer.json')).toThrow(InputError);
      expect(() => CharTokenizer.fromJSON(obj, 'run/tokenizer.json')).toThrow(re);
    }
    expect(() => CharTokenizer.fromJSON({ type: 'modadd', vocab: ['0', '1', '+', '='] }, 't.json')).toThrow(/expected a "char" tokenizer/);
  });

  it('names a character outside the vocabulary and an id outside it', () => {
    const tok = CharTokenizer.fromText('ab');
    expect(() => tok.encode('abc')).toThrow(/character "c" \(U\+0063\) is not in the tokenizer's vocabulary/);
    expect(() => tok.decode([0, 2])).toThrow(/token id 2 at position 1 is outside the vocabulary \[0, 2\)/);
  });
});

describe('ModAddTokenizer', () => {
  it('has the numbers 0..p-1, then "+" and "="; decodes with spaces; encodes with or without them', () => {
    const tok = new ModAddTokenizer(7);
    expect(tok.vocab).toEqual(['0', '1', '2', '3', '4', '5', '6', '+', '=']);
    expect(tok.decode([3, 7, 5, 8, 1])).toBe('3 + 5 = 1');
    expect(Array.from(tok.encode('3 + 5 = 1'))).toEqual([3, 7, 5, 8, 1]);
    expect(Array.from(tok.encode(' 6+6= '))).toEqual([6, 7, 6, 8]);
  });

  it('round-trips tokenizer.json and checks the vocabulary entry by entry', () => {
    const json = JSON.parse(JSON.stringify(new ModAddTokenizer(5).toJSON()));
    expect(json).toEqual({ type: 'modadd', vocab: ['0', '1', '2', '3', '4', '+', '='] });
    const back = tokenizerFromJSON(json, 'tokenizer.json') as ModAddTokenizer;
    expect(back.p).toBe(5);
    expect(() => ModAddTokenizer.fromJSON({ type: 'modadd', vocab: ['0', '1', '2', '=', '+'] }, 'tok.json'))
      .toThrow(/tok.json: vocab\[3\] must be "\+" for p = 3, got "="/);
    expect(() => ModAddTokenizer.fromJSON({ type: 'modadd', vocab: ['+', '='] }, 'tok.json')).toThrow(InputError);
  });

  it('rejects numbers past the modulus and other characters', () => {
    const tok = new ModAddTokenizer(97);
    expect(() => tok.encode('97 + 1 =')).toThrow(/number 97 is not below the modulus p = 97/);
    expect(() => tok.encode('3 - 1')).toThrow(/"-" \(U\+002D\) is not a number/);
  });
});

describe('grammar corpus', () => {
  const text = generateGrammarText(1337);

  it('is deterministic for a seed, differs between seeds, and is about the requested length', () => {
    expect(generateGrammarText(5, 5000)).toBe(generateGrammarText(5, 5000));
    expect(generateGrammarText(6, 5000)).not.toBe(generateGrammarText(5, 5000));
    expect(text.length).toBeGreaterThanOrEqual(200_000);
    expect(text.length).toBeLessThan(200_400);
  });

  it('is made of capitalised sentences ending in . ! or ?, separated by a space or a newline', () => {
    const sentences = text.trimEnd().split(/(?<=[.!?])[ \n]/);
    expect(sentences.length).toBeGreaterThan(2000);
    for (const s of sentences) expect(s).toMatch(/^[A-Z][a-zA-Z ,]*[.!?]$/);
    expect(text).toMatch(/\n/);
    expect(text).toMatch(/\?/);
    expect(text).toMatch(/ who /);
    expect(text).toMatch(/, but /);
  });

  it('keeps subject-verb agreement in statements and "a" / "an" before vowels', () => {
    // Statements that open with a determiner, adjectives and a noun: the next word is the main verb.
    const opening = /(?:^|[.!?] )(?:The|A|Every|This|That|These|Those|Some|Many|My|Our|Her|His) (?:(?:small|big|young|quiet|red|dark) )*(dog|cat|child|dogs|cats|children) ([a-z]+)/g;
    const singular = new Set(['dog', 'cat', 'child']);
    const sForms = new Set(['sees', 'likes', 'finds', 'sleeps', 'runs', 'sings', 'walks', 'eats', 'knows']);
    const baseForms = new Set(['see', 'like', 'find', 'sleep', 'run', 'sing', 'walk', 'eat', 'know']);
    let agreeing = 0;
    for (const [, noun, verb] of text.matchAll(opening)) {
      if (singular.has(noun!)) expect(baseForms.has(verb!), `${noun} ${verb}`).toBe(false);
      else expect(sForms.has(verb!), `${noun} ${verb}`).toBe(false);
      if ((singular.has(noun!) ? sForms : baseForms).has(verb!)) agreeing++;
    }
    expect(agreeing).toBeGreaterThan(20);
    expect(text).toMatch(/\ban (?:old|apple)\b/);
    expect(text).not.toMatch(/\ba (?:old|apple)\b/);
    expect(text).not.toMatch(/\ban (?![aeiou])/);
  });

  it('has a unigram entropy near 3 nats and a derivation entropy under 1.5 nats per character', () => {
    expect(entropyOf(text)).toBeGreaterThan(2.7);
    expect(entropyOf(text)).toBeLessThan(3.3);
    // The text's entropy is at most the derivations' (several derivations may give one text):
    // a perfect model of the source gets at most this many nats per character.
    const gen = new GrammarGenerator(1337);
    const same = gen.text(200_000);
    expect(same).toBe(text);
    expect(-gen.logProb / same.length).toBeLessThan(1.5);
  });

  it('is learnable from its training split: a 6-gram model gets far below the unigram entropy on the validation split', () => {
    // Witten-Bell interpolated character n-grams (orders 0..6): an independent learner, no transformer.
    const n = Math.floor(text.length * 0.9);
    const train = text.slice(0, n);
    const val = text.slice(n, n + 5000);
    const K = 6;
    const V = new Set(text).size;
    const counts = Array.from({ length: K + 1 }, () => new Map<string, Map<string, number>>());
    for (let k = 0; k <= K; k++) {
      for (let i = k; i < train.length; i++) {
        const ctx = train.slice(i - k, i);
        const next = counts[k]!.get(ctx) ?? new Map<string, number>();
        next.set(train[i]!, (next.get(train[i]!) ?? 0) + 1);
        counts[k]!.set(ctx, next);
      }
    }
    let nll = 0;
    for (let i = K; i < val.length; i++) {
      let p = 1 / V;
      for (let k = 0; k <= K; k++) {
        const next = counts[k]!.get(val.slice(i - k, i));
        if (!next) break;
        let total = 0;
        for (const c of next.values()) total += c;
        const lambda = total / (total + next.size);
        p = lambda * ((next.get(val[i]!) ?? 0) / total) + (1 - lambda) * p;
      }
      nll -= Math.log(p);
    }
    expect(nll / (val.length - K)).toBeLessThan(1.5);
  });
});

describe('grammar and text datasets', () => {
  it('splits the text 90/10 and samples windows from the right split', () => {
    // Distinct characters in the two halves show which split a window came from.
    const text = 'abcdefghij'.repeat(90) + 'ABCDEFGHIJ'.repeat(10);
    const ds = makeDataset('text:notes.txt', { text });
    expect(ds.name).toBe('text:notes.txt');
    expect(ds.vocabSize).toBe(20);
    expect(ds.info.trainCharacters).toBe(900);
    expect(ds.info.valCharacters).toBe(100);
    const tok = ds.tokenizer;
    const train = ds.sampleBatch(new Rng(3), 8, 13);
    expectConsistent(train);
    expect(train.mask).toBeNull();
    for (let b = 0; b < 8; b++) {
      const row = tok.decode(train.tokens.subarray(b * 14, (b + 1) * 14));
      expect(text.slice(0, 900)).toContain(row);
    }
    const val = ds.evalBatch(5, 13, 42);
    expectConsistent(val);
    for (let b = 0; b < 5; b++) {
      const row = tok.decode(val.tokens.subarray(b * 14, (b + 1) * 14));
      expect(row).toMatch(/^[A-J]{14}$/);
    }
    expect(Array.from(ds.evalBatch(5, 13, 42).tokens)).toEqual(Array.from(val.tokens));
    // Uniform over 10 letters in the training split.
    expect(ds.unigramEntropy()).toBeCloseTo(Math.log(10), 12);
  });

  it('draws one number per sequence from the trainer\'s generator, so a step can be replayed', () => {
    const ds = makeDataset('text', { text: 'the quick brown fox jumps over the lazy dog. '.repeat(20) });
    const rng = new Rng(9);
    ds.sampleBatch(rng, 6, 7);
    const after = rng.nextU32();
    const ref = new Rng(9);
    for (let i = 0; i < 6; i++) ref.nextU32();
    expect(after).toBe(ref.nextU32());
  });

  it('rejects windows longer than a split and a text too short to split', () => {
    const ds = makeDataset('text:short.txt', { text: 'x'.repeat(50) + 'y'.repeat(10) });
    expect(() => ds.evalBatch(2, 6, 1)).toThrow(/text:short.txt: the validation split has 6 characters, too few for sequences of 6\+1/);
    expect(() => ds.sampleBatch(new Rng(1), 0, 4)).toThrow(/batch size must be a positive integer/);
    expect(() => makeDataset('text:tiny.txt', { text: 'abc' })).toThrow(InputError);
    expect(() => makeDataset('text:x.txt')).toThrow(/no text given/);
  });

  it('builds the grammar dataset from the seeded corpus, with its vocabulary and entropy', () => {
    const ds = makeDataset('grammar', { seed: 7, chars: 20_000 });
    const text = generateGrammarText(7, 20_000);
    expect(ds.tokenizer.vocab).toEqual([...new Set(text)].sort());
    const train = text.slice(0, Math.floor(text.length * 0.9));
    expect(ds.unigramEntropy()).toBeCloseTo(entropyOf(train), 12);
    const batch = ds.sampleBatch(new Rng(1), 4, 32);
    expectConsistent(batch);
    for (let b = 0; b < 4; b++) expect(train).toContain(ds.tokenizer.decode(batch.tokens.subarray(b * 33, (b + 1) * 33)));
    expect(() => makeDataset('grammar', { chars: 10 })).toThrow(/at least 1000 characters/);
  });

  it('names the known datasets when the spec is unknown', () => {
    expect(() => makeDataset('shakespeare')).toThrow(/unknown dataset "shakespeare": expected grammar, modadd or text:PATH/);
  });
});

describe('modadd dataset', () => {
  const p = 11;
  const ds: Dataset = makeDataset('modadd', { p, seed: 3 });

  it('splits all p*p pairs into disjoint train and validation sets of the requested sizes', () => {
    const { train, val } = modAddSplit(p, 0.5, 3);
    expect(train.length).toBe(Math.round(121 * 0.5));
    expect(new Set([...train, ...val]).size).toBe(121);
    expect(train.length + val.length).toBe(121);
    expect(Array.from(modAddSplit(p, 0.5, 3).train)).toEqual(Array.from(train));
    expect(Array.from(modAddSplit(p, 0.5, 4).train)).not.toEqual(Array.from(train));
    expect(ds.evalSequences).toBe(val.length);
  });

  it('makes [a, +, b, =, c] rows with c = (a + b) mod p and the loss on the answer only', () => {
    const { train } = modAddSplit(p, 0.5, 3);
    const trainSet = new Set(train);
    const batch = ds.sampleBatch(new Rng(5), 32, 4);
    expectConsistent(batch);
    for (let r = 0; r < 32; r++) {
      const [a, plus, b, eq, c] = Array.from(batch.tokens.subarray(r * 5, r * 5 + 5));
      expect([plus, eq]).toEqual([p, p + 1]);
      expect(c).toBe((a! + b!) % p);
      expect(trainSet.has(a! * p + b!)).toBe(true);
      expect(Array.from(batch.mask!.subarray(r * 4, r * 4 + 4))).toEqual([0, 0, 0, 1]);
    }
    expect(ds.tokenizer.decode(batch.tokens.subarray(0, 5))).toMatch(/^\d+ \+ \d+ = \d+$/);
  });

  it('evaluates on distinct validation pairs, the same for the same seed', () => {
    const { val } = modAddSplit(p, 0.5, 3);
    const valSet = new Set(val);
    const batch = ds.evalBatch(val.length, 4, 8);
    const pairs = new Set<number>();
    for (let r = 0; r < batch.B; r++) pairs.add(batch.tokens[r * 5]! * p + batch.tokens[r * 5 + 2]!);
    expect(pairs).toEqual(valSet);
    expect(Array.from(ds.evalBatch(10, 4, 8).tokens)).toEqual(Array.from(ds.evalBatch(10, 4, 8).tokens));
    expect(() => ds.evalBatch(val.length + 1, 4, 8)).toThrow(/more than the 60 validation pairs/);
  });

  it('measures the unigram entropy of the answers, about ln p', () => {
    const { train } = modAddSplit(p, 0.5, 3);
    const answers = Array.from(train, (pair) => (Math.floor(pair / p) + (pair % p)) % p);
    expect(ds.unigramEntropy()).toBeCloseTo(entropyOf(answers), 12);
    expect(makeDataset('modadd').unigramEntropy()).toBeCloseTo(Math.log(97), 1);
  });

  it('rejects a sequence length other than 4, a bad modulus and a bad train fraction', () => {
    expect(() => ds.sampleBatch(new Rng(1), 4, 8)).toThrow(/modadd: sequences are "a \+ b =" \(4 input tokens\)/);
    expect(() => makeDataset('modadd', { p: 1 })).toThrow(/modulus p must be an integer >= 2/);
    expect(() => makeDataset('modadd', { trainFraction: 1 })).toThrow(/train fraction must be between 0 and 1/);
  });
});
