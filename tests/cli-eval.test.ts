/** `losscape eval` end to end: the GPU loss of a PyTorch-saved nanoGPT checkpoint, and its input errors. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorLine, runCli, tempDir } from './helpers/cli.ts';
import { serializeSafetensors } from '../src/io/safetensors.ts';
import expected from './fixtures/nanogpt/expected.json' with { type: 'json' };

const MODEL = 'tests/fixtures/nanogpt';
const TOKENS = 'tests/fixtures/nanogpt/tokens.safetensors';

describe('losscape eval', () => {
  it('prints the loss PyTorch computed for the same checkpoint and tokens', () => {
    const r = runCli(['eval', '--model', MODEL, '--tokens', TOKENS, '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.tokens).toBe(52);
    expect(Math.abs(out.loss - expected.loss_float64) / expected.loss_float64).toBeLessThan(1e-5);
    expect(out.adapter).toMatch(/\S/);
  });

  it('exits 2 with one line naming the file for a token id past the vocabulary', () => {
    const dir = tempDir();
    const bad = join(dir, 'bad-tokens.safetensors');
    writeFileSync(bad, serializeSafetensors([{ name: 'tokens', dtype: 'I32', shape: [1, 4], data: new Int32Array([1, 2, 99, 3]) }]));
    const r = runCli(['eval', '--model', MODEL, '--tokens', bad]);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toContain('bad-tokens.safetensors');
    expect(errorLine(r)).toContain('99');
    expect(r.stderr).not.toContain('    at ');
  });

  it('exits 2 for a missing model directory and for a truncated tokens file', () => {
    const missing = runCli(['eval', '--model', 'no/such/model', '--tokens', TOKENS]);
    expect(missing.status).toBe(2);
    expect(errorLine(missing)).toContain('no/such/model');
    const dir = tempDir();
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, new Uint8Array([1, 2, 3]));
    const r = runCli(['eval', '--model', MODEL, '--tokens', truncated]);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toContain('truncated.safetensors');
  });

  it('exits 2 on a bad flag value', () => {
    const r = runCli(['eval', '--model', MODEL, '--tokens', TOKENS, '--metric', 'bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--metric');
  });
});
