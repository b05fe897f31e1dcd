/**
 * The plain TypeScript reference of the model (SPEC section 2): the oracle
 * that every WGSL kernel is tested against. Arithmetic is float64 (JS
 * numbers) so that finite differences of it are meaningful. Each op is a
 * function of plain arrays with its backward beside it, as in llm.c;
 * `forward` strings the ops together like nanoGPT's GPT.forward and
 * `backward` walks them back.
 *
 * Backward conventions (llm.c): an op's backward returns the gradient of
 * its input and *accumulates* (+=) the gradients of its parameters into
 * buffers laid out like the parameters, at the same offsets, so that the
 * whole-model backward writes every tensor's gradient into one flat buffer
 * of the canonical layout.
 */
import { type GPTConfig } from './config.ts';
import { type ParamLayout, outputWeightName } from './params.ts';

export type Vec = Float64Array;
type Params = ArrayLike<number>;

export const LN_EPS = 1e-5;

/**
 * Error function to ~1e-15: Taylor series near 0, continued fraction for
 * erfc beyond. The switch sits at 1.5 because the alternating series loses
 * digits to cancellation as |x| grows (~3e-14 near 3).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 1.5) {
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

/** d/dx of x * Phi(x): Phi(x) + x * phi(x). */
export function geluExactGrad(x: number): number {
  return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
}

/** d/dx of 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
export function geluTanhGrad(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
}

export function geluGrad(x: number, activation: GPTConfig['activation']): number {
  return activation === 'gelu' ? geluExactGrad(x) : geluTanhGrad(x);
}

/** dx = dout * gelu'(x), elementwise; `x` is the pre-activation. */
export function geluBackward(x: Vec, dout: Vec, activation: GPTConfig['activation']): Vec {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dout[i]! * geluGrad(x[i]!, activation);
  return dx;
}

/** x[b][t] = wte[idx[b][t]] + wpe[t], rows of C. */
export function embedding(idx: ArrayLike<number>, B: number, T: number, C: number, params: Params, wteOff: number, wpeOff: number): Vec {
  const x = new Float64Array(B * T * C);
  for (let n = 0; n < B * T; n++) {
    const tok = idx[n]!;
    const pos = n % T;
    for (let c = 0; c < C; c++) x[n * C + c] = params[wteOff + tok * C + c]! + params[wpeOff + pos * C + c]!;
  }
  return x;
}

/** Scatter-add of dx into the rows of wte (by token) and wpe (by position) of `grads`. */
export function embeddingBackward(
  dx: Vec, idx: ArrayLike<number>, B: number, T: number, C: number, grads: Vec, wteOff: number, wpeOff: number,
): void {
  for (let n = 0; n < B * T; n++) {
    const tok = idx[n]!;
    const pos = n % T;
    for (let c = 0; c < C; c++) {
      grads[wteOff + tok * C + c]! += dx[n * C + c]!;
      grads[wpeOff + pos * C + c]! += dx[n * C + c]!;
    }
  }
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

/**
 * Backward of `layerNorm` (llm.c layernorm_backward). With n = (x - mean) * rstd:
 * dw += dout * n, db += dout, and dx = rstd * (dn - mean(dn) - n * mean(dn * n))
 * where dn = dout * w. `dw` (at wOff) and `db` (at bOff) accumulate.
 */
export function layerNormBackward(
  dout: Vec, x: Vec, mean: Vec, rstd: Vec, rows: number, C: number,
  w: Params, wOff: number, dw: Vec, db: Vec | null, bOff: number,
): Vec {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    const m = mean[r]!;
    const s = rstd[r]!;
    let dnMean = 0;
    let dnNormMean = 0;
    for (let c = 0; c < C; c++) {
      const n = (x[r * C + c]! - m) * s;
      const dn = dout[r * C + c]! * w[wOff + c]!;
      dnMean += dn;
      dnNormMean += dn * n;
    }
    dnMean /= C;
    dnNormMean /= C;
    for (let c = 0; c < C; c++) {
      const n = (x[r * C + c]! - m) * s;
      const g = dout[r * C + c]!;
      dw[wOff + c]! += g * n;
      if (db) db[bOff + c]! += g;
      dx[r * C + c] = s * (g * w[wOff + c]! - dnMean - n * dnNormMean);
    }
  }
  return dx;
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
 * Backward of `linear`: dx = dy W, dW += dy^T x, db += column sums of dy.
 * `dW` (at wOff, layout [out, in]) and `db` (at bOff) accumulate.
 */
export function linearBackward(
  dy: Vec, x: Vec, rows: number, inDim: number, outDim: number,
  W: Params, wOff: number, dW: Vec, db: Vec | null, bOff: number,
): Vec {
  const dx = new Float64Array(rows * inDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      const g = dy[r * outDim + o]!;
      const wr = wOff + o * inDim;
      for (let k = 0; k < inDim; k++) {
        dx[r * inDim + k]! += g * W[wr + k]!;
        dW[wr + k]! += g * x[r * inDim + k]!;
      }
      if (db) db[bOff + o]! += g;
    }
  }
  return dx;
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
 * Backward of `causalAttention` given the probabilities it returned. Per
 * head, with y_t = sum_s p_ts v_s and p_t = softmax(scale * q_t . k_s):
 * dv_s += p_ts dy_t; dp_ts = dy_t . v_s; dz_ts = p_ts (dp_ts - sum_s' p_ts' dp_ts');
 * dq_t += scale * sum_s dz_ts k_s; dk_s += scale * dz_ts q_t. Returns dqkv [B*T][3C].
 */
export function causalAttentionBackward(dy: Vec, qkv: Vec, att: Vec, B: number, T: number, C: number, nHead: number): Vec {
  const hs = C / nHead;
  const scale = 1 / Math.sqrt(hs);
  const dqkv = new Float64Array(B * T * 3 * C);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < T; t++) {
        const qRow = (b * T + t) * 3 * C + h * hs;
        const aRow = ((b * nHead + h) * T + t) * T;
        const yRow = (b * T + t) * C + h * hs;
        let pdp = 0;
        for (let s = 0; s <= t; s++) {
          const vRow = (b * T + s) * 3 * C + 2 * C + h * hs;
          const p = att[aRow + s]!;
          let dot = 0;
          for (let i = 0; i < hs; i++) {
            dot += dy[yRow + i]! * qkv[vRow + i]!;
            dqkv[vRow + i]! += p * dy[yRow + i]!;
          }
          dp[s] = dot;
          pdp += p * dot;
        }
        for (let s = 0; s <= t; s++) {
          const kRow = (b * T + s) * 3 * C + C + h * hs;
          const dz = att[aRow + s]! * (dp[s]! - pdp) * scale;
          for (let i = 0; i < hs; i++) {
            dqkv[qRow + i]! += dz * qkv[kRow + i]!;
            dqkv[kRow + i]! += dz * qkv[qRow + i]!;
          }
        }
      }
    }
  }
  return dqkv;
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

