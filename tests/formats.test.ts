/**
 * The file formats of SPEC section 3 on top of safetensors: round trips of
 * every format, and a clear InputError (file, tensor, expected shape) for
 * every way a file can fail to match what it must hold.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/model/config.ts';
import { type ParamLayout, initParams, paramLayout } from '../src/model/params.ts';
import { type SafeTensor, type SafetensorsFile, parseSafetensors } from '../src/io/safetensors.ts';
import {
  type GridFile, directionsFromSafetensors, directionsToSafetensors, gridFromSafetensors, gridToSafetensors,
  paramsFromSafetensors, paramsToSafetensors, tokensFromSafetensors, tokensToSafetensors,
} from '../src/io/formats.ts';
import { Rng } from '../src/util/rng.ts';
import { expectInputError } from './helpers/errors.ts';

const SRC = 'some/file.safetensors';

function layoutOf(overrides: Record<string, unknown> = {}): ParamLayout {
  return paramLayout(parseConfig({ vocab_size: 37, block_size: 16, n_layer: 2, n_head: 3, n_embd: 48, ...overrides }));
}

/** Seeded non-trivial weights: every float of every tensor random, padding left zero. */
function randomParams(layout: ParamLayout, seed: number): Float32Array {
  const flat = initParams(layout, seed);
  const rng = new Rng(seed + 1);
  for (const t of layout.tensors) rng.fillNormal(flat, 0.5, t.offset, t.size);
  return flat;
}

function paddingIndices(layout: ParamLayout): number[] {
  const used = new Uint8Array(layout.totalFloats);
  for (const t of layout.tensors) used.fill(1, t.offset, t.offset + t.size);
  return [...used.keys()].filter((i) => !used[i]);
}

/** A state dict as the parser would return it: name -> float32 tensor. */
function stateDict(layout: ParamLayout, flat: Float32Array): SafetensorsFile {
  const tensors = new Map<string, SafeTensor>();
  for (const t of layout.tensors) {
    tensors.set(t.name, { name: t.name, dtype: 'F32', shape: [...t.shape], data: flat.slice(t.offset, t.offset + t.size) });
  }
  return { tensors, metadata: {} };
}

function put(file: SafetensorsFile, t: SafeTensor): SafetensorsFile {
  file.tensors.set(t.name, t);
  return file;
}

