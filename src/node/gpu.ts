/**
 * WebGPU in Node through Dawn's `webgpu` package (SPEC section 5). When no
 * adapter is found, SwiftShader's Vulkan ICD from Debian's chromium package
 * is tried. The object returned by create() is kept referenced for the life
 * of the process: Dawn crashes the process if it is garbage collected.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { create, globals } from 'webgpu';
import { createContext, type GpuContext, GpuError } from '../gpu/context.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const keepAlive: unknown[] = [];
let contextPromise: Promise<GpuContext> | null = null;

/**
 * Dawn options for create(): LOSSCAPE_DAWN_FLAGS, space-separated (for example
 * `enable-dawn-features=disable_robustness backend=vulkan adapter=NAME`).
 */
export function dawnFlags(): string[] {
  return (process.env.LOSSCAPE_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
}

async function requestAdapter(): Promise<GPUAdapter | null> {
  const gpu = create(dawnFlags());
  keepAlive.push(gpu);
  return gpu.requestAdapter({ powerPreference: 'high-performance' });
}

async function openContext(): Promise<GpuContext> {
  // The Vulkan loader complains on stderr when this is unset (headless machines).
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = tmpdir();
  Object.assign(globalThis, globals);
  let adapter = await requestAdapter();
  if (!adapter && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    adapter = await requestAdapter();
  }
  if (!adapter) {
    throw new GpuError(
      'no WebGPU adapter found. On a machine without a GPU install Debian\'s chromium and libvulkan1 '
      + `(npm run setup) so that SwiftShader (${SWIFTSHADER_ICD}) can serve as the adapter.`,
    );
  }
  const ctx = await createContext(adapter);
  keepAlive.push(adapter, ctx.device);
  return ctx;
}

/** The process-wide GPU context, opened on first use. */
export function nodeGpu(): Promise<GpuContext> {
  if (!contextPromise) {
    contextPromise = openContext();
    contextPromise.catch(() => {
      contextPromise = null;
    });
  }
  return contextPromise;
}
