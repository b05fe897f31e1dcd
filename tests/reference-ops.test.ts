import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import {
  LN_EPS, causalAttention, crossEntropy, embedding, erf, forward, gelu, geluExact, geluExactGrad, geluTanh, geluTanhGrad,
  layerNorm, linear,
} from '../src/model/reference.ts';

const f64 = (xs: number[]): Float64Array => Float64Array.from(xs);

function expectAllClose(actual: ArrayLike<number>, expected: number[], digits = 12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `entry ${i}`).toBeCloseTo(expected[i]!, digits);
}

describe('erf and GELU', () => {
  it('erf matches tabulated values on both sides of the series / continued-fraction switch at 1.5', () => {
    // Values of erf from standard tables (Abramowitz & Stegun 7.1, to double precision).
    const table: Array<[number, number]> = [
      [0.5, 0.5204998778130465], [1, 0.8427007929497149], [1.45, 0.9596950256374592], [1.55, 0.9716227332620125],
      [2, 0.9953222650189527],
      [2.9, 0.9999589021219005], [3.1, 0.9999883513426328], [3.5, 0.9999992569016276], [5, 0.9999999999984626],
    ];
    for (const [x, v] of table) {
      expect(erf(x)).toBeCloseTo(v, 15);
      expect(erf(-x)).toBeCloseTo(-v, 15);
    }
    expect(erf(0)).toBe(0);
  });

  it('GELU has its known values, exact (erf) and tanh-approximated', () => {
    // gelu(1) = Phi(1); gelu(-1) = -(1 - Phi(1)).
    expect(geluExact(1)).toBeCloseTo(0.8413447460685429, 15);
    expect(geluExact(-1)).toBeCloseTo(-0.15865525393145707, 15);
    // 0.5 * (1 + tanh(sqrt(2/pi) * 1.044715))
    expect(geluTanh(1)).toBeCloseTo(0.8411919906082768, 15);
    expect(geluTanh(-1)).toBeCloseTo(-0.15880800939172324, 15);
    expect(geluExact(0)).toBe(0);
    expect(geluTanh(0)).toBe(0);
    expect(geluExact(10)).toBeCloseTo(10, 15);
    expect(geluTanh(-10)).toBeCloseTo(0, 15);
    expect(gelu(1, 'gelu')).toBe(geluExact(1));
    expect(gelu(1, 'gelu_tanh')).toBe(geluTanh(1));
  });

  it('GELU derivatives have their known values', () => {
    // d/dx x Phi(x) at 0 is Phi(0) = 1/2; at 1 it is Phi(1) + phi(1) = 0.8413447460685429 + 0.24197072451914337.
    expect(geluExactGrad(0)).toBeCloseTo(0.5, 15);
    expect(geluExactGrad(1)).toBeCloseTo(1.0833154705876864, 14);
    expect(geluExactGrad(-1)).toBeCloseTo(1 - 1.0833154705876864, 14);
    expect(geluTanhGrad(0)).toBeCloseTo(0.5, 15);
  });
});

describe('LayerNorm', () => {
  it('normalises a row with the biased variance and eps 1e-5, then scales and shifts', () => {
    // x = [1, 2, 3, 4]: mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    const s = 1 / Math.sqrt(1.25 + 1e-5);
    const w = [1, 2, 1, 0.5];
    const b = [0, 0, 1, -1];
    // Second row [5, 5, 5, 5]: zero variance, normalised to 0, so the output is the bias.
    const { out, mean, rstd } = layerNorm(f64([1, 2, 3, 4, 5, 5, 5, 5]), 2, 4, w, 0, b, 0);
    expect(LN_EPS).toBe(1e-5);
    expectAllClose(mean, [2.5, 5]);
    expectAllClose(rstd, [s, 1 / Math.sqrt(1e-5)], 9);
    expectAllClose(out, [-1.5 * s, -0.5 * s * 2, 0.5 * s + 1, 1.5 * s * 0.5 - 1, 0, 0, 1, -1]);
  });

  it('reads weights and biases at their offsets, and no bias when null', () => {
    const params = [9, 9, 1, 1, 9, 7, 7];
    const { out } = layerNorm(f64([0, 2]), 1, 2, params, 2, null, 0);
    // mean 1, var 1: [-1, 1] / sqrt(1 + 1e-5)
    expectAllClose(out, [-1 / Math.sqrt(1 + 1e-5), 1 / Math.sqrt(1 + 1e-5)]);
  });
});

describe('Linear', () => {
  it('computes x W^T + b with W in nn.Linear layout [out, in] on a 2x3 input', () => {
    const x = f64([1, 2, 3, -1, 0, 2]);
    // W [2, 3] at offset 1 of the parameters, bias at offset 7.
    const params = [0, 1, 0, -1, 2, 1, 0.5, 10, -10];
    const y = linear(x, 2, 3, 2, params, 1, params, 7);
    // row 0: [1*1 + 2*0 + 3*(-1) + 10, 1*2 + 2*1 + 3*0.5 - 10] = [8, -4.5]
    // row 1: [-1*1 + 0 + 2*(-1) + 10, -1*2 + 0 + 2*0.5 - 10] = [7, -11]
    expectAllClose(y, [8, -4.5, 7, -11]);
    expectAllClose(linear(x, 2, 3, 2, params, 1, null, 0), [-2, 5.5, -3, -1]);
  });
});

