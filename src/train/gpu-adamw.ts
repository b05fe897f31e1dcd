/**
 * AdamW on the GPU (shaders/adamw.ts) over a parameter buffer and its
 * gradient buffer: the moments m and v live on the GPU, the gradient norm
 * is reduced there and clipping is applied inside the update, so a
 * training step's dispatches can follow the backward's in one pass. Only
 * the step's uniforms (learning rate, bias corrections) change per step.
 */
import { type GpuContext } from '../gpu/context.ts';
import { readFloats, storageBuffer, uniformBuffer, writeBuffer } from '../gpu/buffers.ts';
import { type Dispatch, type KernelCache } from '../gpu/kernel.ts';
import { type ParamLayout } from '../model/params.ts';
import { type AdamWHyper, appliesWeightDecay } from './adamw.ts';
import { PARAM_KIND, SUMSQ_WG, adamwKernel, adamwWorkgroups, sumPartialsKernel, sumSquaresKernel } from '../../shaders/adamw.ts';

export type AdamWSettings = Omit<AdamWHyper, 'lr'> & {
  /** Global gradient-norm clip (clip_grad_norm_'s max_norm); <= 0 turns clipping off. */
  gradClip: number;
};

/**
 * Floats per chunk of the first reduction level: a multiple of the
 * workgroup, and few enough chunks for one workgroup to sum. On a CPU
 * adapter each workgroup's tree of barriers costs a coroutine switch per
 * subgroup and level (SwiftShader), so there the chunks are as long as 8
 * of them need (ref's sum of squares: 0.66 ms, against 3.7 in chunks of
 * 1,024 floats; 4 chunks gave 0.52, 16 gave 1.1).
 */
export function sumChunk(count: number, cpu: boolean): number {
  const most = cpu ? 8 : 65535;
  return Math.max(SUMSQ_WG * 16, Math.ceil(count / most / SUMSQ_WG) * SUMSQ_WG);
}

export class GpuAdamW {
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;
  /** [1] f32: the squared global norm of the last step's gradient, before clipping. */
  readonly normSq: GPUBuffer;
  readonly dispatches: Dispatch[] = [];
  private readonly owned: GPUBuffer[] = [];
  private readonly uniform: GPUBuffer;

  private constructor(
    readonly ctx: GpuContext, readonly layout: ParamLayout, readonly settings: AdamWSettings,
    private readonly params: GPUBuffer, private readonly grad: GPUBuffer,
  ) {
    const floats = layout.totalFloats;
    const own = (b: GPUBuffer): GPUBuffer => {
      this.owned.push(b);
      return b;
    };
    this.m = own(storageBuffer(ctx, 'adamw m', floats * 4));
    this.v = own(storageBuffer(ctx, 'adamw v', floats * 4));
    this.normSq = own(storageBuffer(ctx, 'grad norm^2', 4));
    this.uniform = own(uniformBuffer(ctx, 'adamw uniforms', this.uniformWords(1, 0)));
  }

  /** AdamW for `params` (the flat weights, updated in place) from `grad`, both [layout.totalFloats] f32. */
  static async create(
    ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, params: GPUBuffer, grad: GPUBuffer, settings: AdamWSettings,
  ): Promise<GpuAdamW> {
    const opt = new GpuAdamW(ctx, layout, settings, params, grad);
    await opt.record(kernels);
    return opt;
  }

  private async record(kernels: KernelCache): Promise<void> {
    const { ctx, layout } = this;
    const count = layout.totalFloats;
    const kinds = new Uint32Array(count);
    for (const t of layout.tensors) kinds.fill(appliesWeightDecay(t) ? PARAM_KIND.decay : PARAM_KIND.noDecay, t.offset, t.offset + t.size);
    const kind = storageBuffer(ctx, 'adamw kinds', kinds);
    const chunk = sumChunk(count, ctx.adapter.isFallback);
    const chunks = Math.ceil(count / chunk);
    const partial = storageBuffer(ctx, 'grad norm partials', chunks * 4);
    const u1 = uniformBuffer(ctx, 'sum-squares uniforms', new Uint32Array([count, chunk]));
    const u2 = uniformBuffer(ctx, 'sum-partials uniforms', new Uint32Array([chunks]));
    this.owned.push(kind, partial, u1, u2);
    const sq = await kernels.get(sumSquaresKernel());
    const sum = await kernels.get(sumPartialsKernel());
    const step = await kernels.get(adamwKernel());
    this.dispatches.push(
      { kernel: sq, bindGroup: sq.bind({ u: u1, x: this.grad, partial }, 'grad norm partials'), workgroups: [chunks, 1, 1] },
      { kernel: sum, bindGroup: sum.bind({ u: u2, partial, out: this.normSq }, 'grad norm'), workgroups: [1, 1, 1] },
      {
        kernel: step,
        bindGroup: step.bind({ u: this.uniform, grad: this.grad, normSq: this.normSq, kind, params: this.params, m: this.m, v: this.v }, 'adamw'),
        workgroups: adamwWorkgroups(count, ctx.adapter.limits.maxComputeWorkgroupsPerDimension),
      },
    );
  }

  private uniformWords(step: number, lr: number): Uint32Array {
    const { beta1, beta2, eps, weightDecay, gradClip } = this.settings;
    const words = new Uint32Array(8);
    words[0] = this.layout.totalFloats;
    new Float32Array(words.buffer, 4, 7).set([
      beta1, beta2, eps, lr / (1 - beta1 ** step), Math.sqrt(1 - beta2 ** step), 1 - lr * weightDecay, gradClip,
    ]);
    return words;
  }

  /** Queues the uniforms of optimizer step `step` (counted from 1, as PyTorch) at learning rate `lr`. */
  prepare(step: number, lr: number): void {
    if (!Number.isInteger(step) || step < 1) throw new Error(`AdamW step must be an integer >= 1 (counted from 1), got ${step}`);
    writeBuffer(this.ctx, this.uniform, this.uniformWords(step, lr));
  }

  setMoments(m: Float32Array, v: Float32Array): void {
    writeBuffer(this.ctx, this.m, m);
    writeBuffer(this.ctx, this.v, v);
  }

  async readMoments(): Promise<{ m: Float32Array; v: Float32Array }> {
    const n = this.layout.totalFloats;
    return { m: await readFloats(this.ctx, this.m, 0, n), v: await readFloats(this.ctx, this.v, 0, n) };
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}