/**
 * The coefficient of each position's cross-entropy in the loss: 1/rows for
 * the plain mean, w_r / sum(w) for per-position weights (a modadd mask).
 */
export function lossCoefficients(rows: number, weights?: ArrayLike<number> | null): Vec {
  const coef = new Float64Array(rows);
  if (!weights) return coef.fill(1 / rows);
  if (weights.length !== rows) throw new Error(`loss weights have ${weights.length} entries, expected ${rows} (one per position)`);
  let total = 0;
  for (let r = 0; r < rows; r++) total += weights[r]!;
  if (!(total > 0)) throw new Error(`loss weights must have a positive sum, got ${total}`);
  for (let r = 0; r < rows; r++) coef[r] = weights[r]! / total;
  return coef;
}

/**
 * Gradient of the loss sum_r c_r ce_r with respect to the logits, c from
 * `lossCoefficients`: dlogits[r] = c_r * (softmax(logits[r]) - onehot(target_r)).
 */
export function crossEntropyBackward(
  logits: Vec, rows: number, V: number, targets: ArrayLike<number>, weights?: ArrayLike<number> | null,
): Vec {
  const coef = lossCoefficients(rows, weights);
  const dlogits = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[r * V + v]! - max);
    for (let v = 0; v < V; v++) dlogits[r * V + v] = (coef[r]! * Math.exp(logits[r * V + v]! - max)) / sum;
    dlogits[r * V + targets[r]!]! -= coef[r]!;
  }
  return dlogits;
}

/** Everything the forward pass computed, kept for the backward pass. */
export interface ForwardCache {
  B: number;
  T: number;
  /** The token ids [B*T], for the embedding's backward. */
  idx: Int32Array;
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
  /** Mean cross-entropy over all B*T positions, or sum(w * ce) / sum(w) with weights. */
  loss: number;
  /** Per-position cross-entropy [B*T]. */
  losses: Vec;
  logits: Vec;
  cache: ForwardCache;
}

/**
 * The GPT forward pass and mean next-token cross-entropy of SPEC section 2.
 * `idx` and `targets` are [B][T] row-major token ids; optional `weights`
 * [B][T] weigh each position's loss (loss = sum(w * ce) / sum(w)).
 */
