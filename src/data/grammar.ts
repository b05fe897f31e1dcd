/**
 * English-like text from a small probabilistic grammar, for character-level
 * language modelling. The grammar has real structure for a model to find:
 * a closed lexicon (so words can be memorised), subject-verb agreement in
 * number, "a" / "an", tense kept within a clause, do-support in questions, animate
 * subjects with "who" relative clauses and inanimate objects with
 * object-gap "that" clauses, prepositional phrases, clause conjunctions with
 * their commas, capitalised sentence starts and names, and paragraphs.
 *
 * Every random choice is drawn from `Rng` and its log-probability is summed,
 * so the generator also reports the entropy of the derivations it made. The
 * entropy of the text is at most that (different derivations can give the
 * same text), so nats per character of the derivations bounds from above
 * the loss a perfect model of this source would reach.
 */
import { Rng } from '../util/rng.ts';

type Num = 'sg' | 'pl';
type Tense = 'present' | 'past';

interface Noun { sg: string; pl: string }
/** Third person singular present, base form, past. */
interface Verb { s: string; base: string; past: string; object: 'animate' | 'thing' | 'any' }

const ANIMATE: readonly Noun[] = [
  { sg: 'cat', pl: 'cats' }, { sg: 'dog', pl: 'dogs' }, { sg: 'bird', pl: 'birds' },
  { sg: 'child', pl: 'children' }, { sg: 'teacher', pl: 'teachers' }, { sg: 'farmer', pl: 'farmers' },
  { sg: 'king', pl: 'kings' }, { sg: 'girl', pl: 'girls' }, { sg: 'boy', pl: 'boys' },
  { sg: 'fox', pl: 'foxes' }, { sg: 'wolf', pl: 'wolves' }, { sg: 'mouse', pl: 'mice' },
  { sg: 'woman', pl: 'women' }, { sg: 'man', pl: 'men' },
];
const THINGS: readonly Noun[] = [
  { sg: 'house', pl: 'houses' }, { sg: 'tree', pl: 'trees' }, { sg: 'river', pl: 'rivers' },
  { sg: 'book', pl: 'books' }, { sg: 'stone', pl: 'stones' }, { sg: 'apple', pl: 'apples' },
  { sg: 'garden', pl: 'gardens' }, { sg: 'ship', pl: 'ships' }, { sg: 'letter', pl: 'letters' },
  { sg: 'song', pl: 'songs' }, { sg: 'box', pl: 'boxes' }, { sg: 'city', pl: 'cities' },
];
const NAMES = ['Anna', 'Tom', 'Lucy', 'Max', 'Mia', 'Oscar', 'Ben', 'Ella'] as const;
const DETERMINERS: Record<Num, readonly string[]> = {
  sg: ['the', 'a', 'every', 'this', 'that', 'my', 'our', 'her', 'his'],
  pl: ['the', 'some', 'many', 'these', 'those', 'my', 'our', 'her', 'his'],
};
const ADJECTIVES = [
  'small', 'big', 'old', 'young', 'quiet', 'happy', 'red', 'green', 'dark', 'bright', 'little', 'clever', 'lazy', 'strange',
] as const;
const ADVERBS = ['quickly', 'slowly', 'quietly', 'often', 'happily', 'again', 'today', 'there'] as const;
const TRANSITIVE: readonly Verb[] = [
  { s: 'sees', base: 'see', past: 'saw', object: 'any' },
  { s: 'likes', base: 'like', past: 'liked', object: 'any' },
  { s: 'finds', base: 'find', past: 'found', object: 'any' },
  { s: 'follows', base: 'follow', past: 'followed', object: 'animate' },
  { s: 'helps', base: 'help', past: 'helped', object: 'animate' },
  { s: 'carries', base: 'carry', past: 'carried', object: 'thing' },
  { s: 'watches', base: 'watch', past: 'watched', object: 'any' },
  { s: 'knows', base: 'know', past: 'knew', object: 'any' },
  { s: 'builds', base: 'build', past: 'built', object: 'thing' },
  { s: 'reads', base: 'read', past: 'read', object: 'thing' },
  { s: 'wants', base: 'want', past: 'wanted', object: 'thing' },
  { s: 'eats', base: 'eat', past: 'ate', object: 'thing' },
];
/** Verbs that can take a thing as object, for "the book that the girl reads". */
const THING_TRANSITIVE = TRANSITIVE.filter((v) => v.object !== 'animate');
const INTRANSITIVE: readonly Verb[] = [
  { s: 'sleeps', base: 'sleep', past: 'slept', object: 'any' },
  { s: 'runs', base: 'run', past: 'ran', object: 'any' },
  { s: 'sings', base: 'sing', past: 'sang', object: 'any' },
  { s: 'waits', base: 'wait', past: 'waited', object: 'any' },
  { s: 'laughs', base: 'laugh', past: 'laughed', object: 'any' },
  { s: 'walks', base: 'walk', past: 'walked', object: 'any' },
  { s: 'dreams', base: 'dream', past: 'dreamed', object: 'any' },
];
const PREPOSITIONS = ['near', 'under', 'behind', 'with', 'in', 'on', 'over'] as const;
const CONJUNCTIONS = [', and', ', but', ', so', ' because', ' while', ' when'] as const;
const PRONOUNS: ReadonlyArray<{ text: string; num: Num }> = [
  { text: 'he', num: 'sg' }, { text: 'she', num: 'sg' }, { text: 'they', num: 'pl' }, { text: 'we', num: 'pl' },
];

/** A verb form: agreement in the present, one form in the past, the base form after do-support. */
type Form = { tense: Tense; num: Num } | 'base';

function verbForm(v: Verb, form: Form): string {
  if (form === 'base') return v.base;
  if (form.tense === 'past') return v.past;
  return form.num === 'sg' ? v.s : v.base;
}

