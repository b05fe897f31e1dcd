/**
 * Exports from the page: the heightmap and colour-mapped PNGs of `losscape
 * export` (the export module's encoders, over the values read back from the
 * heights buffer), a screenshot of the canvas, and a WebM recording.
 */
import type { GpuContext } from '../gpu/context.ts';
import { readFloats } from '../gpu/buffers.ts';
import { encodeColormapPng8, encodeHeightmap16, type ScaleOptions } from '../export/heightmap.ts';
import type { HeightField } from './source.ts';
import type { Settings } from './state.ts';

/** The values of one frame of `field`, [ny][nx], read back from the GPU. */
export function readFrame(ctx: GpuContext, field: HeightField, frame: number): Promise<Float32Array> {
  const plane = field.nx * field.ny;
  return readFloats(ctx, field.heights, frame * plane, plane);
}

function scaleOptions(field: HeightField, settings: Settings): ScaleOptions {
  const { alpha, beta, nx, ny } = field;
  return { scale: settings.scale, extent: { alpha: [alpha[0]!, alpha[nx - 1]!], beta: [beta[0]!, beta[ny - 1]!] } };
}

/** The 16-bit heightmap PNG of one frame (range: the frame's finite values). */
export async function heightmapBytes(ctx: GpuContext, field: HeightField, frame: number, settings: Settings): Promise<Uint8Array> {
  return encodeHeightmap16(await readFrame(ctx, field, frame), field.nx, field.ny, scaleOptions(field, settings));
}

/** The 8-bit colour-mapped PNG of one frame, in the shown colour map and scale. */
export async function colormapBytes(ctx: GpuContext, field: HeightField, frame: number, settings: Settings): Promise<Uint8Array> {
  return encodeColormapPng8(await readFrame(ctx, field, frame), field.nx, field.ny, { ...scaleOptions(field, settings), colormap: settings.colormap });
}

export function download(data: Blob | Uint8Array, name: string): void {
  const blob = data instanceof Blob ? data : new Blob([data as Uint8Array<ArrayBuffer>], { type: 'image/png' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A PNG of the canvas; `draw` must render a frame first, in the same task, so the picture is there. */
export function canvasPng(canvas: HTMLCanvasElement, draw: () => void): Promise<Blob> {
  draw();
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the canvas gave no picture'))), 'image/png');
  });
}

/**
 * Records the canvas as WebM while `play` runs (it resolves when the
 * animation has gone round once). Fails plainly where the browser has no
 * MediaRecorder or no WebM encoder.
 */
export async function recordWebm(canvas: HTMLCanvasElement, play: () => Promise<void>): Promise<Blob> {
  if (typeof MediaRecorder === 'undefined' || typeof canvas.captureStream !== 'function') {
    throw new Error('recording needs MediaRecorder and canvas.captureStream, which this browser lacks');
  }
  const mimeType = ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((t) => MediaRecorder.isTypeSupported(t));
  if (!mimeType) throw new Error('this browser cannot record WebM (MediaRecorder supports none of vp9, vp8)');
  const recorder = new MediaRecorder(canvas.captureStream(30), { mimeType });
  const chunks: Blob[] = [];
  recorder.ondataavailable = (e) => { if (e.data.size > 0) chunks.push(e.data); };
  const stopped = new Promise<void>((resolve) => { recorder.onstop = () => resolve(); });
  recorder.start(250);
  try {
    await play();
  } finally {
    recorder.stop();
  }
  await stopped;
  return new Blob(chunks, { type: 'video/webm' });
}