describe('model weights', () => {
  it('are written under nanoGPT state_dict names with nn.Linear [out, in] shapes', () => {
    const layout = paramLayout(parseConfig({ vocab_size: 37, block_size: 16, n_layer: 1, n_head: 3, n_embd: 48 }));
    const file = parseSafetensors(paramsToSafetensors(layout, randomParams(layout, 1)), SRC);
    const shapes = Object.fromEntries([...file.tensors].map(([n, t]) => [n, t.shape]));
    expect(shapes).toEqual({
      'transformer.wte.weight': [37, 48],
      'transformer.wpe.weight': [16, 48],
      'transformer.h.0.ln_1.weight': [48],
      'transformer.h.0.ln_1.bias': [48],
      'transformer.h.0.attn.c_attn.weight': [144, 48],
      'transformer.h.0.attn.c_attn.bias': [144],
      'transformer.h.0.attn.c_proj.weight': [48, 48],
      'transformer.h.0.attn.c_proj.bias': [48],
      'transformer.h.0.ln_2.weight': [48],
      'transformer.h.0.ln_2.bias': [48],
      'transformer.h.0.mlp.c_fc.weight': [192, 48],
      'transformer.h.0.mlp.c_fc.bias': [192],
      'transformer.h.0.mlp.c_proj.weight': [48, 192],
      'transformer.h.0.mlp.c_proj.bias': [48],
      'transformer.ln_f.weight': [48],
      'transformer.ln_f.bias': [48],
    });
  });

  it.each([
    ['tied, bias', {}],
    ['untied, no bias', { tie_embeddings: false, bias: false }],
    ['n_embd 18, 1 layer, vocab 5', { n_embd: 18, n_layer: 1, vocab_size: 5 }],
  ])('round-trip exactly (%s), with padding floats zero', (_what, overrides) => {
    const layout = layoutOf(overrides);
    const flat = randomParams(layout, 3);
    const bytes = paramsToSafetensors(layout, flat, { step: '12' });
    const file = parseSafetensors(bytes, SRC);
    expect(file.metadata).toEqual({ step: '12' });
    const back = paramsFromSafetensors(layout, file, SRC);
    expect(back).toEqual(flat);
    for (const i of paddingIndices(layout)) expect(back[i]).toBe(0);
  });

  it('has padding zero even when the tensors are read in another order', () => {
    const layout = layoutOf({ n_embd: 18, n_head: 3 });
    expect(paddingIndices(layout).length).toBeGreaterThan(0);
    const flat = randomParams(layout, 4);
    const reversed: SafetensorsFile = { tensors: new Map([...stateDict(layout, flat).tensors].reverse()), metadata: {} };
    const back = paramsFromSafetensors(layout, reversed, SRC);
    expect(back).toEqual(flat);
  });

  it('converts F16 weights to f32', () => {
    const layout = layoutOf();
    const flat = randomParams(layout, 5);
    const file = stateDict(layout, flat);
    const wpe = file.tensors.get('transformer.wpe.weight')!;
    file.tensors.set(wpe.name, { ...wpe, dtype: 'F16' });
    expect(paramsFromSafetensors(layout, file, SRC)).toEqual(flat);
  });

  it('accepts a tied lm_head.weight equal to wte', () => {
    const layout = layoutOf();
    const flat = randomParams(layout, 6);
    const file = stateDict(layout, flat);
    const wte = file.tensors.get('transformer.wte.weight')!;
    put(file, { ...wte, name: 'lm_head.weight', data: wte.data.slice() });
    expect(paramsFromSafetensors(layout, file, SRC)).toEqual(flat);
  });

  it('rejects a tied lm_head.weight that differs from wte', () => {
    const layout = layoutOf();
    const file = stateDict(layout, randomParams(layout, 7));
    const wte = file.tensors.get('transformer.wte.weight')!;
    const head = wte.data.slice();
    head[100]! += 1;
    put(file, { ...wte, name: 'lm_head.weight', data: head });
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, '"lm_head.weight" differs from "transformer.wte.weight" at element 100', 'tie_embeddings');
  });

  it('loads a state_dict of a torch.compile-d model (names prefixed with _orig_mod.)', () => {
    const layout = layoutOf();
    const flat = randomParams(layout, 8);
    const tensors = new Map([...stateDict(layout, flat).tensors].map(([n, t]) => [`_orig_mod.${n}`, { ...t, name: `_orig_mod.${n}` }]));
    expect(paramsFromSafetensors(layout, { tensors, metadata: {} }, SRC)).toEqual(flat);
  });

  it('accepts nanoGPT causal-mask buffers attn.bias, and rejects one that is not the mask', () => {
    const layout = layoutOf();
    const flat = randomParams(layout, 9);
    const mask = new Float32Array(16 * 16).map((_, k) => (k % 16 <= Math.floor(k / 16) ? 1 : 0));
    const file = put(stateDict(layout, flat), { name: 'transformer.h.1.attn.bias', dtype: 'F32', shape: [1, 1, 16, 16], data: mask });
    expect(paramsFromSafetensors(layout, file, SRC)).toEqual(flat);
    const upper = mask.slice();
    upper[16 * 2 + 3] = 1;
    put(file, { name: 'transformer.h.1.attn.bias', dtype: 'F32', shape: [1, 1, 16, 16], data: upper });
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, '"transformer.h.1.attn.bias"', 'causal mask', '[0, 0, 2, 3]');
  });

  it('rejects a missing tensor, naming it and its expected shape', () => {
    const layout = layoutOf();
    const file = stateDict(layout, randomParams(layout, 10));
    file.tensors.delete('transformer.h.1.mlp.c_fc.weight');
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, 'missing tensor "transformer.h.1.mlp.c_fc.weight"', '[192, 48]');
  });

  it('rejects an untied model without lm_head.weight, saying the config unties it', () => {
    const layout = layoutOf({ tie_embeddings: false });
    const file = stateDict(layout, randomParams(layout, 11));
    file.tensors.delete('lm_head.weight');
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, 'missing tensor "lm_head.weight"', '[37, 48]', 'tie_embeddings false');
  });

  it('rejects biases in a file for a bias-free config (extra tensor)', () => {
    const withBias = layoutOf();
    const noBias = layoutOf({ bias: false });
    const file = stateDict(withBias, randomParams(withBias, 12));
    expectInputError(() => paramsFromSafetensors(noBias, file, SRC), SRC, 'unexpected tensor "transformer.h.0.ln_1.bias"', 'bias false');
  });

  it.each([
    ['an unknown name', 'transformer.h.0.attn.q_proj.weight', [48, 48]],
    ['a layer past n_layer', 'transformer.h.2.ln_1.weight', [48]],
    ['a mask buffer past n_layer', 'transformer.h.2.attn.bias', [1, 1, 16, 16]],
  ])('rejects an extra tensor: %s', (_what, name, shape) => {
    const layout = layoutOf();
    const file = put(stateDict(layout, randomParams(layout, 13)), {
      name, dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    });
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, `unexpected tensor "${name}"`, 'n_layer 2');
  });

  it.each([
    ['transposed', 'transformer.h.0.attn.c_attn.weight', [48, 144], '[144, 48]'],
    ['another vocabulary', 'transformer.wte.weight', [50, 48], '[37, 48]'],
    ['flattened', 'transformer.h.1.attn.c_proj.weight', [2304], '[48, 48]'],
  ])('rejects a wrong shape (%s), naming the tensor and the expected shape', (_what, name, shape, expected) => {
    const layout = layoutOf();
    const file = stateDict(layout, randomParams(layout, 14));
    const t = file.tensors.get(name)!;
    put(file, { ...t, shape });
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, `"${name}" has shape [${shape.join(', ')}], expected ${expected}`);
  });

  it('rejects integer weights', () => {
    const layout = layoutOf();
    const file = stateDict(layout, randomParams(layout, 15));
    put(file, { name: 'transformer.ln_f.bias', dtype: 'I32', shape: [48], data: new Int32Array(48) });
    expectInputError(() => paramsFromSafetensors(layout, file, SRC), SRC, '"transformer.ln_f.bias" has dtype I32', 'float');
  });
});

