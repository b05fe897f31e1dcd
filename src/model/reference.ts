/**
 * The plain TypeScript reference of the model (SPEC section 2): the oracle
 * that every WGSL kernel is tested against. Arithmetic is float64 (JS
 * numbers) so that finite differences of it are meaningful. Each op is a
 * function of plain arrays; `forward` strings them together like nanoGPT's
 * GPT.forward.
 */
import { type GPTConfig } from './config.ts';
import { type ParamLayout, outputWeightName } from './params.ts';

export type Vec = Float64Array;
type Params = ArrayLike<number>;

export const LN_EPS = 1e-5;

/** Error function to ~1e-15: Taylor series near 0, continued fraction for erfc beyond. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz)
  const tiny = 1e-300;
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = ax + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function geluExact(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

export function gelu(x: number, activation: GPTConfig['activation']): number {
  return activation === 'gelu' ? geluExact(x) : geluTanh(x);
}

/**
 * LayerNorm over rows of length C: (x - mean) / sqrt(var + eps) * w + b with
 * the biased variance. Returns the output and each row's mean and 1/std.
 */
export function layerNorm(
  x: Vec, rows: number, C: number, w: Params, wOff: number, b: Params | null, bOff: number,
): { out: Vec; mean: Vec; rstd: Vec } {
  const out = new Float64Array(rows * C);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[r * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) {
      const d = x[r * C + c]! - m;
      v += d * d;
    }
    v /= C;
    const s = 1 / Math.sqrt(v + LN_EPS);
    mean[r] = m;
    rstd[r] = s;
    for (let c = 0; c < C; c++) {
      out[r * C + c] = (x[r * C + c]! - m) * s * w[wOff + c]! + (b ? b[bOff + c]! : 0);
    }
  }
  return { out, mean, rstd };
}

/** y[r][o] = sum_k x[r][k] * W[o][k] + bias[o], W in nn.Linear layout [out, in]. */
export function linear(
  x: Vec, rows: number, inDim: number, outDim: number, W: Params, wOff: number, bias: Params | null, bOff: number,
): Vec {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = bias ? bias[bOff + o]! : 0;
      const wr = wOff + o * inDim;
      for (let k = 0; k < inDim; k++) s += x[r * inDim + k]! * W[wr + k]!;
      y[r * outDim + o] = s;
    }
  }
  return y;
}

/**
 * Causal multi-head self-attention on qkv rows [B*T][3C] (q, k, v
 * concatenated). Returns the concatenated heads [B*T][C] and the attention
 * probabilities [B][nh][T][T] (zero above the diagonal).
 */
export function causalAttention(qkv: Vec, B: number, T: number, C: number, nHead: number): { y: Vec; att: Vec } {
  const hs = C / nHead;
  const scale = 1 / Math.sqrt(hs);
  const y = new Float64Array(B * T * C);
  const att = new Float64Array(B * nHead * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < T; t++) {
        const qRow = (b * T + t) * 3 * C + h * hs;
        const aRow = ((b * nHead + h) * T + t) * T;
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          const kRow = (b * T + s) * 3 * C + C + h * hs;
          let dot = 0;
          for (let i = 0; i < hs; i++) dot += qkv[qRow + i]! * qkv[kRow + i]!;
          att[aRow + s] = dot * scale;
          max = Math.max(max, dot * scale);
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) {
          const e = Math.exp(att[aRow + s]! - max);
          att[aRow + s] = e;
          sum += e;
        }
        for (let s = 0; s <= t; s++) att[aRow + s]! /= sum;
        const yRow = (b * T + t) * C + h * hs;
        for (let s = 0; s <= t; s++) {
          const vRow = (b * T + s) * 3 * C + 2 * C + h * hs;
          const p = att[aRow + s]!;
          for (let i = 0; i < hs; i++) y[yRow + i]! += p * qkv[vRow + i]!;
        }
      }
    }
  }
  return { y, att };
}

/**
 * Cross-entropy of each row of logits [rows][V] against its target, with
 * log-sum-exp taken after subtracting the row maximum.
 */
export function crossEntropy(logits: Vec, rows: number, V: number, targets: ArrayLike<number>): Vec {
  const losses = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[r * V + v]! - max);
    losses[r] = Math.log(sum) + max - logits[r * V + targets[r]!]!;
  }
  return losses;
}

