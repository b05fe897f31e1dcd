/**
 * WebGPU in Node through Dawn's `webgpu` package (SPEC section 5). When no
 * adapter is found, SwiftShader's Vulkan ICD from Debian's chromium package
 * is tried. The object returned by create() is kept referenced for the life
 * of the process: Dawn crashes the process if it is garbage collected.
 */
import { existsSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { create, globals } from 'webgpu';
import { createContext, type GpuContext, GpuError } from '../gpu/context.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const keepAlive: unknown[] = [];
let contextPromise: Promise<GpuContext> | null = null;

/**
 * Dawn options for create(), space-separated in LOSSCAPE_DAWN_FLAGS (for
 * example `backend=vulkan adapter=NAME`). By default Dawn's shader
 * robustness transform is turned off: every losscape kernel bounds its own
 * indices (clamped loads, guarded stores, tested on odd sizes), and the
 * per-access clamps cost SwiftShader about a third of the GEMM throughput.
 * And timestamp queries are read at full resolution: Dawn rounds them down
 * to multiples of 65,536 ns by default (a browser's defence against timing
 * attacks), which reads a GPU dispatch shorter than that as 0 and would
 * leave the GEMM tuner and `bench --profile` blind on fast devices.
 * LOSSCAPE_DAWN_FLAGS="" (set, empty) keeps Dawn's defaults.
 */
export const DEFAULT_DAWN_FLAGS = ['enable-dawn-features=disable_robustness', 'disable-dawn-features=timestamp_quantization'];

export function dawnFlags(): string[] {
  const env = process.env.LOSSCAPE_DAWN_FLAGS;
  return env === undefined ? DEFAULT_DAWN_FLAGS : env.split(/\s+/).filter(Boolean);
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
  calmHostThread(ctx);
  return ctx;
}

/**
 * The nice value the main thread takes once a CPU adapter's device is open,
 * or null to leave it: `configureHost({ hostNice })` (the CLI sets 19), and
 * LOSSCAPE_HOST_NICE overrides either ("off" or "0" leaves it).
 */
let hostNice: number | null = null;

export function configureHost(o: { hostNice: number | null }): void {
  hostNice = o.hostNice;
}

export function hostNiceSetting(): number | null {
  const env = process.env.LOSSCAPE_HOST_NICE;
  if (env === undefined || env === '') return hostNice;
  if (env === 'off') return null;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0 || n > 19) throw new GpuError(`LOSSCAPE_HOST_NICE must be an integer from 0 to 19 or "off", got "${env}"`);
  return n === 0 ? null : n;
}

/**
 * Dawn's Node binding pumps its events with setImmediate for as long as a
 * GPU promise is pending (mapAsync, onSubmittedWorkDone): a waiting main
 * thread spins. On a CPU adapter that spin competes with SwiftShader's worker
 * threads for the same cores (on 2 cores it held 60-66% of one, and the GEMM
 * ran 1.6x slower). Linux nice values are per thread, and the workers exist
 * once the device is open, so lowering the priority of the main thread
 * alone gives the cores back to the workers while the pump still answers
 * promptly when they are idle. Threads and processes started later from the
 * main thread inherit the lower priority.
 */
function calmHostThread(ctx: GpuContext): void {
  const nice = hostNiceSetting();
  if (nice === null || !ctx.adapter.isFallback || process.platform !== 'linux') return;
  try {
    setPriority(process.pid, nice);
  } catch {
    // Not permitted here: the main thread keeps its priority.
  }
}

/**
 * Waits (up to `timeoutMs`) for the work queued on the process-wide device,
 * if one was opened: the CLI calls it before `process.exit`, since exiting
 * while SwiftShader's threads still run a dispatch can end the process by
 * a signal. A lost device or an error counts as settled.
 */
export async function settleGpu(timeoutMs = 10_000): Promise<void> {
  if (!contextPromise) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const ctx = await contextPromise;
    await Promise.race([
      ctx.device.queue.onSubmittedWorkDone(),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
    ]);
  } catch {
    // Nothing to wait for.
  } finally {
    clearTimeout(timer);
  }
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
