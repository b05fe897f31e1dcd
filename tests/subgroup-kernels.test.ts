/**
 * The subgroup kernels that plans with the `subgroup` GEMM run on SwiftShader
 * against the kernels they replace (bit for bit) and the float64 reference,
 * on odd sizes. Attention (shaders/attention.ts): head sizes 16 and 32 (vec4
 * loads), 8 (lanes 2 and 3 repeat lanes 0 and 1) and 6 (scalar loads), T not
 * a multiple of 4. LayerNorm (shaders/layernorm.ts): C 48 (vec4 weights) and
 * 30 (scalar), rows not a multiple of the workgroup or of 4, perturbed
 * weights of 2 points, with and without bias, with the saved statistics.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache, type KernelDef } from '../src/gpu/kernel.ts';
import { readFloats, storageBuffer, uniformBuffer } from '../src/gpu/buffers.ts';
import { causalAttention, causalAttentionBackward, layerNorm } from '../src/model/reference.ts';
import { LN_WG, layerNormKernel } from '../shaders/layernorm.ts';
import {
  ATTN_WG, attentionBackwardKeyValueKernel, attentionBackwardKeyValueSubgroupKernel, attentionBackwardQueryKernel,
  attentionBackwardQuerySubgroupKernel, attentionKernel, attentionSubgroupKernel, attentionSubgroupWorkgroups,
} from '../shaders/attention.ts';
import { Rng } from '../src/util/rng.ts';

interface Run { y: Float32Array; lse: Float32Array }

async function run(def: KernelDef, qkv: Float32Array, B: number, T: number, C: number, H: number, P: number, groups: number): Promise<Run> {
  const ctx = await nodeGpu();
  const kernel = await new KernelCache(ctx).get(def);
  const bufs = {
    u: uniformBuffer(ctx, 'u', new Uint32Array([B, T, C, H])),
    qkv: storageBuffer(ctx, 'qkv', qkv),
    y: storageBuffer(ctx, 'y', new Float32Array(P * B * T * C).fill(-7)),
    lse: storageBuffer(ctx, 'lse', new Float32Array(P * B * H * T).fill(-7)),
  };
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(kernel.pipeline);
  pass.setBindGroup(0, kernel.bind(bufs));
  pass.dispatchWorkgroups(groups, 1, P);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
  const out = { y: await readFloats(ctx, bufs.y), lse: await readFloats(ctx, bufs.lse) };
  for (const b of Object.values(bufs)) b.destroy();
  return out;
}

const CASES: Array<[string, number, number, number, number]> = [
  // name, B, T, C, heads
  ['head size 16 (C48 h3), T13', 2, 13, 48, 3],
  ['head size 32 (C64 h2), T9', 1, 9, 64, 2],
  ['head size 8 (C32 h4), T13', 2, 13, 32, 4],
  ['head size 6 (C30 h5, scalar loads), T7', 2, 7, 30, 5],
];

describe('subgroup attention', () => {
  it('runs where the tests run: SwiftShader offers subgroups', async () => {
    expect((await nodeGpu()).device.features.has('subgroups')).toBe(true);
  });

  for (const [name, B, T, C, H] of CASES) {
    it(`equals the per-query kernel bit for bit and the reference: ${name}, 2 points`, async () => {
      const P = 2;
      const rng = new Rng(B * 1000 + T * 10 + H);
      const qkv = Float32Array.from({ length: P * B * T * 3 * C }, () => rng.normal());
      const hs = C / H;
      const sub = await run(attentionSubgroupKernel(hs, true), qkv, B, T, C, H, P, attentionSubgroupWorkgroups(B, H, T));
      const per = await run(attentionKernel(hs, true), qkv, B, T, C, H, P, Math.ceil((B * H * T) / ATTN_WG));
      expect(sub.y).toEqual(per.y);
      expect(sub.lse).toEqual(per.lse);
      for (let p = 0; p < P; p++) {
        const ref = causalAttention(Float64Array.from(qkv.subarray(p * B * T * 3 * C, (p + 1) * B * T * 3 * C)), B, T, C, H).y;
        let maxErr = 0;
        for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(sub.y[p * B * T * C + i]! - ref[i]!));
        expect(maxErr).toBeLessThan(1e-5);
      }
    });
  }

  it('keeps a key and value past a query\'s causal limit out of its result, even infinite ones', async () => {
    const [B, T, C, H] = [1, 6, 48, 3];
    const rng = new Rng(5);
    const qkv = Float32Array.from({ length: B * T * 3 * C }, () => rng.normal());
    // the last position's key and value (head 0) are infinite: only query 5 may see them
    for (let i = 0; i < C / H; i++) {
      qkv[(T - 1) * 3 * C + C + i] = Infinity;
      qkv[(T - 1) * 3 * C + 2 * C + i] = -Infinity;
    }
    const sub = await run(attentionSubgroupKernel(C / H, true), qkv, B, T, C, H, 1, attentionSubgroupWorkgroups(B, H, T));
    const per = await run(attentionKernel(C / H, true), qkv, B, T, C, H, 1, Math.ceil((B * H * T) / ATTN_WG));
    // queries 4 and 5 share a subgroup with the infinite key's position; 4 stays finite
    expect(sub.y.subarray(0, (T - 1) * C).every(Number.isFinite)).toBe(true);
    expect(sub.y).toEqual(per.y);
    expect(sub.lse).toEqual(per.lse);
  });
});

interface BackwardRun { dqkv: Float32Array; dsum: Float32Array }

/** The attention backward's two dispatches (query, then key-value) on one point. */
async function runBackward(
  query: KernelDef, keyValue: KernelDef, groups: number, f: { qkv: Float32Array; y: Float32Array; lse: Float32Array; dy: Float32Array },
  B: number, T: number, C: number, H: number,
): Promise<BackwardRun> {
  const ctx = await nodeGpu();
  const kernels = new KernelCache(ctx);
  const [kq, kkv] = [await kernels.get(query), await kernels.get(keyValue)];
  const bufs = {
    u: uniformBuffer(ctx, 'u', new Uint32Array([B, T, C, H])),
    qkv: storageBuffer(ctx, 'qkv', f.qkv), y: storageBuffer(ctx, 'y', f.y), lse: storageBuffer(ctx, 'lse', f.lse), dy: storageBuffer(ctx, 'dy', f.dy),
    dqkv: storageBuffer(ctx, 'dqkv', new Float32Array(B * T * 3 * C).fill(-7)),
    dsum: storageBuffer(ctx, 'dsum', new Float32Array(B * H * T).fill(-7)),
  };
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const [k, names] of [[kq, ['u', 'qkv', 'lse', 'y', 'dy', 'dqkv', 'dsum']], [kkv, ['u', 'qkv', 'lse', 'dy', 'dsum', 'dqkv']]] as const) {
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, k.bind(Object.fromEntries(names.map((n) => [n, bufs[n]]))));
    pass.dispatchWorkgroups(groups === 0 ? Math.ceil((B * H * T) / ATTN_WG) : groups, 1, 1);
  }
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
  const out = { dqkv: await readFloats(ctx, bufs.dqkv), dsum: await readFloats(ctx, bufs.dsum) };
  for (const b of Object.values(bufs)) b.destroy();
  return out;
}

