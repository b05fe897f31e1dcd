/** A lost device is reported, not hung on, and a loss after the waits is no unhandled rejection. */
import { describe, expect, it } from 'vitest';
import { create } from 'webgpu';
import { nodeGpu, dawnFlags } from '../src/node/gpu.ts';
import { createContext, finish, GpuError } from '../src/gpu/context.ts';
import { readBytes, storageBuffer } from '../src/gpu/buffers.ts';

describe('device loss', () => {
  it('rejects waits with a GpuError naming what was waited for', async () => {
    await nodeGpu(); // sets the SwiftShader fallback up where there is no GPU
    const gpu = create(dawnFlags());
    const adapter = await gpu.requestAdapter();
    expect(adapter).not.toBeNull();
    const ctx = await createContext(adapter!);
    const buffer = storageBuffer(ctx, 'probe', new Float32Array([1, 2, 3]));
    expect(new Float32Array(await readBytes(ctx, buffer))).toEqual(new Float32Array([1, 2, 3]));
    await finish(ctx); // finished waits must not turn the later loss into an unhandled rejection
    ctx.device.destroy();
    await expect(readBytes(ctx, buffer)).rejects.toThrow(GpuError);
    await expect(finish(ctx)).rejects.toThrow(/waiting for the GPU queue: GPU device lost/);
    void gpu;
  });
});
