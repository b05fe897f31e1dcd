import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';

describe('node GPU context', () => {
  it('finds an adapter (SwiftShader on machines without a GPU) and a working device', async () => {
    const ctx = await nodeGpu();
    expect(ctx.device).toBeDefined();
    expect(ctx.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(1 << 20);
  });
});
