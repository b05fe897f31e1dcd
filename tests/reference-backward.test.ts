/**
 * Every backward of the reference against central finite differences of its
 * forward, in float64, on odd sizes. The differences use the 4-point stencil
 * (8(f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h, whose O(h^4) truncation
 * error at h = 1e-3 is far below the 1e-6 relative tolerance.
 */
import { describe, expect, it } from 'vitest';
import { type GPTConfig, parseConfig } from '../src/model/config.ts';
import { type ParamLayout, paramLayout } from '../src/model/params.ts';
import {
  backward, causalAttention, causalAttentionBackward, crossEntropy, crossEntropyBackward, embedding, embeddingBackward,
  forward, gelu, geluBackward, layerNorm, layerNormBackward, linear, linearBackward,
} from '../src/model/reference.ts';
import { Rng } from '../src/util/rng.ts';

const H = 1e-3;
const REL_TOL = 1e-6;
/** Rounding floor of the differences: ~eps * |f| / h for the O(1) objectives here. */
const ABS_TOL = 1e-10;

/** d f / d x[i] by the 4-point central stencil; restores x[i]. */
function numericGrad(f: () => number, x: Float64Array, i: number): number {
  const x0 = x[i]!;
  const at = (d: number): number => {
    x[i] = x0 + d;
    return f();
  };
  const g = (8 * (at(H) - at(-H)) - (at(2 * H) - at(-2 * H))) / (12 * H);
  x[i] = x0;
  return g;
}

function expectGradClose(analytic: number, numeric: number, what: string): void {
  const err = Math.abs(analytic - numeric);
  const bound = REL_TOL * Math.max(Math.abs(analytic), Math.abs(numeric)) + ABS_TOL;
  expect(err, `${what}: analytic ${analytic} vs numeric ${numeric}`).toBeLessThanOrEqual(bound);
}

/** Checks every entry of `analytic` against the differences of f in x. */
function checkAll(f: () => number, x: Float64Array, analytic: ArrayLike<number>, what: string): void {
  expect(analytic.length).toBe(x.length);
  for (let i = 0; i < x.length; i++) expectGradClose(analytic[i]!, numericGrad(f, x, i), `${what}[${i}]`);
}

function randn(rng: Rng, n: number, std = 1, mean = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.normal();
  return out;
}

/** sum(g * y): a scalar whose gradient with respect to y is g, to pull a backward through. */
function dot(g: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += g[i]! * y[i]!;
  return s;
}

