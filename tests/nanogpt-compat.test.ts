/**
 * nanoGPT compatibility (SPEC section 3): state_dicts saved from PyTorch's
 * nanoGPT as safetensors (tests/fixtures/make_nanogpt.py) load unchanged,
 * and the TypeScript reference forward gives torch's float64 loss on them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, loadTokens } from '../src/node/files.ts';
import { forward } from '../src/model/reference.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');

interface Expected { loss_float64: number; loss_float32: number; losses_float64: number[] }

describe.each([
  ['nanogpt', 'tied embeddings, bias, exact GELU, causal-mask buffers in the state_dict'],
  ['nanogpt-untied', 'untied lm_head, no bias, tanh GELU'],
])('nanoGPT fixture %s (%s)', (name) => {
  const dir = join(FIXTURES, name);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;

  it('loads through loadModel/loadTokens and the reference loss equals torch float64 to 1e-9', () => {
    const model = loadModel(dir);
    const batch = loadTokens(join(dir, 'tokens.safetensors'), model.config);
    expect([batch.B, batch.T]).toEqual([4, 13]);
    const { loss, losses } = forward(model.layout, model.params, batch.idx, batch.targets, batch.B, batch.T);
    expect(Math.abs(loss - expected.loss_float64) / expected.loss_float64).toBeLessThan(1e-9);
    for (let n = 0; n < losses.length; n++) {
      expect(Math.abs(losses[n]! - expected.losses_float64[n]!)).toBeLessThan(1e-9 * expected.losses_float64[n]! + 1e-12);
    }
    // torch's float32 loss differs from float64 by rounding only.
    expect(Math.abs(loss - expected.loss_float32) / expected.loss_float64).toBeLessThan(1e-5);
  });

  it('loads the same weights from the .safetensors file with config.json beside it', () => {
    const fromDir = loadModel(dir);
    const fromFile = loadModel(join(dir, 'model.safetensors'));
    expect(fromFile.source).toBe(join(dir, 'model.safetensors'));
    expect(fromFile.params).toEqual(fromDir.params);
  });
});
