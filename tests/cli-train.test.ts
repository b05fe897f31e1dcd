/**
 * `losscape train` (and `losscape sample` on its run) end to end: the run directory of
 * SPEC section 3, train.json's checkpoint losses against `losscape eval` on
 * eval.safetensors, --resume against an uninterrupted run, and input errors.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorLine, runCli, tempDir } from './helpers/cli.ts';
import { loadModel, loadTokens } from '../src/node/files.ts';
import { parseTrainRecord } from '../src/train/run-record.ts';
import { tokenizerFromJSON } from '../src/data/tokenizer.ts';
import { makeDataset } from '../src/data/dataset.ts';
import { forward } from '../src/model/reference.ts';
import { PRESETS } from '../src/train/presets.ts';

const SMALL = ['--steps', '4', '--save-every', '2', '--batch', '4', '--block', '16', '--eval-batch', '3'];

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

function evalLoss(model: string, tokens: string): number {
  const r = runCli(['eval', '--model', model, '--tokens', tokens, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return lastJson(r.stdout).loss as number;
}

describe('losscape train', () => {
  const dir = join(tempDir(), 'run');
  const run = runCli(['train', '--dataset', 'grammar', '--preset', 'tiny', ...SMALL, '--seed', '3', '--out', dir, '--json']);

  it('writes config.json, tokenizer.json, eval.safetensors, train.json, optim.safetensors and a checkpoint per save', () => {
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([
      'ckpt-0.safetensors', 'ckpt-2.safetensors', 'ckpt-4.safetensors', 'config.json', 'eval.safetensors', 'optim.safetensors',
      'tokenizer.json', 'train.json',
    ]);
    const record = parseTrainRecord(JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8')), 'train.json');
    expect(record.step).toBe(4);
    expect(record.preset).toBe('tiny');
    expect(record.hyper).toMatchObject({ steps: 4, saveEvery: 2, batchSize: 4, seqLen: 16, seed: 3 });
    expect(record.trainLoss).toHaveLength(4);
    expect(record.checkpoints.map((c) => c.file)).toEqual(['ckpt-0.safetensors', 'ckpt-2.safetensors', 'ckpt-4.safetensors']);
    // The model and tokenizer are the dataset's; the evaluation batch is 3 validation windows of 16+1 characters.
    const grammar = makeDataset('grammar');
    const tokenizer = tokenizerFromJSON(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), 'tokenizer.json');
    expect(tokenizer.vocab).toEqual(grammar.tokenizer.vocab);
    const model = loadModel(join(dir, 'ckpt-4.safetensors'));
    expect(model.config.vocab_size).toBe(grammar.vocabSize);
    const batch = loadTokens(join(dir, 'eval.safetensors'), model.config);
    expect([batch.B, batch.T]).toEqual([3, 16]);
    expect(Array.from(batch.idx)).toEqual(Array.from(grammar.evalBatch(3, 16, record.dataset.seed).idx));
    // The initial loss is near ln V, the reference forward's on the same weights and batch.
    const ref = forward(model.layout, loadModel(join(dir, 'ckpt-0.safetensors')).params, batch.idx, batch.targets, batch.B, batch.T);
    expect(Math.abs(record.checkpoints[0]!.evalLoss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    const summary = lastJson(run.stdout);
    expect(summary.valLoss).toBe(record.checkpoints[2]!.evalLoss);
  });

  it('records for each checkpoint the loss `losscape eval` prints for it on eval.safetensors', () => {
    const record = parseTrainRecord(JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8')), 'train.json');
    const last = record.checkpoints[2]!;
    expect(evalLoss(join(dir, last.file), join(dir, 'eval.safetensors'))).toBe(last.evalLoss);
    expect(last.evalLoss).toBeLessThan(record.checkpoints[0]!.evalLoss);
  });

  it('--stop-at then --resume gives the same checkpoints, bytes for bytes, as the uninterrupted run', () => {
    const split = join(tempDir(), 'run');
    const first = runCli(['train', '--preset', 'tiny', ...SMALL, '--seed', '3', '--out', split, '--stop-at', '2']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('--resume');
    expect(existsSync(join(split, 'ckpt-4.safetensors'))).toBe(false);
    const rest = runCli(['train', '--out', split, '--resume', '--steps', '4']);
    expect(rest.status, rest.stderr).toBe(0);
    for (const f of ['ckpt-2.safetensors', 'ckpt-4.safetensors', 'optim.safetensors', 'eval.safetensors', 'config.json']) {
      expect(readFileSync(join(split, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
    }
    const a = JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(split, 'train.json'), 'utf8'));
    for (const k of ['trainLoss', 'gradNorm', 'val', 'checkpoints', 'hyper', 'dataset']) expect(b[k], k).toEqual(a[k]);
  });

  it('refuses to resume with other settings, to overwrite a run, or to resume where there is none (exit 2)', () => {
    const lr = runCli(['train', '--out', dir, '--resume', '--lr', '0.5']);
    expect(lr.status).toBe(2);
    expect(errorLine(lr)).toMatch(/--lr 0\.5: the run in .*train\.json was made with 0\.01/);
    const again = runCli(['train', ...SMALL, '--out', dir]);
    expect(again.status).toBe(2);
    expect(errorLine(again)).toContain('already holds a training run');
    const none = runCli(['train', '--out', join(tempDir(), 'nothing'), '--resume']);
    expect(none.status).toBe(2);
    expect(errorLine(none)).toContain('no train.json');
    const block = PRESETS.tiny.model.block_size;
    const long = runCli(['train', '--preset', 'tiny', '--block', String(block + 1), '--out', join(tempDir(), 'x')]);
    expect(long.status).toBe(2);
    expect(errorLine(long)).toContain(`--block ${block + 1} exceeds the model's block_size ${block}`);
    expect(long.stderr).not.toContain('    at ');
  });

  it('modadd: eval.safetensors carries the answer mask, and eval agrees with train.json', () => {
    const mod = join(tempDir(), 'modadd');
    const r = runCli(['train', '--dataset', 'modadd', '--p', '11', '--steps', '2', '--save-every', '2', '--batch', '8', '--eval-batch', '20', '--out', mod]);
    expect(r.status, r.stderr).toBe(0);
    const model = loadModel(mod);
    expect(model.config).toMatchObject({ vocab_size: 13, block_size: 4 });
    const batch = loadTokens(join(mod, 'eval.safetensors'), model.config);
    expect([batch.B, batch.T]).toEqual([20, 4]);
    expect(Array.from(batch.mask!.subarray(0, 8))).toEqual([0, 0, 0, 1, 0, 0, 0, 1]);
    const record = parseTrainRecord(JSON.parse(readFileSync(join(mod, 'train.json'), 'utf8')), 'train.json');
    expect(evalLoss(join(mod, 'ckpt-2.safetensors'), join(mod, 'eval.safetensors'))).toBe(record.checkpoints[1]!.evalLoss);
  });

  it('sample: continues a prompt from the run directory, the same for the same seed', () => {
    const a = runCli(['sample', '--model', dir, '--prompt', 'The cat', '--tokens', '12', '--seed', '4']);
    expect(a.status, a.stderr).toBe(0);
    const text = a.stdout.trimEnd();
    expect(text.startsWith('The cat')).toBe(true);
    expect([...text]).toHaveLength(7 + 12);
    expect(runCli(['sample', '--model', dir, '--prompt', 'The cat', '--tokens', '12', '--seed', '4']).stdout).toBe(a.stdout);
    const bad = runCli(['sample', '--model', dir, '--prompt', 'The cat\u00e9']);
    expect(bad.status).toBe(2);
    expect(errorLine(bad)).toContain('U+00E9');
  });
});
