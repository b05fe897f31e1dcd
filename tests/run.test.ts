/** Reading run directories (SPEC section 3): checkpoints by step, train.json, the eval batch, checkpoint specs. */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/model/config.ts';
import { everyKth, findCheckpoint, listCheckpoints, loadCheckpoint, parseCheckpointSpec } from '../src/landscape/run.ts';
import { loadModelSpec, loadRun, nodeRunReader } from '../src/node/run.ts';
import { tempDir } from './helpers/cli.ts';
import { centreParams, TINY, writeRun } from './helpers/runs.ts';

const names = (dir: string, steps: number[]) => steps.map((s) => ({ step: s, path: join(dir, `ckpt-${s}.safetensors`) }));

describe('run directories', () => {
  it('list checkpoints by numeric step, with leading zeros, and refuse two files for one step', () => {
    const got = listCheckpoints('r', ['ckpt-10.safetensors', 'eval.safetensors', 'ckpt-9.safetensors', 'ckpt-0.safetensors', 'ckpt-x.safetensors', 'ckpt-0100.safetensors']);
    expect(got).toEqual([
      { step: 0, path: 'r/ckpt-0.safetensors' }, { step: 9, path: 'r/ckpt-9.safetensors' },
      { step: 10, path: 'r/ckpt-10.safetensors' }, { step: 100, path: 'r/ckpt-0100.safetensors' },
    ]);
    expect(() => listCheckpoints('r', ['ckpt-7.safetensors', 'ckpt-007.safetensors'])).toThrow(/both hold step 7/);
  });

  it('read config, train.json, the eval batch and each checkpoint\'s weights', () => {
    const dir = join(tempDir(), 'run');
    const c = centreParams();
    const steps = [0, 5, 10];
    writeRun(dir, steps.map((step) => ({ step, params: c.map((w) => w + step) })));
    const run = loadRun(dir);
    expect(run.config).toEqual(TINY);
    expect(run.checkpoints).toEqual(names(dir, steps));
    expect(run.train).toEqual({ dataset: 'synthetic', seed: 0, steps: 10 });
    expect(run.evalPath).toBe(join(dir, 'eval.safetensors'));
    expect(run.tokenizer).toBeNull();
    const w = loadCheckpoint(run, findCheckpoint(run, 5), nodeRunReader);
    const wte = run.layout.byName.get('transformer.wte.weight')!;
    expect(w[wte.offset]).toBe(Math.fround(c[wte.offset]! + 5));
    expect(findCheckpoint(run, 'init').step).toBe(0);
    expect(findCheckpoint(run, 'final').step).toBe(10);
    expect(() => findCheckpoint(run, 7)).toThrow(/no checkpoint for step 7 \(steps: 0, 5, 10\)/);
    // RUN:STEP as a model spec
    expect(loadModelSpec(`${dir}:5`).params).toEqual(w);
    expect(loadModelSpec(`${dir}:final`).source).toBe(join(dir, 'ckpt-10.safetensors'));
  });

  it('name the directory and the problem when it is not a run', () => {
    const dir = tempDir();
    expect(() => loadRun(join(dir, 'missing'))).toThrow(/missing: no such directory/);
    expect(() => loadRun(dir)).toThrow(/not a run directory \(no config.json\)/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
    expect(() => loadRun(dir)).toThrow(/no ckpt-STEP.safetensors/);
    const run = join(dir, 'r');
    writeRun(run, [{ step: 0, params: centreParams() }]);
    writeFileSync(join(run, 'train.json'), '[1, 2]');
    expect(() => loadRun(run)).toThrow(InputError);
    expect(() => loadRun(run)).toThrow(/train.json: expected a JSON object/);
    mkdirSync(join(dir, 'plain'));
    expect(() => loadRun(join(dir, 'plain'))).toThrow(/plain: not a run directory/);
  });

  it('parse RUN:STEP, RUN:init and RUN:final, and keep every k-th checkpoint and the last', () => {
    expect(parseCheckpointSpec('runs/tiny:120')).toEqual({ run: 'runs/tiny', which: 120 });
    expect(parseCheckpointSpec('runs/tiny:init')).toEqual({ run: 'runs/tiny', which: 'init' });
    expect(parseCheckpointSpec('a:b:final')).toEqual({ run: 'a:b', which: 'final' });
    expect(parseCheckpointSpec('runs/tiny')).toBeNull();
    expect(parseCheckpointSpec(':5')).toBeNull();
    const seven = names('r', [0, 1, 2, 3, 4, 5, 6]);
    expect(everyKth(seven, 3).map((c) => c.step)).toEqual([0, 3, 6]);
    expect(everyKth(names('r', [0, 1, 2, 3, 4, 5, 6, 7]), 3).map((c) => c.step)).toEqual([0, 3, 6, 7]);
    expect(everyKth(seven, 1)).toEqual(seven);
  });
});