/** `tokens` I64 [B, T1] built by hand (the writer only writes I32). */
function i64Tokens(values: number[], B: number, T1: number): SafetensorsFile {
  return { tensors: new Map([['tokens', { name: 'tokens', dtype: 'I64', shape: [B, T1], data: new Int32Array(values) }]]), metadata: {} };
}

describe('tokens', () => {
  it('round-trip with a mask; inputs are tokens[:, :-1] and targets tokens[:, 1:]', () => {
    const B = 2;
    const T1 = 5;
    const tokens = new Int32Array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]);
    const mask = new Float32Array([0, 0, 0, 1, 0, 0, 0.5, 1]);
    const file = parseSafetensors(tokensToSafetensors(tokens, B, T1, mask, { dataset: 'digits' }), SRC);
    expect(file.tensors.get('tokens')!.dtype).toBe('I32');
    expect(file.metadata).toEqual({ dataset: 'digits' });
    const batch = tokensFromSafetensors(file, SRC, 10, 4);
    expect(batch.B).toBe(2);
    expect(batch.T).toBe(4);
    expect([...batch.idx]).toEqual([3, 1, 4, 1, 9, 2, 6, 5]);
    expect([...batch.targets]).toEqual([1, 4, 1, 5, 2, 6, 5, 3]);
    expect(batch.mask).toEqual(mask);
  });

  it('read I64 ids, with no mask', () => {
    const batch = tokensFromSafetensors(i64Tokens([0, 36, 7, 36, 0, 1], 2, 3), SRC, 37, 16);
    expect([...batch.idx]).toEqual([0, 36, 36, 0]);
    expect([...batch.targets]).toEqual([36, 7, 0, 1]);
    expect(batch.mask).toBeNull();
  });

  it('read an I32 mask as floats', () => {
    const file = i64Tokens([1, 2, 3], 1, 3);
    put(file, { name: 'mask', dtype: 'I32', shape: [1, 2], data: new Int32Array([0, 1]) });
    expect(tokensFromSafetensors(file, SRC).mask).toEqual(new Float32Array([0, 1]));
  });

  it('reject an id past the vocabulary, naming the file, the value, the position and the vocab', () => {
    expectInputError(() => tokensFromSafetensors(i64Tokens([1, 2, 3, 4, 37, 5], 2, 3), SRC, 37), SRC, 'token id 37', 'tokens[1, 1]', 'vocab_size 37');
  });

  it('reject a negative id even without a vocabulary', () => {
    expectInputError(() => tokensFromSafetensors(i64Tokens([1, -1, 3], 1, 3), SRC), SRC, 'token id -1', 'tokens[0, 1]');
  });

  it('accept T = block_size and reject T+1 > block_size+1', () => {
    const ids = Array.from({ length: 17 }, (_, i) => i % 37);
    expect(tokensFromSafetensors(i64Tokens(ids, 1, 17), SRC, 37, 16).T).toBe(16);
    expectInputError(() => tokensFromSafetensors(i64Tokens([...ids, 1], 1, 18), SRC, 37, 16), SRC, 'T = 17 exceeds block_size 16');
  });

  it.each([
    ['a float tokens tensor', { name: 'tokens', dtype: 'F32', shape: [1, 3], data: new Float32Array(3) }, 'dtype F32, expected I32 or I64'],
    ['a 1-D tokens tensor', { name: 'tokens', dtype: 'I32', shape: [3], data: new Int32Array(3) }, 'expected [B, T+1]'],
    ['a single column', { name: 'tokens', dtype: 'I32', shape: [3, 1], data: new Int32Array(3) }, 'T+1 >= 2'],
  ] as Array<[string, SafeTensor, string]>)('reject %s', (_what, t, message) => {
    expectInputError(() => tokensFromSafetensors({ tensors: new Map([['tokens', t]]), metadata: {} }, SRC), SRC, '"tokens"', message);
  });

  it('reject a file without tokens, and unknown tensors', () => {
    expectInputError(() => tokensFromSafetensors({ tensors: new Map(), metadata: {} }, SRC), SRC, 'missing tensor "tokens"');
    const file = put(i64Tokens([1, 2], 1, 2), { name: 'labels', dtype: 'I32', shape: [1], data: new Int32Array(1) });
    expectInputError(() => tokensFromSafetensors(file, SRC), SRC, 'unexpected tensor "labels"');
  });

  it.each([
    ['shape', { name: 'mask', dtype: 'F32', shape: [2, 2], data: new Float32Array(4) }, 'expected [1, 2]'],
    ['negative weight', { name: 'mask', dtype: 'F32', shape: [1, 2], data: new Float32Array([1, -0.5]) }, 'weight -0.5 at element 1'],
    ['NaN weight', { name: 'mask', dtype: 'F32', shape: [1, 2], data: new Float32Array([NaN, 1]) }, 'weight NaN'],
    ['all-zero', { name: 'mask', dtype: 'F32', shape: [1, 2], data: new Float32Array(2) }, 'all zero'],
    ['I64 dtype', { name: 'mask', dtype: 'I64', shape: [1, 2], data: new Int32Array(2) }, 'expected F32 or I32'],
  ] as Array<[string, SafeTensor, string]>)('reject a mask with a bad %s', (_what, m, message) => {
    expectInputError(() => tokensFromSafetensors(put(i64Tokens([1, 2, 3], 1, 3), m), SRC), SRC, '"mask"', message);
  });
});