export class GrammarGenerator {
  /** Sum of ln p of every choice made so far (<= 0). */
  logProb = 0;
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** One item, uniformly. */
  private pick<T>(items: readonly T[]): T {
    this.logProb -= Math.log(items.length);
    return items[this.rng.int(items.length)]!;
  }

  /** One item with probability proportional to its weight. */
  private pickWeighted<T>(items: readonly T[], weights: readonly number[]): T {
    const total = weights.reduce((a, b) => a + b, 0);
    let u = this.rng.uniform() * total;
    let i = 0;
    while (i < items.length - 1 && u >= weights[i]!) u -= weights[i++]!;
    this.logProb += Math.log(weights[i]! / total);
    return items[i]!;
  }

  /** True with probability p. */
  private chance(p: number): boolean {
    const yes = this.rng.uniform() < p;
    this.logProb += Math.log(yes ? p : 1 - p);
    return yes;
  }

  private nounPhrase(animate: boolean, num: Num, depth: number): string {
    const noun = this.pick(animate ? ANIMATE : THINGS)[num];
    const words = [this.pick(DETERMINERS[num])];
    // Zero, one or two adjectives, fewer as phrases nest.
    if (this.chance(depth === 0 ? 0.45 : 0.25)) {
      words.push(this.pick(ADJECTIVES));
      if (this.chance(0.2)) words.push(this.pick(ADJECTIVES));
    }
    words.push(noun);
    if (words[0] === 'a' && /^[aeiou]/.test(words[1]!)) words[0] = 'an';
    let np = words.join(' ');
    if (depth < 2 && this.chance(0.18)) {
      if (animate) {
        // "the dog who sees the cat": the relative verb agrees with the head noun.
        np += ` who ${this.verbPhrase({ tense: this.pick(['present', 'past'] as const), num }, depth + 1)}`;
      } else {
        // "the book that the girl reads": an object-gap clause with a transitive verb.
        const subj = this.subject(depth + 1);
        const verb = this.pick(THING_TRANSITIVE);
        np += ` that ${subj.text} ${verbForm(verb, { tense: this.pick(['present', 'past'] as const), num: subj.num })}`;
      }
    } else if (depth < 2 && this.chance(0.1)) {
      np += ` ${this.pick(PREPOSITIONS)} ${this.nounPhrase(this.chance(0.5), this.pick(['sg', 'pl'] as const), depth + 1)}`;
    }
    return np;
  }

  private subject(depth: number): { text: string; num: Num } {
    const kind = this.pickWeighted(['np', 'name', 'pronoun'] as const, [3, 1, 1]);
    if (kind === 'name') return { text: this.pick(NAMES), num: 'sg' };
    if (kind === 'pronoun') return this.pick(PRONOUNS);
    const num = this.pick(['sg', 'pl'] as const);
    return { text: this.nounPhrase(true, num, depth), num };
  }

  private object(verb: Verb, depth: number): string {
    const animate = verb.object === 'any' ? this.chance(0.5) : verb.object === 'animate';
    if (animate && this.chance(0.15)) return this.pick(NAMES);
    return this.nounPhrase(animate, this.pick(['sg', 'pl'] as const), depth);
  }

  private verbPhrase(form: Form, depth: number): string {
    let vp: string;
    if (this.chance(0.65)) {
      const verb = this.pick(TRANSITIVE);
      vp = `${verbForm(verb, form)} ${this.object(verb, depth)}`;
    } else {
      vp = verbForm(this.pick(INTRANSITIVE), form);
      if (this.chance(0.4)) vp += ` ${this.pick(PREPOSITIONS)} ${this.nounPhrase(false, this.pick(['sg', 'pl'] as const), depth + 1)}`;
    }
    if (this.chance(0.2)) vp += ` ${this.pick(ADVERBS)}`;
    return vp;
  }

  private clause(depth: number): string {
    const subj = this.subject(depth);
    const tense = this.pick(['present', 'past'] as const);
    return `${subj.text} ${this.verbPhrase({ tense, num: subj.num }, depth)}`;
  }

  /** A question with do-support: "does the cat see the dog?" */
  private question(): string {
    const subj = this.subject(0);
    const aux = this.chance(0.5) ? 'did' : subj.num === 'sg' ? 'does' : 'do';
    return `${aux} ${subj.text} ${this.verbPhrase('base', 0)}?`;
  }

  /** One sentence, capitalised and punctuated. */
  sentence(): string {
    let s: string;
    const kind = this.pickWeighted(['statement', 'reported', 'question'] as const, [4, 1, 1]);
    if (kind === 'question') {
      s = this.question();
    } else {
      s = kind === 'reported'
        ? `${this.pick(NAMES)} ${this.pick(['said', 'thinks', 'knew'] as const)} that ${this.clause(1)}`
        : this.clause(0);
      if (this.chance(0.3)) s += `${this.pick(CONJUNCTIONS)} ${this.clause(1)}`;
      s += this.chance(0.9) ? '.' : '!';
    }
    return s[0]!.toUpperCase() + s.slice(1);
  }

  /** Whole sentences until at least `chars` characters; paragraphs end with a newline. */
  text(chars: number): string {
    const parts: string[] = [];
    let length = 0;
    while (length < chars) {
      const s = this.sentence() + (this.chance(0.15) ? '\n' : ' ');
      parts.push(s);
      length += s.length;
    }
    return parts.join('');
  }
}

export const GRAMMAR_DEFAULT_CHARS = 200_000;

/** The corpus of a seed: deterministic, at least `chars` characters, ending at a sentence end. */
export function generateGrammarText(seed: number, chars = GRAMMAR_DEFAULT_CHARS): string {
  return new GrammarGenerator(seed).text(chars);
}
