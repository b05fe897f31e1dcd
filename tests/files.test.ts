/**
 * Node file loading (src/node/files.ts): atomic writes, model / run
 * directories, and errors that name the path.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { gridToSafetensors, paramsToSafetensors, tokensToSafetensors } from '../src/io/formats.ts';
import { loadGrid, loadModel, loadTokens, readBytes, writeFileAtomic } from '../src/node/files.ts';
import { expectInputError } from './helpers/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'losscape-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const configJson = { vocab_size: 37, block_size: 16, n_layer: 1, n_head: 3, n_embd: 18 };
const layout = paramLayout(parseConfig(configJson));

function dir(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

describe('writeFileAtomic', () => {
  it('writes bytes and strings, replaces an existing file and leaves no temporary file', () => {
    const d = dir('atomic');
    const path = join(d, 'out.bin');
    writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    writeFileAtomic(path, 'héllo');
    expect(readFileSync(path, 'utf8')).toBe('héllo');
    expect(readdirSync(d)).toEqual(['out.bin']);
  });

  it('removes its temporary file when the rename fails (the target is a directory)', () => {
    const d = dir('atomic-fail');
    const target = dir('atomic-fail/target');
    expect(() => writeFileAtomic(target, 'x')).toThrow();
    expect(readdirSync(d)).toEqual(['target']);
  });
});

describe('readBytes', () => {
  it('names the path of a missing file and of a directory', () => {
    expectInputError(() => readBytes(join(root, 'missing.safetensors')), join(root, 'missing.safetensors'), 'no such file');
    expectInputError(() => readBytes(dir('a-dir')), join(root, 'a-dir'), 'is a directory');
  });
});

describe('loadModel', () => {
  it('loads a model directory with its tokenizer.json', () => {
    const d = dir('model');
    const params = initParams(layout, 1);
    writeFileSync(join(d, 'config.json'), JSON.stringify(configJson));
    writeFileSync(join(d, 'model.safetensors'), paramsToSafetensors(layout, params));
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify({ kind: 'char', vocab: ['a', 'b'] }));
    const m = loadModel(d);
    expect(m.params).toEqual(params);
    expect(m.config).toEqual(parseConfig(configJson));
    expect(m.dir).toBe(d);
    expect(m.source).toBe(join(d, 'model.safetensors'));
    expect(m.tokenizer).toEqual({ kind: 'char', vocab: ['a', 'b'] });
  });

  it('loads the checkpoint of the highest step of a run directory (10 after 9, not lexicographic)', () => {
    const d = dir('run');
    writeFileSync(join(d, 'config.json'), JSON.stringify(configJson));
    for (const step of [0, 9, 10, 2]) writeFileSync(join(d, `ckpt-${step}.safetensors`), paramsToSafetensors(layout, initParams(layout, step)));
    writeFileSync(join(d, 'eval.safetensors'), tokensToSafetensors(new Int32Array([1, 2]), 1, 2));
    const m = loadModel(d);
    expect(m.source).toBe(join(d, 'ckpt-10.safetensors'));
    expect(m.params).toEqual(initParams(layout, 10));
    expect(m.tokenizer).toBeNull();
    expect(loadModel(join(d, 'ckpt-2.safetensors')).params).toEqual(initParams(layout, 2));
  });

  it('names the path when the directory has no weights, no config.json, or a bad config.json', () => {
    const empty = dir('empty');
    writeFileSync(join(empty, 'config.json'), JSON.stringify(configJson));
    expectInputError(() => loadModel(empty), empty, 'no model.safetensors and no ckpt-STEP.safetensors');

    const noConfig = dir('no-config');
    writeFileSync(join(noConfig, 'model.safetensors'), paramsToSafetensors(layout, initParams(layout, 1)));
    expectInputError(() => loadModel(noConfig), join(noConfig, 'config.json'), 'no such file');

    const badJson = dir('bad-json');
    writeFileSync(join(badJson, 'model.safetensors'), paramsToSafetensors(layout, initParams(layout, 1)));
    writeFileSync(join(badJson, 'config.json'), '{"vocab_size": 37,');
    expectInputError(() => loadModel(badJson), join(badJson, 'config.json'), 'not valid JSON');

    expectInputError(() => loadModel(join(root, 'nowhere')), join(root, 'nowhere'), 'no such file');
  });

  it('names the weights file when its tensors do not match config.json', () => {
    const d = dir('mismatch');
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...configJson, n_embd: 24 }));
    writeFileSync(join(d, 'model.safetensors'), paramsToSafetensors(layout, initParams(layout, 1)));
    expectInputError(() => loadModel(d), join(d, 'model.safetensors'), '"transformer.wte.weight" has shape [37, 18], expected [37, 24]');
  });
});

describe('loadTokens and loadGrid', () => {
  it('check token ids against the config, naming the file', () => {
    const path = join(dir('tokens'), 'tokens.safetensors');
    writeFileSync(path, tokensToSafetensors(new Int32Array([1, 2, 3, 40]), 1, 4));
    expect(loadTokens(path).T).toBe(3);
    expectInputError(() => loadTokens(path, parseConfig(configJson)), path, 'token id 40', 'vocab_size 37');
  });

  it('load a grid file written with writeFileAtomic', () => {
    const path = join(dir('grid'), 'grid.safetensors');
    const grid = {
      nx: 3, ny: 2, frames: 1, animated: false, alpha: new Float32Array([-1, 0, 1]), beta: new Float32Array([0, 2]),
      loss: new Float32Array([1, 2, 3, 4, NaN, 6]), metadata: { metric: 'ce' },
    };
    writeFileAtomic(path, gridToSafetensors(grid));
    expect(loadGrid(path)).toEqual(grid);
  });
});