describe('directions', () => {
  const layout = layoutOf({ n_embd: 18, tie_embeddings: false });
  const dirs = { d1: randomParams(layout, 20), d2: randomParams(layout, 21), metadata: { kind: 'filter', seed: '4', centre: 'run/ckpt-9.safetensors' } };

  it('round-trip as d1.<name> / d2.<name> with the model shapes and metadata', () => {
    const file = parseSafetensors(directionsToSafetensors(layout, dirs), SRC);
    expect(file.tensors.size).toBe(2 * layout.tensors.length);
    expect(file.tensors.get('d2.transformer.h.1.mlp.c_fc.weight')!.shape).toEqual([72, 18]);
    expect(file.tensors.get('d1.lm_head.weight')!.shape).toEqual([37, 18]);
    expect(directionsFromSafetensors(layout, file, SRC)).toEqual(dirs);
  });

  it('reject a missing d2 tensor, naming it and its shape', () => {
    const file = parseSafetensors(directionsToSafetensors(layout, dirs), SRC);
    file.tensors.delete('d2.transformer.wpe.weight');
    expectInputError(() => directionsFromSafetensors(layout, file, SRC), SRC, 'missing tensor "d2.transformer.wpe.weight"', '[16, 18]');
  });

  it('reject shapes of another model, and tensors the model does not have', () => {
    const file = parseSafetensors(directionsToSafetensors(layout, dirs), SRC);
    const bigger = layoutOf({ n_embd: 24, tie_embeddings: false });
    expectInputError(() => directionsFromSafetensors(bigger, file, SRC), SRC, '"d1.transformer.wte.weight" has shape [37, 18], expected [37, 24]');
    const tied = layoutOf({ n_embd: 18 });
    expectInputError(() => directionsFromSafetensors(tied, file, SRC), SRC, 'unexpected tensor "d1.lm_head.weight"');
  });
});

