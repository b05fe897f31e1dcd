/**
 * The viewer's file opening (src/viewer/files.ts), without a browser: files
 * are written with the io module's writers, opened as a drop would open
 * them, and read back (round trips), and every wrong combination gets an
 * error naming the file.
 */
import { describe, expect, it } from 'vitest';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { directionsToSafetensors, gridToSafetensors, paramsToSafetensors, tokensToSafetensors } from '../src/io/formats.ts';
import { linspace } from '../src/landscape/grid.ts';
import { HYPER_DEFAULTS } from '../src/train/trainer.ts';
import { TRAIN_RECORD_FORMAT, TRAIN_RECORD_VERSION, type TrainRecord } from '../src/train/run-record.ts';
import { type NamedBytes, openFiles } from '../src/viewer/files.ts';

const config: GPTConfig = { n_layer: 2, n_head: 3, n_embd: 48, vocab_size: 37, block_size: 13, bias: true, activation: 'gelu', tie_embeddings: false };
const layout = paramLayout(config);
const text = (name: string, value: unknown): NamedBytes => ({ name, bytes: new TextEncoder().encode(JSON.stringify(value)) });
const weights = (name: string, seed: number): NamedBytes => ({ name, bytes: paramsToSafetensors(layout, initParams(layout, seed)) });

function tokensFile(name: string, B: number, T: number): NamedBytes {
  const tokens = Int32Array.from({ length: B * (T + 1) }, (_, k) => (k * 7) % config.vocab_size);
  return { name, bytes: tokensToSafetensors(tokens, B, T + 1) };
}

function trainJson(trainLoss: number[]): NamedBytes {
  const record: TrainRecord = {
    format: TRAIN_RECORD_FORMAT, version: TRAIN_RECORD_VERSION,
    dataset: { spec: 'grammar', seed: 1337, vocabSize: 37, unigramEntropy: 3, info: {} },
    preset: null, config,
    hyper: { ...HYPER_DEFAULTS, steps: trainLoss.length, batchSize: 2, seqLen: 13, lr: 1e-2, minLr: 1e-3, warmupSteps: 0, seed: 1, saveEvery: 5, valEvery: 5 },
    eval: { file: 'eval.safetensors', sequences: 3, T: 13, seed: 1337 }, adapter: 'test',
    step: trainLoss.length, trainLoss, gradNorm: trainLoss.map(() => 1), val: [], checkpoints: [], elapsedSeconds: 1, tokensPerSecond: 1,
  };
  return text('train.json', record);
}

describe('opening files', () => {
  it('reads a run: checkpoints in step order, the tokens file as the evaluation batch, train.json\'s losses, optim ignored', () => {
    const opened = openFiles([
      weights('ckpt-10.safetensors', 3), text('config.json', config), weights('ckpt-0.safetensors', 1), weights('ckpt-5.safetensors', 2),
      tokensFile('eval.safetensors', 3, 13), trainJson([3, 2.5, 2.25, 2, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4]),
      text('tokenizer.json', { type: 'char', vocab: ['a'] }), { name: 'optim.safetensors', bytes: new Uint8Array(3) },
    ]);
    expect(opened.kind).toBe('model');
    if (opened.kind !== 'model') return;
    const m = opened.model!;
    expect(m.checkpoints.map((c) => c.step)).toEqual([0, 5, 10]);
    m.checkpoints.forEach((c, t) => expect(c.params).toEqual(initParams(layout, t + 1)));
    expect(m.config).toEqual(config);
    expect([m.evalBatch!.B, m.evalBatch!.T, m.evalBatch!.idx[1], m.evalBatch!.targets[0]]).toEqual([3, 13, 7, 7]);
    expect([...m.trainLoss!]).toEqual([3, 2.5, 2.25, 2, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4].map(Math.fround));
    expect(m.tokenizer).toEqual({ type: 'char', vocab: ['a'] });
    expect(opened.directions).toBeNull();
  });

  it('reads a model directory with a directions file; a directions file alone is for the model already open', () => {
    const d = { d1: initParams(layout, 8), d2: initParams(layout, 9), metadata: { kind: 'hessian' } };
    const dirs = { name: 'dirs.safetensors', bytes: directionsToSafetensors(layout, d) };
    const opened = openFiles([text('config.json', config), weights('model.safetensors', 4), dirs]);
    if (opened.kind !== 'model') throw new Error('expected a model');
    expect(opened.model!.checkpoints.map((c) => c.step)).toEqual([0]);
    expect(opened.model!.evalBatch).toBeNull();
    expect(opened.directions!.name).toBe('dirs.safetensors');
    expect(openFiles([dirs])).toMatchObject({ kind: 'model', model: null, directions: { name: 'dirs.safetensors' } });
  });

  it('reads a grid file', () => {
    const grid = { nx: 3, ny: 2, frames: 1, animated: false, alpha: linspace(-1, 1, 3), beta: linspace(0, 1, 2), loss: Float32Array.from([1, 2, 3, 4, NaN, 6]), metadata: {} };
    const opened = openFiles([{ name: 'g.safetensors', bytes: gridToSafetensors(grid) }]);
    if (opened.kind !== 'grid') throw new Error('expected a grid');
    expect([...opened.grid.loss]).toEqual([1, 2, 3, 4, NaN, 6]);
  });

  it('names the file and what was expected when the files do not make a model', () => {
    const grid = { nx: 2, ny: 2, frames: 1, animated: false, alpha: linspace(0, 1, 2), beta: linspace(0, 1, 2), loss: new Float32Array(4), metadata: {} };
    const gridFile = { name: 'g.safetensors', bytes: gridToSafetensors(grid) };
    expect(() => openFiles([gridFile, text('config.json', config)])).toThrow('g.safetensors: a grid file opens alone');
    expect(() => openFiles([weights('model.safetensors', 1)])).toThrow('model.safetensors: model weights need their config.json');
    expect(() => openFiles([text('config.json', config), weights('model.safetensors', 1), weights('ckpt-3.safetensors', 1)]))
      .toThrow('expected one model file (model.safetensors) or a run\'s ckpt-STEP.safetensors files, not both');
    expect(() => openFiles([text('config.json', { ...config, n_embd: 24 }), weights('model.safetensors', 1)])).toThrow(/^model\.safetensors: tensor/);
    expect(() => openFiles([{ name: 'notes.txt', bytes: new Uint8Array(2) }])).toThrow('notes.txt: nothing to open; the viewer opens a grid file');
    expect(() => openFiles([{ name: 'config.json', bytes: new TextEncoder().encode('{') }, weights('model.safetensors', 1)])).toThrow('config.json: not valid JSON');
    expect(() => openFiles([text('config.json', config), weights('model.safetensors', 1), tokensFile('a.safetensors', 1, 13), tokensFile('b.safetensors', 1, 13)]))
      .toThrow('a.safetensors, b.safetensors: one tokens file at a time');
    expect(() => openFiles([text('config.json', config), weights('model.safetensors', 1), tokensFile('eval.safetensors', 1, 14)]))
      .toThrow('eval.safetensors: tensor "tokens" has shape [1, 15]: sequence length T = 14 exceeds block_size 13');
  });
});
