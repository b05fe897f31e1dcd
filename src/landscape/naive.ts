/**
 * The naive WebGPU baseline of the benchmark (SPEC section 6): grid points
 * one at a time, as a per-point loop does it. For each point the weights
 * theta + a d1 + b d2 are materialised on the host, uploaded whole with
 * writeBuffer, one plain forward runs, and the loss is read back before the
 * next point starts. The forward itself is the engine's (a ForwardPlan in
 * `plain` mode for one point), so the difference from GridEvaluator is the
 * method alone: per-point uploads, round trips and one model per dispatch
 * instead of a chunk of models with their weights formed in the kernels.
 */
import { type GpuContext } from '../gpu/context.ts';
import { readFloats } from '../gpu/buffers.ts';
import { type KernelCache } from '../gpu/kernel.ts';
import { type ParamLayout } from '../model/params.ts';
import { type GemmStrategy } from '../../shaders/linear.ts';
import { ForwardPlan, type ForwardBatch } from '../model/gpu-forward.ts';
import { type Metric } from '../../shaders/loss.ts';

/**
 * theta + a d1 + b d2 in float32, in the order the perturbed kernels form it
 * ((theta + a d1) + b d2, each operation rounded to f32, a and b as f32
 * coordinates), into `out`.
 */
export function pointWeights(
  centre: Float32Array, d1: Float32Array, d2: Float32Array, a: number, b: number, out: Float32Array = new Float32Array(centre.length),
): Float32Array {
  const fa = Math.fround(a);
  const fb = Math.fround(b);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.fround(Math.fround(centre[i]! + Math.fround(fa * d1[i]!)) + Math.fround(fb * d2[i]!));
  }
  return out;
}

export class NaiveEvaluator {
  /** The host copy of the current point's weights, reused from point to point. */
  private readonly weights: Float32Array;

  private constructor(
    readonly ctx: GpuContext,
    readonly plan: ForwardPlan,
    private readonly centre: Float32Array,
    private readonly d1: Float32Array,
    private readonly d2: Float32Array,
  ) {
    this.weights = new Float32Array(centre.length);
  }

  static async create(
    ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, batch: ForwardBatch,
    weights: { centre: Float32Array; d1: Float32Array; d2: Float32Array }, opts: { metric: Metric; strategy?: GemmStrategy; tune?: boolean },
  ): Promise<NaiveEvaluator> {
    const plan = await ForwardPlan.create(ctx, kernels, layout, {
      mode: 'plain', points: 1, B: batch.B, T: batch.T, metric: opts.metric, keepActivations: false,
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
      ...(opts.tune !== undefined ? { tune: opts.tune } : {}),
    });
    plan.setBatch(batch);
    return new NaiveEvaluator(ctx, plan, weights.centre, weights.d1, weights.d2);
  }

  /** The loss at centre + a d1 + b d2: materialise, upload, one forward, read back. */
  async value(a: number, b: number): Promise<number> {
    this.plan.setParams(pointWeights(this.centre, this.d1, this.d2, a, b, this.weights));
    const encoder = this.ctx.device.createCommandEncoder({ label: 'naive point' });
    this.plan.encode(encoder);
    this.ctx.device.queue.submit([encoder.finish()]);
    return (await readFloats(this.ctx, this.plan.output, 0, 1))[0]!;
  }

  /** The losses at coords ([count][2]: a, b), one point after another. */
  async values(coords: Float32Array): Promise<Float32Array> {
    const out = new Float32Array(coords.length / 2);
    for (let k = 0; k < out.length; k++) out[k] = await this.value(coords[2 * k]!, coords[2 * k + 1]!);
    return out;
  }

  destroy(): void {
    this.plan.destroy();
  }
}