describe('subgroup attention backward', () => {
  for (const [name, B, T, C, H] of CASES) {
    it(`dq, dk, dv and D equal the per-query and per-key kernels bit for bit and the reference: ${name}`, async () => {
      const rng = new Rng(B * 2000 + T * 10 + H);
      const qkv = Float32Array.from({ length: B * T * 3 * C }, () => rng.normal());
      const dy = Float32Array.from({ length: B * T * C }, () => rng.normal());
      const hs = C / H;
      const { y, lse } = await run(attentionKernel(hs, true), qkv, B, T, C, H, 1, Math.ceil((B * H * T) / ATTN_WG));
      const f = { qkv, y, lse, dy };
      const sub = await runBackward(attentionBackwardQuerySubgroupKernel(hs), attentionBackwardKeyValueSubgroupKernel(hs),
        attentionSubgroupWorkgroups(B, H, T), f, B, T, C, H);
      const per = await runBackward(attentionBackwardQueryKernel(hs), attentionBackwardKeyValueKernel(hs), 0, f, B, T, C, H);
      expect(sub.dqkv).toEqual(per.dqkv);
      expect(sub.dsum).toEqual(per.dsum);
      const q64 = Float64Array.from(qkv);
      const ref = causalAttentionBackward(Float64Array.from(dy), q64, causalAttention(q64, B, T, C, H).att, B, T, C, H);
      let maxErr = 0;
      let maxRef = 0;
      for (let i = 0; i < ref.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(sub.dqkv[i]! - ref[i]!));
        maxRef = Math.max(maxRef, Math.abs(ref[i]!));
      }
      expect(maxRef).toBeGreaterThan(0.1);
      expect(maxErr).toBeLessThan(2e-5 * maxRef);
    });
  }

  it('keeps a query past a key\'s causal reach out of its gradient, even an infinite one', async () => {
    const [B, T, C, H] = [1, 6, 48, 3];
    const rng = new Rng(6);
    const qkv = Float32Array.from({ length: B * T * 3 * C }, () => rng.normal());
    const dy = Float32Array.from({ length: B * T * C }, () => rng.normal());
    const { y, lse } = await run(attentionKernel(C / H, true), qkv, B, T, C, H, 1, Math.ceil((B * H * T) / ATTN_WG));
    // the first position's query and output gradient (head 0) are infinite: only key 0 sees them
    for (let i = 0; i < C / H; i++) {
      qkv[i] = Infinity;
      dy[i] = -Infinity;
    }
    const f = { qkv, y, lse, dy };
    const sub = await runBackward(attentionBackwardQuerySubgroupKernel(C / H), attentionBackwardKeyValueSubgroupKernel(C / H),
      attentionSubgroupWorkgroups(B, H, T), f, B, T, C, H);
    const per = await runBackward(attentionBackwardQueryKernel(C / H), attentionBackwardKeyValueKernel(C / H), 0, f, B, T, C, H);
    expect(sub.dqkv).toEqual(per.dqkv);
    // keys 1-3 share a subgroup with key 0 and, like the values, stay finite
    for (let t = 1; t < T; t++) for (let i = 0; i < C / H; i++) {
      expect(Number.isFinite(sub.dqkv[t * 3 * C + C + i]!)).toBe(true);
      expect(Number.isFinite(sub.dqkv[t * 3 * C + 2 * C + i]!)).toBe(true);
    }
  });
});