describe('causal attention', () => {
  it('masks future tokens and softmaxes the past on a 3-token example', () => {
    // One head of size 1 (scale 1): q_t = 1, k = [0, ln 2, ln 3], so the scores of token t
    // are ln(1), ln(2), ln(3) over s <= t: probabilities [1], [1/3, 2/3], [1/6, 2/6, 3/6].
    const qkv = f64([1, 0, 1, 1, Math.log(2), 10, 1, Math.log(3), 100]);
    const { y, att } = causalAttention(qkv, 1, 3, 1, 1);
    expectAllClose(att, [1, 0, 0, 1 / 3, 2 / 3, 0, 1 / 6, 2 / 6, 3 / 6]);
    // y_t = sum_s p_ts v_s with v = [1, 10, 100]: [1, 1/3 + 20/3, (1 + 20 + 300) / 6].
    expectAllClose(y, [1, 7, 53.5]);
  });

  it('scales scores by 1/sqrt(head size) and keeps heads apart', () => {
    // C = 8, two heads of size 4 (scale 1/2). Head 0: q_1 = [1,1,1,1], k_0 = 0, k_1 = [ln 2 / 2] * 4,
    // so token 1 scores 0 and (4 * ln 2 / 2) / 2 = ln 2 against tokens 0 and 1.
    const C = 8;
    const qkv = new Float64Array(2 * 3 * C);
    const row = (t: number, part: number, h: number, vals: number[]): void => {
      qkv.set(vals, t * 3 * C + part * C + h * 4);
    };
    const half = Math.log(2) / 2;
    row(0, 0, 0, [1, 1, 1, 1]);
    row(1, 0, 0, [1, 1, 1, 1]);
    row(1, 1, 0, [half, half, half, half]); // probabilities [1/3, 2/3]
    row(0, 2, 0, [3, 0, 0, 0]);
    row(1, 2, 0, [6, 0, 0, 0]);
    // Head 1: all scores zero -> uniform over the past; values 30 and 60 in its first lane.
    row(0, 2, 1, [30, 0, 0, 0]);
    row(1, 2, 1, [60, 0, 0, 0]);
    const { y, att } = causalAttention(qkv, 1, 2, C, 2);
    expectAllClose(att, [1, 0, 1 / 3, 2 / 3, 1, 0, 0.5, 0.5]);
    expectAllClose(y, [3, 0, 0, 0, 30, 0, 0, 0, 1 + 4, 0, 0, 0, 45, 0, 0, 0]);
  });
});

describe('cross-entropy', () => {
  it('is ln V for uniform logits, whatever the target', () => {
    const V = 37;
    const losses = crossEntropy(new Float64Array(2 * V).fill(0.25), 2, V, [0, 36]);
    expectAllClose(losses, [Math.log(37), Math.log(37)], 14);
  });

  it('is -ln softmax of the target, stable for huge logits', () => {
    // logits [0, ln 3]: softmax [1/4, 3/4]; target 1 -> ln(4/3), target 0 -> ln 4.
    expectAllClose(crossEntropy(f64([0, Math.log(3), 0, Math.log(3)]), 2, 2, [1, 0]), [Math.log(4 / 3), Math.log(4)], 14);
    // ln(2) + 1000 - 1000 keeps only the digits that survive next to 1000 (~1e-13).
    expectAllClose(crossEntropy(f64([1000, 1000, -1000]), 1, 3, [0]), [Math.log(2)], 12);
  });
});

describe('embedding and the whole forward', () => {
  it('adds the token row of wte and the position row of wpe', () => {
    // wte [3, 2] at offset 0, wpe [2, 2] at offset 6.
    const params = [0, 1, 10, 11, 20, 21, 0.5, 0.25, 100, 200];
    const x = embedding([2, 0, 1, 1], 2, 2, 2, params, 0, 6);
    expectAllClose(x, [20.5, 21.25, 100, 201, 10.5, 11.25, 110, 211]);
  });

  it('weighs positions: all-ones weights give the mean, a mask gives the masked positions\' mean', () => {
    const cfg = parseConfig({ vocab_size: 37, block_size: 5, n_layer: 1, n_head: 3, n_embd: 12 });
    const layout = paramLayout(cfg);
    const params = initParams(layout, 4);
    const idx = [1, 5, 9, 2, 36, 0, 0, 7, 8, 3];
    const targets = [5, 9, 2, 36, 0, 7, 7, 8, 3, 1];
    const plain = forward(layout, params, idx, targets, 2, 5);
    const mean = plain.losses.reduce((a, b) => a + b, 0) / 10;
    expect(plain.loss).toBeCloseTo(mean, 14);
    expect(forward(layout, params, idx, targets, 2, 5, new Float32Array(10).fill(1)).loss).toBeCloseTo(mean, 14);
    const mask = [0, 0, 0, 0, 1, 0, 0, 0, 0, 3];
    const masked = forward(layout, params, idx, targets, 2, 5, mask);
    expect(masked.loss).toBeCloseTo((plain.losses[4]! + 3 * plain.losses[9]!) / 4, 14);
    expect(Array.from(masked.losses)).toEqual(Array.from(plain.losses));
    expect(() => forward(layout, params, idx, targets, 2, 5, new Float32Array(10))).toThrow(/positive sum/);
    expect(() => forward(layout, params, idx, targets, 2, 5, [1, 1])).toThrow(/2 entries, expected 10/);
  });
});
