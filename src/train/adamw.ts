/**
 * AdamW as PyTorch's torch.optim.AdamW with nanoGPT's settings (betas 0.9 /
 * 0.95, eps 1e-8, decoupled weight decay on 2-D tensors only), and global
 * gradient-norm clipping as torch.nn.utils.clip_grad_norm_. This is the
 * plain reference the GPU optimizer is tested against: float32 buffers of
 * the canonical layout in and out, float64 arithmetic per element.
 */
import { type ParamLayout, type TensorSpec } from '../model/params.ts';

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay, applied only where `appliesWeightDecay`. */
  weightDecay: number;
}

/** nanoGPT's defaults (train.py): beta2 0.95 rather than PyTorch's 0.999, weight decay 0.1. */
export const ADAMW_DEFAULTS: Omit<AdamWHyper, 'lr'> = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** nanoGPT decays every parameter with dim >= 2 (Linear weights and embeddings), never biases or LayerNorm. */
export function appliesWeightDecay(t: TensorSpec): boolean {
  return t.role === 'matrix' || t.role === 'embedding';
}

/** L2 norm of all gradients together (padding is zero and adds nothing). */
export function gradNorm(layout: Pick<ParamLayout, 'tensors'>, grads: ArrayLike<number>): number {
  let sum = 0;
  for (const t of layout.tensors) {
    for (let i = t.offset; i < t.offset + t.size; i++) sum += grads[i]! * grads[i]!;
  }
  return Math.sqrt(sum);
}

/**
 * The factor clip_grad_norm_ multiplies every gradient by:
 * min(1, maxNorm / (norm + 1e-6)). maxNorm <= 0 turns clipping off (nanoGPT's grad_clip = 0).
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (maxNorm <= 0) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * One AdamW step in place on `params`, `m` (exp_avg) and `v` (exp_avg_sq),
 * with `step` counted from 1 (PyTorch increments state['step'] before use).
 * Each gradient is first multiplied by `gradScale` (the clip coefficient).
 * Per element, as torch.optim.AdamW:
 *   p <- p * (1 - lr * wd)                          (wd = 0 for vectors)
 *   m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
 *   p <- p - lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * Padding floats are left untouched.
 */
export function adamwStep(
  layout: Pick<ParamLayout, 'tensors'>, params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array,
  step: number, hp: AdamWHyper, gradScale = 1,
): void {
  if (!Number.isInteger(step) || step < 1) throw new Error(`AdamW step must be an integer >= 1 (counted from 1), got ${step}`);
  const stepSize = hp.lr / (1 - hp.beta1 ** step);
  const bias2Sqrt = Math.sqrt(1 - hp.beta2 ** step);
  for (const t of layout.tensors) {
    const decay = appliesWeightDecay(t) ? 1 - hp.lr * hp.weightDecay : 1;
    for (let i = t.offset; i < t.offset + t.size; i++) {
      const g = grads[i]! * gradScale;
      const mi = hp.beta1 * m[i]! + (1 - hp.beta1) * g;
      const vi = hp.beta2 * v[i]! + (1 - hp.beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bias2Sqrt + hp.eps);
    }
  }
}