/** Everything the forward pass computed, kept for the backward pass. */
export interface ForwardCache {
  B: number;
  T: number;
  /** Residual stream entering each block, and after the last block: n_layer + 1 entries [B*T][C]. */
  x: Vec[];
  /** Residual stream between attention and MLP of each block. */
  xMid: Vec[];
  ln1: Array<ReturnType<typeof layerNorm>>;
  qkv: Vec[];
  att: Vec[];
  attY: Vec[];
  ln2: Array<ReturnType<typeof layerNorm>>;
  /** MLP pre-activation [B*T][4C] and activation. */
  fcPre: Vec[];
  fcAct: Vec[];
  lnf: ReturnType<typeof layerNorm>;
  logits: Vec;
}

export interface ForwardResult {
  /** Mean cross-entropy over all B*T positions. */
  loss: number;
  /** Per-position cross-entropy [B*T]. */
  losses: Vec;
  logits: Vec;
  cache: ForwardCache;
}

/**
 * The GPT forward pass and mean next-token cross-entropy of SPEC section 2.
 * `idx` and `targets` are [B][T] row-major token ids.
 */
export function forward(
  layout: ParamLayout, params: Params, idx: ArrayLike<number>, targets: ArrayLike<number>, B: number, T: number,
): ForwardResult {
  const cfg = layout.config;
  const C = cfg.n_embd;
  const V = cfg.vocab_size;
  const N = B * T;
  const off = (name: string): number => layout.byName.get(name)!.offset;
  const biasOff = (name: string): number => (cfg.bias ? off(name) : 0);
  const biasOf = cfg.bias ? params : null;
  if (T > cfg.block_size) throw new Error(`sequence length ${T} exceeds block_size ${cfg.block_size}`);

  let x = new Float64Array(N * C);
  const wte = off('transformer.wte.weight');
  const wpe = off('transformer.wpe.weight');
  for (let n = 0; n < N; n++) {
    const tok = idx[n]!;
    const pos = n % T;
    for (let c = 0; c < C; c++) x[n * C + c] = params[wte + tok * C + c]! + params[wpe + pos * C + c]!;
  }

  const cache: ForwardCache = {
    B, T, x: [], xMid: [], ln1: [], qkv: [], att: [], attY: [], ln2: [], fcPre: [], fcAct: [],
    lnf: undefined as unknown as ForwardCache['lnf'], logits: new Float64Array(0),
  };
  for (let i = 0; i < cfg.n_layer; i++) {
    const p = `transformer.h.${i}.`;
    cache.x.push(x);
    const ln1 = layerNorm(x, N, C, params, off(`${p}ln_1.weight`), biasOf, biasOff(`${p}ln_1.bias`));
    const qkv = linear(ln1.out, N, C, 3 * C, params, off(`${p}attn.c_attn.weight`), biasOf, biasOff(`${p}attn.c_attn.bias`));
    const { y, att } = causalAttention(qkv, B, T, C, cfg.n_head);
    const proj = linear(y, N, C, C, params, off(`${p}attn.c_proj.weight`), biasOf, biasOff(`${p}attn.c_proj.bias`));
    const xMid = new Float64Array(N * C);
    for (let j = 0; j < N * C; j++) xMid[j] = x[j]! + proj[j]!;
    const ln2 = layerNorm(xMid, N, C, params, off(`${p}ln_2.weight`), biasOf, biasOff(`${p}ln_2.bias`));
    const fcPre = linear(ln2.out, N, C, 4 * C, params, off(`${p}mlp.c_fc.weight`), biasOf, biasOff(`${p}mlp.c_fc.bias`));
    const fcAct = fcPre.map((v) => gelu(v, cfg.activation));
    const mlp = linear(fcAct, N, 4 * C, C, params, off(`${p}mlp.c_proj.weight`), biasOf, biasOff(`${p}mlp.c_proj.bias`));
    const xOut = new Float64Array(N * C);
    for (let j = 0; j < N * C; j++) xOut[j] = xMid[j]! + mlp[j]!;
    cache.ln1.push(ln1);
    cache.qkv.push(qkv);
    cache.att.push(att);
    cache.attY.push(y);
    cache.xMid.push(xMid);
    cache.ln2.push(ln2);
    cache.fcPre.push(fcPre);
    cache.fcAct.push(fcAct);
    x = xOut;
  }
  cache.x.push(x);
  const lnf = layerNorm(x, N, C, params, off('transformer.ln_f.weight'), biasOf, biasOff('transformer.ln_f.bias'));
  const logits = linear(lnf.out, N, C, V, params, off(outputWeightName(cfg)), null, 0);
  cache.lnf = lnf;
  cache.logits = logits;
  const losses = crossEntropy(logits, N, V, targets);
  let sum = 0;
  for (let n = 0; n < N; n++) sum += losses[n]!;
  return { loss: sum / N, losses, logits, cache };
}