export function forward(
  layout: ParamLayout, params: Params, idx: ArrayLike<number>, targets: ArrayLike<number>, B: number, T: number,
  weights?: ArrayLike<number> | null,
): ForwardResult {
  const cfg = layout.config;
  const C = cfg.n_embd;
  const V = cfg.vocab_size;
  const N = B * T;
  const off = (name: string): number => layout.byName.get(name)!.offset;
  const biasOff = (name: string): number => (cfg.bias ? off(name) : 0);
  const biasOf = cfg.bias ? params : null;
  if (T > cfg.block_size) throw new Error(`sequence length ${T} exceeds block_size ${cfg.block_size}`);

  let x = embedding(idx, B, T, C, params, off('transformer.wte.weight'), off('transformer.wpe.weight'));

  const cache: ForwardCache = {
    B, T, idx: Int32Array.from(idx), x: [], xMid: [], ln1: [], qkv: [], att: [], attY: [], ln2: [], fcPre: [], fcAct: [],
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
  let loss = 0;
  if (weights) {
    const coef = lossCoefficients(N, weights);
    for (let n = 0; n < N; n++) loss += coef[n]! * losses[n]!;
  } else {
    for (let n = 0; n < N; n++) loss += losses[n]!;
    loss /= N;
  }
  return { loss, losses, logits, cache };
}

/**
 * Gradient of `result.loss` with respect to every parameter, as a flat
 * buffer of the canonical layout (`layout.totalFloats`; padding stays zero).
 * `targets` and `weights` must be those given to `forward`. With tied
 * embeddings wte receives both the embedding's and the output projection's
 * gradient.
 */
export function backward(
  layout: ParamLayout, params: Params, result: ForwardResult, targets: ArrayLike<number>, weights?: ArrayLike<number> | null,
): Float64Array {
  const cfg = layout.config;
  const C = cfg.n_embd;
  const V = cfg.vocab_size;
  const { cache } = result;
  const { B, T } = cache;
  const N = B * T;
  const off = (name: string): number => layout.byName.get(name)!.offset;
  const biasOff = (name: string): number => (cfg.bias ? off(name) : 0);
  const grads = new Float64Array(layout.totalFloats);
  const biasGrads = cfg.bias ? grads : null;
  const add = (a: Vec, b: Vec): Vec => a.map((v, j) => v + b[j]!);

  const dlogits = crossEntropyBackward(cache.logits, N, V, targets, weights);
  const dlnf = linearBackward(dlogits, cache.lnf.out, N, C, V, params, off(outputWeightName(cfg)), grads, null, 0);
  let dx = layerNormBackward(
    dlnf, cache.x[cfg.n_layer]!, cache.lnf.mean, cache.lnf.rstd, N, C,
    params, off('transformer.ln_f.weight'), grads, biasGrads, biasOff('transformer.ln_f.bias'),
  );
  for (let i = cfg.n_layer - 1; i >= 0; i--) {
    const p = `transformer.h.${i}.`;
    // x_out = x_mid + mlp(ln_2(x_mid)): the residual carries dx to x_mid unchanged.
    const dfcAct = linearBackward(
      dx, cache.fcAct[i]!, N, 4 * C, C, params, off(`${p}mlp.c_proj.weight`), grads, biasGrads, biasOff(`${p}mlp.c_proj.bias`),
    );
    const dfcPre = geluBackward(cache.fcPre[i]!, dfcAct, cfg.activation);
    const dln2 = linearBackward(
      dfcPre, cache.ln2[i]!.out, N, C, 4 * C, params, off(`${p}mlp.c_fc.weight`), grads, biasGrads, biasOff(`${p}mlp.c_fc.bias`),
    );
    const ln2 = cache.ln2[i]!;
    const dxMid = add(dx, layerNormBackward(
      dln2, cache.xMid[i]!, ln2.mean, ln2.rstd, N, C, params, off(`${p}ln_2.weight`), grads, biasGrads, biasOff(`${p}ln_2.bias`),
    ));
    // x_mid = x + attn(ln_1(x)).
    const dattY = linearBackward(
      dxMid, cache.attY[i]!, N, C, C, params, off(`${p}attn.c_proj.weight`), grads, biasGrads, biasOff(`${p}attn.c_proj.bias`),
    );
    const dqkv = causalAttentionBackward(dattY, cache.qkv[i]!, cache.att[i]!, B, T, C, cfg.n_head);
    const dln1 = linearBackward(
      dqkv, cache.ln1[i]!.out, N, C, 3 * C, params, off(`${p}attn.c_attn.weight`), grads, biasGrads, biasOff(`${p}attn.c_attn.bias`),
    );
    const ln1 = cache.ln1[i]!;
    dx = add(dxMid, layerNormBackward(
      dln1, cache.x[i]!, ln1.mean, ln1.rstd, N, C, params, off(`${p}ln_1.weight`), grads, biasGrads, biasOff(`${p}ln_1.bias`),
    ));
  }
  embeddingBackward(dx, cache.idx, B, T, C, grads, off('transformer.wte.weight'), off('transformer.wpe.weight'));
  return grads;
}
