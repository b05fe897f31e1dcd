/** GPU pass timestamps: durations of real work, longer for more work. */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { paramLayout, initParams } from '../src/model/params.ts';
import { ForwardPlan } from '../src/model/gpu-forward.ts';
import { PassTimer, profileDispatches } from '../src/gpu/timing.ts';
import { storageBuffer } from '../src/gpu/buffers.ts';

describe('PassTimer', () => {
  it('times forward passes on an adapter with timestamp-query (SwiftShader has it)', async () => {
    const ctx = await nodeGpu();
    expect(ctx.hasTimestamps).toBe(ctx.adapter.features.includes('timestamp-query'));
    const layout = paramLayout({ vocab_size: 37, block_size: 13, n_layer: 1, n_head: 3, n_embd: 48, bias: true, activation: 'gelu', tie_embeddings: true });
    const plan = await ForwardPlan.create(ctx, new KernelCache(ctx), layout, { mode: 'plain', points: 1, B: 2, T: 13, metric: 'ce', keepActivations: false });
    plan.setParams(initParams(layout, 1));
    plan.setBatch({ B: 2, T: 13, idx: new Int32Array(26).fill(3), targets: new Int32Array(26).fill(4), mask: null });
    const timer = new PassTimer(ctx, 4);
    const encoder = ctx.device.createCommandEncoder();
    plan.encode(encoder, 1, 0, timer.timestampWrites());
    plan.encode(encoder, 1, 0, timer.timestampWrites());
    const read = timer.resolve(encoder);
    ctx.device.queue.submit([encoder.finish()]);
    const ms = await read();
    plan.destroy();
    timer.destroy();
    if (!ctx.hasTimestamps) {
      expect(ms).toBeNull();
      return;
    }
    expect(ms).toHaveLength(2);
    for (const t of ms!) {
      expect(Number.isFinite(t)).toBe(true);
      expect(t).toBeGreaterThan(0);
    }
  });

  it('reads timestamps at full resolution, not rounded to Dawn\'s default 65,536 ns', async () => {
    const ctx = await nodeGpu();
    expect(ctx.hasTimestamps).toBe(true);
    const kernel = await new KernelCache(ctx).get({
      name: 'tiny', bindings: [{ name: 'o', kind: 'readwrite' }],
      code: '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(4) fn main(@builtin(global_invocation_id) g: vec3u) { o[g.x] = f32(g.x); }',
    });
    const o = storageBuffer(ctx, 'o', 64);
    const d = { kernel, bindGroup: kernel.bind({ o }), workgroups: [1, 1, 1] as const };
    const ms = (await profileDispatches(ctx, [d, d, d, d, d, d, d, d], { runs: 1, warmup: 1 }))!;
    o.destroy();
    // quantized, every duration would be a whole number of 65,536 ns (most of them 0 for a dispatch this small)
    const ns = ms.map((t) => Math.round(t * 1e6));
    expect(ns.some((t) => t % 65536 !== 0)).toBe(true);
  });
});
