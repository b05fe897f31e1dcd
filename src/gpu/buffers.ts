/** Buffer helpers: creation with labels, uploads, and readbacks. */
import { type GpuContext, GpuError, unlessLost } from './context.ts';

const STORAGE = 0x80; // GPUBufferUsage.STORAGE
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const UNIFORM = 0x40;

export const BufferUsage = { STORAGE, COPY_SRC, COPY_DST, MAP_READ, UNIFORM } as const;

function padTo4(n: number): number {
  return Math.max(4, Math.ceil(n / 4) * 4);
}

/** A storage buffer of `bytes` (or holding `data`), readable back and writable from the host. */
export function storageBuffer(ctx: GpuContext, label: string, bytesOrData: number | ArrayBufferView, extraUsage = 0): GPUBuffer {
  const data = typeof bytesOrData === 'number' ? null : bytesOrData;
  const size = padTo4(data ? data.byteLength : (bytesOrData as number));
  if (size > ctx.adapter.limits.maxBufferSize!) {
    throw new GpuError(`buffer ${label}: ${size} bytes exceeds the device's maxBufferSize (${ctx.adapter.limits.maxBufferSize})`);
  }
  const buffer = ctx.device.createBuffer({ label, size, usage: STORAGE | COPY_SRC | COPY_DST | extraUsage, mappedAtCreation: data !== null });
  if (data) {
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
  }
  return buffer;
}

/** A uniform buffer holding `data` (u32/f32 words). */
export function uniformBuffer(ctx: GpuContext, label: string, data: Uint32Array | Float32Array): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buffer = ctx.device.createBuffer({ label, size, usage: UNIFORM | COPY_DST, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buffer.unmap();
  return buffer;
}

export function writeBuffer(ctx: GpuContext, buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  ctx.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
}

/** Copies `bytes` from `buffer` at `byteOffset` to the host. */
export async function readBytes(ctx: GpuContext, buffer: GPUBuffer, byteOffset = 0, bytes = buffer.size - byteOffset): Promise<ArrayBuffer> {
  if (ctx.lostReason) throw new GpuError(`reading ${buffer.label}: ${ctx.lostReason}`);
  const size = padTo4(bytes);
  const staging = ctx.device.createBuffer({ label: `${buffer.label} readback`, size, usage: MAP_READ | COPY_DST });
  const encoder = ctx.device.createCommandEncoder({ label: `read ${buffer.label}` });
  encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
  ctx.device.queue.submit([encoder.finish()]);
  await unlessLost(ctx, staging.mapAsync(MAP_READ), `reading ${buffer.label}`);
  const copy = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return copy;
}

export async function readFloats(ctx: GpuContext, buffer: GPUBuffer, floatOffset = 0, count?: number): Promise<Float32Array> {
  const bytes = count === undefined ? buffer.size - floatOffset * 4 : count * 4;
  return new Float32Array(await readBytes(ctx, buffer, floatOffset * 4, bytes));
}
