/** Parsers for flag values shared by the verbs; each names its flag in errors. */
import { InputError } from '../model/config.ts';
import { METRICS, type Metric } from '../../shaders/loss.ts';

export function parseInteger(flag: string, min = 1): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InputError(`${flag}: expected an integer >= ${min}, got "${v}"`);
    }
    return n;
  };
}

export function parseNumber(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InputError(`${flag}: expected a number, got "${v}"`);
    return n;
  };
}

export function parseChoice<T extends string>(flag: string, choices: readonly T[]): (v: string) => T {
  return (v: string) => {
    if (!(choices as readonly string[]).includes(v)) throw new InputError(`${flag}: expected one of ${choices.join(', ')}, got "${v}"`);
    return v as T;
  };
}

export const parseMetric = parseChoice<Metric>('--metric', METRICS);
