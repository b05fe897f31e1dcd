/**
 * The GPU context shared by Node and the browser: one GPUDevice with the
 * adapter's limits requested, validation errors raised as exceptions that
 * name the kernel, and a lost device reported instead of hung on.
 */

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a software or fallback adapter (SwiftShader). */
  isFallback: boolean;
  features: string[];
  limits: Record<string, number>;
}

export class GpuError extends Error {
  override name = 'GpuError';
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  hasTimestamps: boolean;
  /** Set once the device is lost; every later wait rejects with it. */
  lostReason: string | null;
}

const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
  'minStorageBufferOffsetAlignment',
] as const;

export function summariseAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) limits[name] = Number((adapter.limits as unknown as Record<string, number>)[name]);
  const description = info?.description ?? '';
  const vendor = info?.vendor ?? '';
  const isSwiftShader = /swiftshader/i.test(`${description} ${info?.device ?? ''} ${info?.architecture ?? ''}`)
    || vendor === 'google' && /swiftshader|subzero/i.test(info?.architecture ?? '');
  return {
    vendor,
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description,
    isFallback: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter) || isSwiftShader,
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

export function describeAdapter(a: AdapterSummary): string {
  const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter';
  return a.isFallback ? `${name} (software)` : name;
}

/** Requests a device with the adapter's full buffer and workgroup limits. */
export async function createContext(adapter: GPUAdapter): Promise<GpuContext> {
  const summary = summariseAdapter(adapter);
  const hasTimestamps = adapter.features.has('timestamp-query');
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    if (name === 'minStorageBufferOffsetAlignment') continue;
    requiredLimits[name] = summary.limits[name]!;
  }
  // Subgroups, where offered, let SwiftShader share a row of inputs between
  // lanes without a barrier (the `subgroup` GEMM of shaders/linear.ts).
  const requiredFeatures: GPUFeatureName[] = [];
  if (hasTimestamps) requiredFeatures.push('timestamp-query');
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups' as GPUFeatureName);
  const device = await adapter.requestDevice({
    label: 'losscape',
    requiredFeatures,
    requiredLimits,
  });
  const ctx: GpuContext = { device, adapter: summary, hasTimestamps, lostReason: null };
  const lost = device.lost.then((info): never => {
    ctx.lostReason = `GPU device lost (${info.reason}): ${info.message}`;
    throw new GpuError(ctx.lostReason);
  });
  // Handled here once, so that a loss after every wait has finished is no unhandled rejection.
  lost.catch(() => undefined);
  lostPromises.set(ctx, lost);
  return ctx;
}

/** One promise per context that rejects with a GpuError when its device is lost. */
const lostPromises = new WeakMap<GpuContext, Promise<never>>();

/**
 * Waits for `p`, failing with a GpuError that names `what` (not hanging) if
 * the device is lost first.
 */
export async function unlessLost<T>(ctx: GpuContext, p: Promise<T>, what: string): Promise<T> {
  if (ctx.lostReason) throw new GpuError(`${what}: ${ctx.lostReason}`);
  const lost = lostPromises.get(ctx);
  if (!lost) return p;
  try {
    return await Promise.race([p, lost]);
  } catch (e) {
    if (ctx.lostReason && e instanceof GpuError) throw new GpuError(`${what}: ${ctx.lostReason}`);
    throw e;
  }
}

/**
 * Runs `fn` inside validation and out-of-memory error scopes and throws a
 * GpuError naming `label` if either caught something.
 */
export async function checked<T>(ctx: GpuContext, label: string, fn: () => T): Promise<T> {
  const { device } = ctx;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = fn();
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    if (validation) throw new GpuError(`${label}: ${validation.message}`);
    if (oom) throw new GpuError(`${label}: out of GPU memory: ${oom.message}`);
  }
  return result;
}

/** Waits for the queue, failing (not hanging) if the device is lost. */
export async function finish(ctx: GpuContext): Promise<void> {
  await unlessLost(ctx, ctx.device.queue.onSubmittedWorkDone(), 'waiting for the GPU queue');
}
