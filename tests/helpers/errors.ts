/** Assertions on the errors users see. */
import { expect } from 'vitest';
import { InputError } from '../../src/model/config.ts';
import { type CliResult, errorLine } from './cli.ts';

/** Expects `fn` to throw an InputError whose message contains every one of `parts`. */
export function expectInputError(fn: () => unknown, ...parts: string[]): void {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  for (const p of parts) expect((error as Error).message).toContain(p);
}

/** Expects a CLI run to have exited 2 with one error line containing every one of `parts`, and no stack trace. */
export function expectUsageError(r: CliResult, ...parts: string[]): void {
  expect(r.status, r.stderr).toBe(2);
  const line = errorLine(r);
  for (const p of parts) expect(line).toContain(p);
  expect(r.stderr).not.toContain('    at ');
}
