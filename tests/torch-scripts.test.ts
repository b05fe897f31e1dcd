import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findTorchPython, jsonNumber, torchGridArgs } from '../bench/torch.ts';

// The PyTorch baselines need torch only to run; that they compile needs any python3.
const SCRIPTS = ['bench/nanogpt_torch.py', 'bench/torch_grid.py', 'bench/torch_train.py'];

describe('PyTorch baseline scripts', () => {
  it('compile with python3 -m py_compile', () => {
    const cache = mkdtempSync(join(tmpdir(), 'losscape-pycache-'));
    try {
      for (const file of SCRIPTS) {
        const r = spawnSync('python3', ['-m', 'py_compile', file], { encoding: 'utf8', env: { ...process.env, PYTHONPYCACHEPREFIX: cache } });
        expect(r.error).toBeUndefined();
        expect(r.stderr, file).toBe('');
        expect(r.status, file).toBe(0);
      }
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('finds no torch Python among candidates that cannot import it', () => {
    expect(findTorchPython(['/nonexistent/python3', 'false'])).toBeNull();
  });

  it('passes a grid as --res/--range with "=" so that a negative range is not taken for a flag', () => {
    const args = torchGridArgs({ model: 'm', tokens: 't', directions: 'd', res: { nx: 7, ny: 5 , range: [-0.5, 1, -1, 0.25] }, batch: 4 });
    expect(args).toEqual(['--model=m', '--tokens=t', '--directions=d', '--res=7x5', '--range=-0.5:1,-1:0.25', '--batch=4']);
    expect(() => torchGridArgs({ model: 'm', tokens: 't', directions: 'd' })).toThrow(/exactly one of res and pointsFile/);
  });

  it('restores the non-finite numbers the scripts write as strings', () => {
    expect(jsonNumber(1.5)).toBe(1.5);
    expect(jsonNumber('NaN')).toBeNaN();
    expect(jsonNumber('Infinity')).toBe(Infinity);
    expect(jsonNumber('-Infinity')).toBe(-Infinity);
    expect(() => jsonNumber('nan')).toThrow(/expected a number/);
  });
});
