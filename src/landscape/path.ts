/**
 * The training path on a landscape (SPEC sections 4 and 8): each
 * checkpoint's coordinates on the plane and distance from it, its true loss
 * (a plain evaluation at its own weights) and its height on the plane (the
 * loss at centre + a d1 + b d2, evaluated, not interpolated). The two losses
 * differ whenever the path leaves the plane; a grid stores both.
 */
import { type GpuContext } from '../gpu/context.ts';
import { readFloats } from '../gpu/buffers.ts';
import { type KernelCache } from '../gpu/kernel.ts';
import { type ParamLayout } from '../model/params.ts';
import { ForwardPlan, type ForwardBatch } from '../model/gpu-forward.ts';
import { type Metric } from '../../shaders/loss.ts';

/** The loss of each of `count` models (`load(i)` gives model i's flat weights), one plain forward plan reused for all. */
export async function plainLosses(
  ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, batch: ForwardBatch, metric: Metric,
  count: number, load: (i: number) => Float32Array,
): Promise<Float32Array> {
  const plan = await ForwardPlan.create(ctx, kernels, layout, { mode: 'plain', points: 1, B: batch.B, T: batch.T, metric, keepActivations: false });
  const out = new Float32Array(count);
  try {
    plan.setBatch(batch);
    for (let i = 0; i < count; i++) {
      plan.setParams(load(i));
      const encoder = ctx.device.createCommandEncoder({ label: `path loss ${i}` });
      plan.encode(encoder);
      ctx.device.queue.submit([encoder.finish()]);
      out[i] = (await readFloats(ctx, plan.output, 0, 1))[0]!;
    }
  } finally {
    plan.destroy();
  }
  return out;
}

/** theta - a d1 - b d2 in float32: the centre that puts theta at (a, b) of the plane (the wormhole's start offset). */
export function shiftedCentre(theta: Float32Array, d1: Float32Array, d2: Float32Array, a: number, b: number): Float32Array {
  if (a === 0 && b === 0) return theta;
  return theta.map((w, i) => w - a * d1[i]! - b * d2[i]!);
}
