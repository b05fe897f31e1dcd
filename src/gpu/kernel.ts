/**
 * Compute kernels with explicit bind-group layouts: a kernel declares, in one
 * place, the buffers it reads, writes and takes as uniforms, and the host
 * binds them by name. Shader compile errors and pipeline failures are
 * raised naming the kernel.
 */
import { type GpuContext, GpuError } from './context.ts';

export type BindingKind = 'read' | 'readwrite' | 'uniform';

export interface BindingDef {
  name: string;
  kind: BindingKind;
}

export interface KernelDef {
  /** Names the kernel in errors, labels and timings. */
  name: string;
  /** WGSL source; bindings are @group(0) @binding(i) in the order of `bindings`. */
  code: string;
  bindings: readonly BindingDef[];
  entryPoint?: string;
}

export class Kernel {
  constructor(
    readonly name: string,
    readonly pipeline: GPUComputePipeline,
    readonly layout: GPUBindGroupLayout,
    readonly bindings: readonly BindingDef[],
    private readonly device: GPUDevice,
  ) {}

  /** Binds buffers by binding name; every binding must be given. */
  bind(buffers: Record<string, GPUBuffer | GPUBufferBinding>, label = this.name): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = this.bindings.map((b, i) => {
      const buf = buffers[b.name];
      if (!buf) throw new GpuError(`kernel ${this.name}: no buffer given for binding "${b.name}"`);
      return { binding: i, resource: 'buffer' in buf ? buf : { buffer: buf } };
    });
    for (const name of Object.keys(buffers)) {
      if (!this.bindings.some((b) => b.name === name)) throw new GpuError(`kernel ${this.name}: unknown binding "${name}"`);
    }
    return this.device.createBindGroup({ label, layout: this.layout, entries });
  }
}

function layoutEntry(b: BindingDef, i: number): GPUBindGroupLayoutEntry {
  const type: GPUBufferBindingType = b.kind === 'uniform' ? 'uniform' : b.kind === 'read' ? 'read-only-storage' : 'storage';
  return { binding: i, visibility: 4 /* GPUShaderStage.COMPUTE */, buffer: { type } };
}

function numberLines(code: string, line: number): string {
  const lines = code.split('\n');
  const from = Math.max(0, line - 3);
  return lines.slice(from, line + 2).map((l, i) => `${from + i + 1}: ${l}`).join('\n');
}

export async function compileKernel(ctx: GpuContext, def: KernelDef): Promise<Kernel> {
  const { device } = ctx;
  const module = device.createShaderModule({ label: def.name, code: def.code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    const first = errors[0]!;
    throw new GpuError(
      `kernel ${def.name}: WGSL compile error at line ${first.lineNum}: ${first.message}\n${numberLines(def.code, first.lineNum)}`,
    );
  }
  const layout = device.createBindGroupLayout({ label: def.name, entries: def.bindings.map(layoutEntry) });
  device.pushErrorScope('validation');
  let pipeline: GPUComputePipeline;
  try {
    pipeline = await device.createComputePipelineAsync({
      label: def.name,
      layout: device.createPipelineLayout({ label: def.name, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: def.entryPoint ?? 'main' },
    });
  } catch (e) {
    await device.popErrorScope();
    throw new GpuError(`kernel ${def.name}: pipeline creation failed: ${(e as Error).message}`);
  }
  const err = await device.popErrorScope();
  if (err) throw new GpuError(`kernel ${def.name}: ${err.message}`);
  return new Kernel(def.name, pipeline, layout, def.bindings, device);
}

/** Compiles each distinct kernel source once per device. */
export class KernelCache {
  private readonly kernels = new Map<string, Promise<Kernel>>();
  constructor(private readonly ctx: GpuContext) {}

  get(def: KernelDef): Promise<Kernel> {
    const key = `${def.entryPoint ?? 'main'}\n${def.bindings.map((b) => `${b.name}:${b.kind}`).join(',')}\n${def.code}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = compileKernel(this.ctx, def);
      this.kernels.set(key, k);
      k.catch(() => this.kernels.delete(key));
    }
    return k;
  }
}

/** One recorded dispatch: a kernel, its bound buffers, its grid of workgroups. */
export interface Dispatch {
  kernel: Kernel;
  bindGroup: GPUBindGroup;
  workgroups: readonly [number, number, number];
  /** The workgroup axis that runs over models (grid points), if any: replays of fewer points shrink it. */
  pointsAxis?: 0 | 1 | 2;
}

/**
 * Encodes a list of dispatches into one compute pass. With `points`, each
 * dispatch's `pointsAxis` is set to that many workgroups.
 */
export function encodeDispatches(
  encoder: GPUCommandEncoder, dispatches: readonly Dispatch[], label: string,
  timestampWrites?: GPUComputePassTimestampWrites, points?: number,
): void {
  const pass = encoder.beginComputePass(timestampWrites ? { label, timestampWrites } : { label });
  for (const d of dispatches) {
    pass.setPipeline(d.kernel.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    const wg = [...d.workgroups];
    if (points !== undefined && d.pointsAxis !== undefined) wg[d.pointsAxis] = points;
    pass.dispatchWorkgroups(wg[0]!, wg[1]!, wg[2]!);
  }
  pass.end();
}
