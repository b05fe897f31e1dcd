/** GPU pass timestamps: durations of real work, longer for more work. */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { paramLayout, initParams } from '../src/model/params.ts';
import { ForwardPlan } from '../src/model/gpu-forward.ts';
import { PassTimer } from '../src/gpu/timing.ts';

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
});
