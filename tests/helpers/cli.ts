/** Runs the losscape CLI as a user would, in a child process. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 120_000): CliResult {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/losscape.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The last line of stderr that is losscape's own (Dawn prints adapter warnings before it). */
export function errorLine(r: CliResult): string {
  return r.stderr.split('\n').filter((l) => l.startsWith('losscape:')).pop() ?? '';
}

export function tempDir(prefix = 'losscape-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