describe('op backward vs finite differences', () => {
  const rng = new Rng(2024);

  it('LayerNorm: dx, dw, db', () => {
    const rows = 3;
    const C = 7;
    const x = randn(rng, rows * C, 2, 0.5);
    const w = randn(rng, C, 0.3, 1);
    const b = randn(rng, C, 0.3);
    const g = randn(rng, rows * C);
    const f = (): number => dot(g, layerNorm(x, rows, C, w, 0, b, 0).out);
    const { mean, rstd } = layerNorm(x, rows, C, w, 0, b, 0);
    const dw = new Float64Array(C);
    const db = new Float64Array(C);
    const dx = layerNormBackward(g, x, mean, rstd, rows, C, w, 0, dw, db, 0);
    checkAll(f, x, dx, 'dx');
    checkAll(f, w, dw, 'dw');
    checkAll(f, b, db, 'db');
  });

  it('Linear: dx, dW, db, and no bias', () => {
    const rows = 3;
    const inDim = 5;
    const outDim = 7;
    const x = randn(rng, rows * inDim);
    const W = randn(rng, outDim * inDim);
    const bias = randn(rng, outDim);
    const g = randn(rng, rows * outDim);
    for (const withBias of [true, false]) {
      const f = (): number => dot(g, linear(x, rows, inDim, outDim, W, 0, withBias ? bias : null, 0));
      const dW = new Float64Array(W.length);
      const db = new Float64Array(outDim);
      const dx = linearBackward(g, x, rows, inDim, outDim, W, 0, dW, withBias ? db : null, 0);
      checkAll(f, x, dx, 'dx');
      checkAll(f, W, dW, 'dW');
      if (withBias) checkAll(f, bias, db, 'db');
      else expect(Array.from(db)).toEqual(new Array(outDim).fill(0));
    }
  });

  it('Linear and LayerNorm accumulate into their gradient buffers at the parameters\' offsets', () => {
    const x = randn(rng, 2 * 3);
    const params = randn(rng, 3 + 2 * 3 + 2);
    const g = randn(rng, 2 * 2);
    const once = new Float64Array(params.length);
    linearBackward(g, x, 2, 3, 2, params, 3, once, once, 9);
    const twice = new Float64Array(params.length);
    linearBackward(g, x, 2, 3, 2, params, 3, twice, twice, 9);
    linearBackward(g, x, 2, 3, 2, params, 3, twice, twice, 9);
    for (let i = 0; i < params.length; i++) expect(twice[i]).toBeCloseTo(2 * once[i]!, 14);
    expect(Array.from(once.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(once[9]).toBeCloseTo(g[0]! + g[2]!, 14);
  });

  it('causal attention: dqkv on 3 heads of size 2 over 5 tokens', () => {
    const B = 2;
    const T = 5;
    const C = 6;
    const nHead = 3;
    const qkv = randn(rng, B * T * 3 * C);
    const g = randn(rng, B * T * C);
    const f = (): number => dot(g, causalAttention(qkv, B, T, C, nHead).y);
    const { att } = causalAttention(qkv, B, T, C, nHead);
    checkAll(f, qkv, causalAttentionBackward(g, qkv, att, B, T, C, nHead), 'dqkv');
  });

  it('GELU, exact and tanh, from -5 to 5', () => {
    const x = Float64Array.from({ length: 41 }, (_, i) => -5 + i * 0.25 + 0.01);
    const g = randn(rng, x.length);
    for (const act of ['gelu', 'gelu_tanh'] as const) {
      const f = (): number => dot(g, x.map((v) => gelu(v, act)));
      checkAll(f, x, geluBackward(x, g, act), act);
    }
  });

  it('cross-entropy: dlogits of the mean and of a weighted mean', () => {
    const rows = 4;
    const V = 7;
    const logits = randn(rng, rows * V, 2);
    const targets = [3, 0, 6, 3];
    const weights = [0, 1, 0.5, 2];
    for (const w of [null, weights]) {
      const f = (): number => {
        const ce = crossEntropy(logits, rows, V, targets);
        const wsum = w ? w.reduce((a, b) => a + b, 0) : rows;
        return ce.reduce((acc, c, r) => acc + (w ? w[r]! : 1) * c, 0) / wsum;
      };
      checkAll(f, logits, crossEntropyBackward(logits, rows, V, targets, w), w ? 'weighted' : 'mean');
    }
  });

  it('cross-entropy backward of uniform logits is (1/V - onehot) / rows', () => {
    const d = crossEntropyBackward(new Float64Array(8), 2, 4, [2, 0]);
    expect(Array.from(d)).toEqual([1 / 8, 1 / 8, -3 / 8, 1 / 8, -3 / 8, 1 / 8, 1 / 8, 1 / 8]);
  });

  it('embedding: scatter-add to the token and position rows', () => {
    const B = 2;
    const T = 3;
    const C = 5;
    const V = 4;
    const idx = [1, 3, 1, 0, 1, 2];
    // wte [V, C] at 0, wpe [T, C] right after.
    const params = randn(rng, (V + T) * C);
    const g = randn(rng, B * T * C);
    const f = (): number => dot(g, embedding(idx, B, T, C, params, 0, V * C));
    const grads = new Float64Array(params.length);
    embeddingBackward(g, idx, B, T, C, grads, 0, V * C);
    checkAll(f, params, grads, 'dwte|dwpe');
  });
});

/** Parameters with every real element random (LayerNorm weights around 1), padding zero. */
function randomParams(layout: ParamLayout, seed: number): Float64Array {
  const rng = new Rng(seed);
  const flat = new Float64Array(layout.totalFloats);
  for (const t of layout.tensors) {
    const isLnWeight = t.role === 'vector' && t.name.endsWith('.weight');
    for (let i = 0; i < t.size; i++) flat[t.offset + i] = (isLnWeight ? 1 : 0) + 0.3 * rng.normal();
  }
  return flat;
}

interface ModelCase {
  name: string;
  cfg: Partial<GPTConfig>;
  weighted?: boolean;
}

describe('whole-model backward vs finite differences', () => {
  const B = 2;
  const T = 5;
  const base = { vocab_size: 37, block_size: 7, n_layer: 2, n_head: 3, n_embd: 12 };
  const cases: ModelCase[] = [
    { name: 'bias, tied, gelu', cfg: {} },
    { name: 'bias=false', cfg: { bias: false } },
    { name: 'untied', cfg: { tie_embeddings: false } },
    { name: 'gelu_tanh', cfg: { activation: 'gelu_tanh' } },
    { name: 'per-position loss weights (a modadd-like mask)', cfg: {}, weighted: true },
  ];

  for (const c of cases) {
    it(`${c.name}: ~200 elements spread over every tensor, and zero padding`, () => {
      const cfg = parseConfig({ ...base, ...c.cfg });
      const layout = paramLayout(cfg);
      const rng = new Rng(17);
      const params = randomParams(layout, 5);
      const idx = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
      const targets = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
      const weights = c.weighted ? [0, 0, 0, 0, 1, 0, 0, 0, 0.5, 2] : null;
      const result = forward(layout, params, idx, targets, B, T, weights);
      const grads = backward(layout, params, result, targets, weights);
      expect(grads.length).toBe(layout.totalFloats);
      const f = (): number => forward(layout, params, idx, targets, B, T, weights).loss;
      const perTensor = Math.ceil(200 / layout.tensors.length);
      let checked = 0;
      const inTensor = new Uint8Array(layout.totalFloats);
      for (const t of layout.tensors) {
        inTensor.fill(1, t.offset, t.offset + t.size);
        for (let k = 0; k < Math.min(perTensor, t.size); k++) {
          const i = t.offset + rng.int(t.size);
          expectGradClose(grads[i]!, numericGrad(f, params, i), `${t.name}[${i - t.offset}]`);
          checked++;
        }
      }
      expect(checked).toBeGreaterThanOrEqual(200);
      for (let i = 0; i < layout.totalFloats; i++) if (!inTensor[i]) expect(grads[i]).toBe(0);
      // Positions past T get no gradient.
      const wpe = layout.byName.get('transformer.wpe.weight')!;
      for (let i = T * cfg.n_embd; i < wpe.size; i++) expect(grads[wpe.offset + i]).toBe(0);
    });
  }

  it('tied wte receives the sum of the embedding and output-projection gradients of the untied model', () => {
    const tiedLayout = paramLayout(parseConfig(base));
    const untiedLayout = paramLayout(parseConfig({ ...base, tie_embeddings: false }));
    const tied = randomParams(tiedLayout, 9);
    const untied = new Float64Array(untiedLayout.totalFloats);
    for (const t of tiedLayout.tensors) untied.set(tied.subarray(t.offset, t.offset + t.size), untiedLayout.byName.get(t.name)!.offset);
    const wte = tiedLayout.byName.get('transformer.wte.weight')!;
    untied.set(tied.subarray(wte.offset, wte.offset + wte.size), untiedLayout.byName.get('lm_head.weight')!.offset);
    const idx = [1, 2, 3, 4, 5, 30, 31, 32, 33, 34];
    const targets = [2, 3, 4, 5, 6, 31, 32, 33, 34, 35];
    const gTied = backward(tiedLayout, tied, forward(tiedLayout, tied, idx, targets, B, T), targets);
    const gUntied = backward(untiedLayout, untied, forward(untiedLayout, untied, idx, targets, B, T), targets);
    const emb = untiedLayout.byName.get('transformer.wte.weight')!.offset;
    const head = untiedLayout.byName.get('lm_head.weight')!.offset;
    for (let i = 0; i < wte.size; i++) {
      expect(gTied[wte.offset + i]).toBeCloseTo(gUntied[emb + i]! + gUntied[head + i]!, 13);
    }
    // Token 20 never appears as an input: its row only gets the output projection's gradient, which is not zero.
    expect(gUntied[emb + 20 * base.n_embd]).toBe(0);
    expect(gTied[wte.offset + 20 * base.n_embd]).not.toBe(0);
  });
});
