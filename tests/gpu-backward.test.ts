/**
 * The WGSL backward kernels against the TypeScript reference backward
 * (src/model/reference.ts), one op at a time on the same f32 inputs, then
 * the whole model's gradient, on odd sizes (n_embd 48, 3 heads, vocab 37,
 * T 13). Tolerance: 1e-4 of the largest reference value of each tensor.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { type GpuContext } from '../src/gpu/context.ts';
import { type KernelDef, KernelCache } from '../src/gpu/kernel.ts';
import { readFloats, storageBuffer, uniformBuffer } from '../src/gpu/buffers.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import {
  backward, causalAttention, causalAttentionBackward, crossEntropyBackward, embeddingBackward, forward, geluBackward,
  layerNorm, layerNormBackward, linearBackward,
} from '../src/model/reference.ts';
import { BackwardPlan, defaultTargetWorkgroups, gpuGradient, rowSlices } from '../src/model/gpu-backward.ts';
import { ForwardPlan } from '../src/model/gpu-forward.ts';
import { type GemmStrategy } from '../shaders/linear.ts';
import { DEFAULT_TILE, columnSumKernel, linearGradKernel, linearGradWorkgroups, sumSlicesKernel } from '../shaders/linear.ts';
import { layerNormBackwardKernel, layerNormParamGradKernel } from '../shaders/layernorm.ts';
import { attentionBackwardKeyValueKernel, attentionBackwardQueryKernel } from '../shaders/attention.ts';
import { embeddingBackwardPositionKernel, embeddingBackwardTokenKernel } from '../shaders/embedding.ts';
import { crossEntropyBackwardKernel } from '../shaders/loss.ts';
import { Rng } from '../src/util/rng.ts';

const B = 2;
const T = 13;
const N = B * T;
const C = 48;
const H = 3;
const V = 37;

function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

function randomTokens(n: number, vocab: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(vocab));
}

const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);

/** max |gpu - ref| / max |ref| over a range of elements. */
function relErr(gpu: ArrayLike<number>, ref: ArrayLike<number>, from = 0, to = ref.length): number {
  let err = 0;
  let scale = 0;
  for (let i = from; i < to; i++) {
    err = Math.max(err, Math.abs(gpu[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  expect(scale).toBeGreaterThan(0);
  return err / scale;
}

interface Harness {
  ctx: GpuContext;
  /** Runs one dispatch of `def` with the uniform words and buffers (arrays are uploaded); returns the named outputs. */
  run(def: KernelDef, u: number[] | Uint32Array, inputs: Record<string, ArrayBufferView>, workgroups: [number, number, number], outputs: string[]): Promise<Record<string, Float32Array>>;
}

async function harness(): Promise<Harness> {
  const ctx = await nodeGpu();
  const kernels = new KernelCache(ctx);
  return {
    ctx,
    async run(def, u, inputs, workgroups, outputs) {
      const kernel = await kernels.get(def);
      const bufs: Record<string, GPUBuffer> = { u: uniformBuffer(ctx, 'u', u instanceof Uint32Array ? u : new Uint32Array(u)) };
      for (const [name, data] of Object.entries(inputs)) bufs[name] = storageBuffer(ctx, name, data);
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(kernel.pipeline);
      pass.setBindGroup(0, kernel.bind(bufs));
      pass.dispatchWorkgroups(...workgroups);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
      const out: Record<string, Float32Array> = {};
      for (const name of outputs) out[name] = await readFloats(ctx, bufs[name]!);
      for (const b of Object.values(bufs)) b.destroy();
      return out;
    },
  };
}

describe('backward kernels vs the reference, one op at a time', () => {
  it('cross-entropy backward with per-position weights (one weight zero)', async () => {
    const h = await harness();
    const logits = randomF32(N * V, 1, 3);
    const targets = randomTokens(N, V, 2);
    const mask = Float32Array.from({ length: N }, (_, n) => (n === 5 ? 0 : 1 + (n % 3)));
    const total = mask.reduce((a, b) => a + b, 0);
    const words = new Uint32Array([N, V, 0, 0]);
    new Float32Array(words.buffer)[2] = 1 / total;
    const { dlogits } = await h.run(crossEntropyBackwardKernel(), words,
      { logits, targets: new Uint32Array(targets), mask, dlogits: new Float32Array(N * V) }, [1, 1, 1], ['dlogits']);
    const ref = crossEntropyBackward(f64(logits), N, V, targets, mask);
    expect(relErr(dlogits!, ref)).toBeLessThan(1e-4);
    expect(dlogits!.subarray(5 * V, 6 * V).every((v) => v === 0)).toBe(true);
  });

  // [in, out]: scalar loads where a dimension is not a multiple of 4, vec4 loads where it is.
  for (const [inDim, outDim] of [[C, V], [30, 4 * C], [37, 30]] as const) {
    it(`linear ${inDim} -> ${outDim}: dX = dY W, dW = dY^T X (added to what is there), db = column sums`, async () => {
      const h = await harness();
      const dy = randomF32(N * outDim, 3);
      const x = randomF32(N * inDim, 4);
      const wOff = 12;
      const theta = randomF32(wOff + outDim * inDim, 5, 0.2);
      const prior = randomF32(outDim * inDim + 8, 6);
      const dW = new Float64Array(wOff + outDim * inDim);
      const db = new Float64Array(outDim);
      const refDx = linearBackward(f64(dy), f64(x), N, inDim, outDim, f64(theta), wOff, dW, db, 0);
      const tile = DEFAULT_TILE;
      const vec4A = outDim % 4 === 0;
      const vec4B = inDim % 4 === 0;
      const dx = await h.run(linearGradKernel({ tile, transA: false, vec4A: false, vec4B, accumulate: false, actGrad: null }), [N, inDim, outDim, 0, wOff, 0, outDim],
        { a: dy, b: theta, out: new Float32Array(N * inDim) }, linearGradWorkgroups(tile, N, inDim), ['out']);
      expect(relErr(dx.out!, refDx)).toBeLessThan(1e-4);
      // dW lands at offset 8 of `out`, added to the prior values there.
      const size = outDim * inDim;
      const dwKernel = (accumulate: boolean): KernelDef => linearGradKernel({ tile, transA: true, vec4A, vec4B, accumulate, actGrad: null });
      const dw = await h.run(dwKernel(true), [outDim, inDim, N, 0, 0, 8, N], { a: dy, b: x, out: prior }, linearGradWorkgroups(tile, outDim, inDim), ['out']);
      const refW = Float64Array.from({ length: size }, (_, i) => prior[8 + i]! + dW[wOff + i]!);
      expect(relErr(dw.out!.subarray(8, 8 + size), refW)).toBeLessThan(1e-4);
      expect(Array.from(dw.out!.subarray(0, 8))).toEqual(Array.from(prior.subarray(0, 8)));
      // In 3 slices of 9, 9 and 8 rows, then added up onto the prior values.
      const parts = await h.run(dwKernel(false), [outDim, inDim, N, 0, 0, 0, 9], { a: dy, b: x, out: new Float32Array(3 * size) },
        linearGradWorkgroups(tile, outDim, inDim, 3), ['out']);
      const summed = await h.run(sumSlicesKernel(true), [size, 3, size, 0, 8], { part: parts.out!, out: prior }, [Math.ceil(size / 64), 1, 1], ['out']);
      expect(relErr(summed.out!.subarray(8, 8 + size), refW)).toBeLessThan(1e-4);
      const sums = await h.run(columnSumKernel(), [N, outDim, 4, N], { a: dy, out: new Float32Array(outDim + 4) }, [Math.ceil(outDim / 64), 1, 1], ['out']);
      expect(relErr(sums.out!.subarray(4), db)).toBeLessThan(1e-4);
      const sliced = await h.run(columnSumKernel(), [N, outDim, 0, 7], { a: dy, out: new Float32Array(4 * outDim) }, [Math.ceil(outDim / 64), 4, 1], ['out']);
      const bsum = await h.run(sumSlicesKernel(false), [outDim, 4, outDim, 0, 0], { part: sliced.out!, out: new Float32Array(outDim) }, [Math.ceil(outDim / 64), 1, 1], ['out']);
      expect(relErr(bsum.out!, db)).toBeLessThan(1e-4);
    });
  }

  for (const act of ['gelu', 'gelu_tanh'] as const) {
    it(`linear dX with the ${act} backward fused: dX * ${act}'(pre)`, async () => {
      const h = await harness();
      const inDim = 4 * C;
      const outDim = C;
      const dy = randomF32(N * outDim, 7);
      const theta = randomF32(outDim * inDim, 8, 0.1);
      const pre = randomF32(N * inDim, 9, 2);
      const dx = linearBackward(f64(dy), new Float64Array(N * inDim), N, inDim, outDim, f64(theta), 0, new Float64Array(theta.length), null, 0);
      const ref = geluBackward(f64(pre), dx, act);
      const tile = { TM: 2, TN: 4, WX: 8, WY: 4 };
      const out = await h.run(linearGradKernel({ tile, transA: false, vec4A: false, vec4B: true, accumulate: false, actGrad: act }), [N, inDim, outDim, 0, 0, 0, outDim],
        { a: dy, b: theta, pre, out: new Float32Array(N * inDim) }, linearGradWorkgroups(tile, N, inDim), ['out']);
      expect(relErr(out.out!, ref)).toBeLessThan(1e-4);
    });
  }

  it('layernorm backward: dx added to the residual gradient, dw and db from the saved mean and rstd', async () => {
    const h = await harness();
    const x = randomF32(N * C, 10, 2);
    const theta = Float32Array.from(randomF32(2 * C, 11, 0.3), (v, i) => (i < C ? 1 + v : v));
    const dout = randomF32(N * C, 12);
    const resid = randomF32(N * C, 13);
    const ln = layerNorm(f64(x), N, C, f64(theta), 0, f64(theta), C);
    const stats = new Float32Array(2 * N);
    for (let r = 0; r < N; r++) {
      stats[2 * r] = ln.mean[r]!;
      stats[2 * r + 1] = ln.rstd[r]!;
    }
    const grads = new Float64Array(2 * C);
    const refDx = layerNormBackward(f64(dout), f64(x), ln.mean, ln.rstd, N, C, f64(theta), 0, grads, grads, C);
    const { dx } = await h.run(layerNormBackwardKernel(true), [N, C, 0], { theta, dout, x, stats, dx: resid.slice() }, [1, 1, 1], ['dx']);
    expect(relErr(dx!, refDx.map((v, i) => v + resid[i]!))).toBeLessThan(1e-4);
    const { grad } = await h.run(layerNormParamGradKernel(true), [N, C, 4, 4 + C, N, 0], { dout, x, stats, grad: new Float32Array(4 + 2 * C) }, [1, 1, 1], ['grad']);
    expect(relErr(grad!.subarray(4, 4 + C), grads.subarray(0, C))).toBeLessThan(1e-4);
    expect(relErr(grad!.subarray(4 + C), grads.subarray(C))).toBeLessThan(1e-4);
    // In 2 slices of 13 rows: [dw | db] per slice, then each added up.
    const parts = await h.run(layerNormParamGradKernel(true), [N, C, 0, C, 13, 2 * C], { dout, x, stats, grad: new Float32Array(4 * C) }, [1, 2, 1], ['grad']);
    const dw = await h.run(sumSlicesKernel(false), [C, 2, 2 * C, 0, 0], { part: parts.grad!, out: new Float32Array(C) }, [1, 1, 1], ['out']);
    const db = await h.run(sumSlicesKernel(false), [C, 2, 2 * C, C, 0], { part: parts.grad!, out: new Float32Array(C) }, [1, 1, 1], ['out']);
    expect(relErr(dw.out!, grads.subarray(0, C))).toBeLessThan(1e-4);
    expect(relErr(db.out!, grads.subarray(C))).toBeLessThan(1e-4);
  });

  it('causal attention backward: dq, dk, dv from the saved log-sum-exp', async () => {
    const h = await harness();
    const hs = C / H;
    const qkv = randomF32(N * 3 * C, 14);
    const dy = randomF32(N * C, 15);
    const { y, att } = causalAttention(f64(qkv), B, T, C, H);
    const lse = new Float32Array(B * H * T);
    for (let b = 0; b < B; b++) {
      for (let hh = 0; hh < H; hh++) {
        for (let t = 0; t < T; t++) {
          const scores: number[] = [];
          for (let s = 0; s <= t; s++) {
            let dot = 0;
            for (let i = 0; i < hs; i++) dot += qkv[(b * T + t) * 3 * C + hh * hs + i]! * qkv[(b * T + s) * 3 * C + C + hh * hs + i]!;
            scores.push(dot / Math.sqrt(hs));
          }
          const m = Math.max(...scores);
          lse[(b * H + hh) * T + t] = m + Math.log(scores.reduce((a, sc) => a + Math.exp(sc - m), 0));
        }
      }
    }
    const ref = causalAttentionBackward(f64(dy), f64(qkv), att, B, T, C, H);
    const u = [B, T, C, H];
    const wg: [number, number, number] = [Math.ceil((B * H * T) / 64), 1, 1];
    const q = await h.run(attentionBackwardQueryKernel(hs), u,
      { qkv, lse, y: Float32Array.from(y), dy, dqkv: new Float32Array(N * 3 * C), dsum: new Float32Array(B * H * T) }, wg, ['dqkv', 'dsum']);
    const kv = await h.run(attentionBackwardKeyValueKernel(hs), u, { qkv, lse, dy, dsum: q.dsum!, dqkv: q.dqkv! }, wg, ['dqkv']);
    const part = (k: number): Float64Array => Float64Array.from({ length: N * C }, (_, e) => ref[Math.floor(e / C) * 3 * C + k * C + (e % C)]!);
    const got = (k: number): Float32Array => Float32Array.from({ length: N * C }, (_, e) => kv.dqkv![Math.floor(e / C) * 3 * C + k * C + (e % C)]!);
    for (const k of [0, 1, 2]) expect(relErr(got(k), part(k))).toBeLessThan(1e-4);
  });

  it('embedding backward: gather into wte (added to the tied head\'s gradient) and wpe (zero past T)', async () => {
    const h = await harness();
    const blockSize = 16;
    const idx = randomTokens(N, V, 16);
    const dx = randomF32(N * C, 17);
    const wteOff = 0;
    const wpeOff = V * C;
    const prior = randomF32(V * C + blockSize * C, 18);
    const ref = Float64Array.from(prior);
    for (let i = wpeOff; i < ref.length; i++) ref[i] = 0;
    embeddingBackward(f64(dx), idx, B, T, C, ref, wteOff, wpeOff);
    const start = new Uint32Array(V + 1);
    const order: number[] = [];
    for (let v = 0; v < V; v++) {
      for (let n = 0; n < N; n++) if (idx[n] === v) order.push(n);
      start[v + 1] = order.length;
    }
    const tok = await h.run(embeddingBackwardTokenKernel(true), [V, C, wteOff],
      { dx, start, order: Uint32Array.from(order), grad: prior }, [Math.ceil((V * C) / 64), 1, 1], ['grad']);
    expect(relErr(tok.grad!, ref, 0, wpeOff)).toBeLessThan(1e-4);
    const pos = await h.run(embeddingBackwardPositionKernel(), [B, T, C, blockSize, wpeOff],
      { dx, grad: randomF32(V * C + blockSize * C, 19) }, [Math.ceil((blockSize * C) / 64), 1, 1], ['grad']);
    expect(relErr(pos.grad!, ref, wpeOff, wpeOff + T * C)).toBeLessThan(1e-4);
    expect(pos.grad!.subarray(wpeOff + T * C).every((v) => v === 0)).toBe(true);
  });
});

function config(over: Partial<GPTConfig>): GPTConfig {
  return { vocab_size: V, block_size: 16, n_layer: 2, n_head: H, n_embd: C, bias: false, activation: 'gelu_tanh', tie_embeddings: false, ...over };
}

/** Initial weights scaled up and LayerNorm parameters moved off 1 and 0, so every gradient is far from trivial. */
function randomParams(cfg: GPTConfig, seed: number): Float32Array {
  const layout = paramLayout(cfg);
  const p = initParams(layout, seed);
  const rng = new Rng(seed + 1);
  for (const t of layout.tensors) {
    for (let i = t.offset; i < t.offset + t.size; i++) {
      p[i] = t.role === 'vector' ? (t.name.endsWith('.weight') ? 1 : 0) + 0.3 * rng.normal() : p[i]! * 5;
    }
  }
  return p;
}

const MODELS: Array<[string, Partial<GPTConfig>, boolean, number, GemmStrategy?]> = [
  ['untied, bias false, gelu_tanh (C48 h3 V37 T13)', {}, false, B],
  // Long trainings run the forward, dX (W read transposed, GELU's derivative fused) and dW (dY read transposed) on the unrolled GEMMs.
  ['tied, bias, exact gelu, 3 layers, forward, dX and dW on the bcast GEMM', { tie_embeddings: true, bias: true, activation: 'gelu', n_layer: 3 }, false, B, 'bcast'],
  ['untied, bias, exact gelu, forward, dX and dW on the subgroup GEMM', { bias: true, activation: 'gelu' }, false, B, 'subgroup'],
  ['C30 h5, tied, gelu_tanh, forward, dX and dW on the subgroup GEMM (scalar loads: 30, 90, 37 not multiples of 4)', { n_embd: 30, n_head: 5, block_size: 20, bias: true, activation: 'gelu_tanh', tie_embeddings: true }, false, B, 'subgroup'],
  ['C30 h5, tied, exact gelu, the forward on the tiled GEMM (GPUs\' default; scalar loads)', { n_embd: 30, n_head: 5, block_size: 20, bias: true, activation: 'gelu', tie_embeddings: true }, false, B, 'tiled'],
  ['tied, bias, exact gelu, 3 layers, a loss mask', { tie_embeddings: true, bias: true, activation: 'gelu', n_layer: 3 }, true, B],
  ['C30 h5 (in_features not a multiple of 4), T13 of block 20', { n_embd: 30, n_head: 5, block_size: 20, bias: true }, false, B],
  ['10 sequences (130 rows): the sums over rows run in slices', { bias: true, n_layer: 1 }, false, 10],
];

describe('the whole model\'s gradient vs the reference backward', () => {
  for (const [name, over, masked, batch, strategy] of MODELS) {
    it(name, async () => {
      const ctx = await nodeGpu();
      const cfg = config(over);
      const layout = paramLayout(cfg);
      const rows = batch * T;
      if (batch > B) expect(rowSlices([2, 3, 1], rows, defaultTargetWorkgroups(ctx)).slices).toBe(2);
      const params = randomParams(cfg, 21);
      const idx = randomTokens(rows, V, 22);
      const targets = randomTokens(rows, V, 23);
      const mask = masked ? Float32Array.from({ length: rows }, (_, n) => (n % T === T - 1 ? 1 : n % 4 === 0 ? 0.5 : 0)) : null;
      const ref = forward(layout, params, idx, targets, batch, T, mask);
      const refGrad = backward(layout, params, ref, targets, mask);
      const gpu = await gpuGradient(ctx, new KernelCache(ctx), layout, params, { B: batch, T, idx, targets, mask }, strategy ? { strategy } : {});
      expect(Math.abs(gpu.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
      for (const t of layout.tensors) {
        expect(relErr(gpu.grad, refGrad, t.offset, t.offset + t.size), t.name).toBeLessThan(1e-4);
      }
      const inTensor = new Uint8Array(layout.totalFloats);
      for (const t of layout.tensors) inTensor.fill(1, t.offset, t.offset + t.size);
      expect(gpu.grad.every((v, i) => inTensor[i] === 1 || v === 0)).toBe(true);
    });
  }

  it('is the same bit for bit on every run, and a plan can be replayed on other weights', async () => {
    const ctx = await nodeGpu();
    const cfg = config({ tie_embeddings: true, bias: true });
    const layout = paramLayout(cfg);
    const idx = randomTokens(N, V, 24);
    const targets = randomTokens(N, V, 25);
    const kernels = new KernelCache(ctx);
    const fwd = await ForwardPlan.create(ctx, kernels, layout, { mode: 'plain', points: 1, B, T, metric: 'ce', keepActivations: true });
    const plan = await BackwardPlan.create(ctx, kernels, fwd);
    plan.setBatch({ B, T, idx, targets, mask: null });
    const p1 = randomParams(cfg, 26);
    const p2 = randomParams(cfg, 27);
    const a = await plan.gradient(p1);
    const b = await plan.gradient(p2);
    const c = await plan.gradient(p1);
    expect(c.loss).toBe(a.loss);
    expect(Buffer.from(c.grad.buffer).equals(Buffer.from(a.grad.buffer))).toBe(true);
    const ref2 = forward(layout, p2, idx, targets, B, T);
    expect(relErr(b.grad, backward(layout, p2, ref2, targets))).toBeLessThan(1e-4);
    plan.destroy();
    fwd.destroy();
  });
});