describe('subgroup LayerNorm', () => {
  const cases: Array<[string, number, number, 'plain' | 'perturbed', boolean, boolean]> = [
    // name, C, rows, mode, bias, saveStats
    ['C48, 26 rows, perturbed, 2 points', 48, 26, 'perturbed', true, false],
    ['C48, 70 rows, plain, saved statistics', 48, 70, 'plain', true, true],
    ['C30 (scalar weights), 13 rows, perturbed, no bias', 30, 13, 'perturbed', false, false],
    ['C64, 7 rows, plain, saved statistics, no bias', 64, 7, 'plain', false, true],
  ];
  for (const [name, C, rows, mode, bias, saveStats] of cases) {
    it(`equals the generic kernel bit for bit and the reference: ${name}`, async () => {
      const ctx = await nodeGpu();
      const kernels = new KernelCache(ctx);
      const P = mode === 'perturbed' ? 2 : 1;
      const rng = new Rng(C + rows);
      const nW = 8 + 2 * C + 4; // weight at 8, bias at 8 + C (+ padding): offsets multiples of 4
      const wOff = 8;
      const bOff = 8 + C + (4 - (C % 4)) % 4;
      const vec = (n: number, scale: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * scale);
      const theta = vec(nW + 4, 1);
      const d1 = vec(nW + 4, 0.3);
      const d2 = vec(nW + 4, 0.3);
      const coords = Float32Array.from([0.5, -1.25, -0.75, 2]);
      const xs = vec(P * rows * C, 2);
      const runLn = async (subgroupC?: number): Promise<{ out: Float32Array; stats: Float32Array }> => {
        const k = await kernels.get(layerNormKernel({ mode, bias, saveStats, ...(subgroupC ? { subgroupC } : {}) }));
        const bufs: Record<string, GPUBuffer> = {
          u: uniformBuffer(ctx, 'u', new Uint32Array([rows, C, wOff, bOff])),
          theta: storageBuffer(ctx, 'theta', theta), x: storageBuffer(ctx, 'x', xs),
          out: storageBuffer(ctx, 'out', new Float32Array(P * rows * C).fill(-7)),
        };
        if (mode === 'perturbed') Object.assign(bufs, { d1: storageBuffer(ctx, 'd1', d1), d2: storageBuffer(ctx, 'd2', d2), coords: storageBuffer(ctx, 'c', coords) });
        if (saveStats) bufs.stats = storageBuffer(ctx, 'stats', new Float32Array(P * rows * 2).fill(-7));
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(k.pipeline);
        pass.setBindGroup(0, k.bind(bufs));
        pass.dispatchWorkgroups(Math.ceil(rows / LN_WG), 1, P);
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
        const res = { out: await readFloats(ctx, bufs.out!), stats: saveStats ? await readFloats(ctx, bufs.stats!) : new Float32Array(0) };
        for (const b of Object.values(bufs)) b.destroy();
        return res;
      };
      const sub = await runLn(C);
      const generic = await runLn();
      expect(sub.out).toEqual(generic.out);
      expect(sub.stats).toEqual(generic.stats);
      for (let p = 0; p < P; p++) {
        const [a, b] = mode === 'perturbed' ? [coords[2 * p]!, coords[2 * p + 1]!] : [0, 0];
        const w = Float64Array.from(theta, (t, i) => Math.fround(Math.fround(t + Math.fround(a * d1[i]!)) + Math.fround(b * d2[i]!)));
        const ref = layerNorm(Float64Array.from(xs.subarray(p * rows * C, (p + 1) * rows * C)), rows, C, w, wOff, bias ? w : null, bOff);
        let maxErr = 0;
        for (let i = 0; i < rows * C; i++) maxErr = Math.max(maxErr, Math.abs(sub.out[p * rows * C + i]! - ref.out[i]!));
        expect(maxErr).toBeLessThan(1e-4);
        if (saveStats) expect(Math.abs(sub.stats[2 * (p * rows + rows - 1)]! - ref.mean[rows - 1]!)).toBeLessThan(1e-5);
      }
    });
  }
});