describe('grid', () => {
  const nx = 7;
  const ny = 5;
  const linspace = (a: number, b: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
  const still = (): GridFile => {
    const loss = Float32Array.from({ length: nx * ny }, (_, k) => 2 + k / 10);
    loss[3] = NaN;
    loss[11] = Infinity;
    loss[12] = -Infinity;
    return { nx, ny, frames: 1, animated: false, alpha: linspace(-0.5, 1, nx), beta: linspace(-1, 0.25, ny), loss, metadata: { metric: 'ce', model: 'm' } };
  };

  it('round-trips a non-square still grid as loss [ny, nx], keeping NaN and Inf', () => {
    const grid = still();
    const file = parseSafetensors(gridToSafetensors(grid), SRC);
    expect(file.tensors.get('loss')!.shape).toEqual([5, 7]);
    const back = gridFromSafetensors(file, SRC);
    expect(back).toEqual(grid);
    expect(Number.isNaN(back.loss[3])).toBe(true);
    expect(back.loss[11]).toBe(Infinity);
    expect(back.loss[12]).toBe(-Infinity);
  });

  it('round-trips an animated grid [frames, ny, nx] with the whole path', () => {
    const frames = 3;
    const P = 4;
    const grid: GridFile = {
      ...still(), frames, animated: true,
      loss: Float32Array.from({ length: frames * nx * ny }, (_, k) => Math.sin(k)),
      path: new Float32Array([0, 0, 0.1, -0.2, 0.3, -0.1, 0.9, 0.2]),
      pathResidual: new Float32Array([0, 0.01, 0.02, 0]),
      pathLoss: new Float32Array([3.6, 2.1, 1.5, 1.2]),
      pathPlaneLoss: new Float32Array([3.6, 2.3, 1.9, 1.2]),
      pathStep: new Int32Array([0, 100, 200, 300]),
    };
    const file = parseSafetensors(gridToSafetensors(grid), SRC);
    expect(file.tensors.get('loss')!.shape).toEqual([frames, ny, nx]);
    expect(file.tensors.get('path')!.shape).toEqual([P, 2]);
    expect(file.tensors.get('path_step')!.dtype).toBe('I32');
    expect(gridFromSafetensors(file, SRC)).toEqual(grid);
  });

  it('round-trips a 1x1 grid and an animated grid of one frame', () => {
    const one: GridFile = { nx: 1, ny: 1, frames: 1, animated: false, alpha: new Float32Array([0]), beta: new Float32Array([0]), loss: new Float32Array([1]), metadata: {} };
    expect(gridFromSafetensors(parseSafetensors(gridToSafetensors(one), SRC), SRC)).toEqual(one);
    const anim = { ...one, animated: true };
    expect(gridFromSafetensors(parseSafetensors(gridToSafetensors(anim), SRC), SRC)).toEqual(anim);
  });

  const fileOf = (grid: GridFile): SafetensorsFile => parseSafetensors(gridToSafetensors(grid), SRC);

  it.each([
    ['alpha of the wrong length', 'alpha', { name: 'alpha', dtype: 'F32', shape: [5], data: linspace(0, 1, 5) }, 'expected [7]'],
    ['beta of the wrong length', 'beta', { name: 'beta', dtype: 'F32', shape: [7], data: linspace(0, 1, 7) }, 'expected [5]'],
    ['a 1-D loss', 'loss', { name: 'loss', dtype: 'F32', shape: [35], data: new Float32Array(35) }, 'expected [ny, nx] or [frames, ny, nx]'],
    ['an empty loss', 'loss', { name: 'loss', dtype: 'F32', shape: [0, 7], data: new Float32Array(0) }, 'every size >= 1'],
    ['an integer loss', 'loss', { name: 'loss', dtype: 'I32', shape: [5, 7], data: new Int32Array(35) }, 'dtype I32'],
    ['a non-monotonic alpha', 'alpha', { name: 'alpha', dtype: 'F32', shape: [7], data: new Float32Array([0, 1, 2, 2, 3, 4, 5]) }, 'strictly monotonic'],
    ['a NaN in beta', 'beta', { name: 'beta', dtype: 'F32', shape: [5], data: new Float32Array([0, 1, NaN, 3, 4]) }, 'non-finite value NaN at element 2'],
    ['a path of shape [4, 3]', 'path', { name: 'path', dtype: 'F32', shape: [4, 3], data: new Float32Array(12) }, 'expected [checkpoints, 2]'],
    ['path_residual without path', 'path_residual', { name: 'path_residual', dtype: 'F32', shape: [4], data: new Float32Array(4) }, 'needs the tensor "path"'],
    ['an unknown tensor', 'heights', { name: 'heights', dtype: 'F32', shape: [1], data: new Float32Array(1) }, 'unexpected tensor "heights"'],
  ] as Array<[string, string, SafeTensor, string]>)('rejects %s', (_what, name, t, message) => {
    expectInputError(() => gridFromSafetensors(put(fileOf(still()), t), SRC), SRC, `"${name}"`, message);
  });

  it('rejects path vectors whose length differs from the path, and a float path_step', () => {
    const grid: GridFile = { ...still(), path: new Float32Array(6), pathLoss: new Float32Array(3) };
    const file = fileOf(grid);
    put(file, { name: 'path_loss', dtype: 'F32', shape: [4], data: new Float32Array(4) });
    expectInputError(() => gridFromSafetensors(file, SRC), SRC, '"path_loss" has shape [4], expected [3]');
    const steps = put(fileOf(grid), { name: 'path_step', dtype: 'F32', shape: [3], data: new Float32Array(3) });
    expectInputError(() => gridFromSafetensors(steps, SRC), SRC, '"path_step" has dtype F32');
  });

  it('rejects a missing loss, alpha or beta', () => {
    for (const name of ['loss', 'alpha', 'beta']) {
      const file = fileOf(still());
      file.tensors.delete(name);
      expectInputError(() => gridFromSafetensors(file, SRC), SRC, `missing tensor "${name}"`);
    }
  });
});
