/**
 * Hessian directions (SPEC section 4): the top-2 eigenvectors of the loss
 * Hessian at the centre, on the evaluation batch, by Lanczos
 * (src/landscape/lanczos.ts) over Hessian-vector products taken as central
 * differences of the gradient:
 *     H v ~ (g(theta + eps v) - g(theta - eps v)) / (2 eps),   ||v|| = 1,
 * exact for a quadratic loss and O(eps^2) otherwise (Pearlmutter 1994 for
 * the exact R-operator; PyHessian uses autograd's double backward instead).
 *
 * The Hessian is restricted to the selected coordinates S (the tensors of the
 * mask, 1-D tensors only when asked): Lanczos runs in R^|S| on P_S H P_S, so
 * its vectors, restarts included, never leave S and padding never enters.
 *
 * The gradient is injected: the GPU backward for real models, the float64
 * TypeScript reference for tests and small models.
 */
import { type ParamLayout, type TensorSpec } from '../model/params.ts';
import { type TensorMask } from './directions.ts';
import { topEigenpairs } from './lanczos.ts';
import { backward, forward } from '../model/reference.ts';
import { type GpuContext } from '../gpu/context.ts';
import { type KernelCache } from '../gpu/kernel.ts';
import { ForwardPlan } from '../model/gpu-forward.ts';
import { BackwardPlan } from '../model/gpu-backward.ts';

/** The gradient of the loss on the evaluation batch at `params` (a flat canonical buffer). */
export type Gradient = (params: Float64Array) => Promise<ArrayLike<number>>;

export interface HessianOptions {
  /** Give 1-D tensors (biases, LayerNorm) a share of the subspace (default false, as for random directions). */
  includeVectors?: boolean;
  mask?: TensorMask;
  /**
   * Finite-difference step relative to the centre: eps = relativeStep * max(||theta_S||, 1),
   * so each coordinate moves by about relativeStep of its typical size. The
   * default 1e-6 suits a float64 gradient (truncation error O(eps^2) against
   * rounding O(1e-16 / eps)); a float32 gradient wants about 1e-3.
   */
  relativeStep?: number;
  /** Most Lanczos steps (default 100); each costs two gradients. */
  iterations?: number;
  /** Lanczos residual tolerance relative to the largest eigenvalue (default 1e-5). */
  tol?: number;
  /** Seed of the Lanczos start vector (default 0). */
  seed?: number;
}

export interface HessianDirections {
  /** Unit eigenvectors of the two largest (algebraic) eigenvalues, zero outside the selection. */
  d1: Float32Array;
  d2: Float32Array;
  eigenvalues: [number, number];
  residuals: [number, number];
  /** Lanczos steps taken (Hessian-vector products). */
  iterations: number;
  /** The finite-difference step used. */
  epsilon: number;
}

/** The flat indices of the tensors the directions may touch. */
export function selectionIndices(layout: ParamLayout, includeVectors: boolean, mask?: TensorMask): Int32Array {
  const tensors = layout.tensors.filter((t: TensorSpec) => (includeVectors || t.role !== 'vector') && (!mask || mask.names.has(t.name)));
  const out = new Int32Array(tensors.reduce((n, t) => n + t.size, 0));
  let k = 0;
  for (const t of tensors) for (let i = 0; i < t.size; i++) out[k++] = t.offset + i;
  return out;
}

/** v -> P_S H P_S v in the coordinates of S, by central differences of `gradient` at `theta`. */
export function hessianVectorProduct(theta: ArrayLike<number>, gradient: Gradient, support: Int32Array, epsilon: number) {
  return async (v: Float64Array): Promise<Float64Array> => {
    const plus = Float64Array.from(theta);
    const minus = Float64Array.from(theta);
    for (let s = 0; s < support.length; s++) {
      plus[support[s]!]! += epsilon * v[s]!;
      minus[support[s]!]! -= epsilon * v[s]!;
    }
    const gPlus = await gradient(plus);
    const gMinus = await gradient(minus);
    const out = new Float64Array(support.length);
    for (let s = 0; s < support.length; s++) out[s] = (gPlus[support[s]!]! - gMinus[support[s]!]!) / (2 * epsilon);
    return out;
  };
}

export async function hessianDirections(
  layout: ParamLayout, theta: Float32Array, gradient: Gradient, opts: HessianOptions = {},
): Promise<HessianDirections> {
  const support = selectionIndices(layout, opts.includeVectors ?? false, opts.mask);
  if (support.length < 2) throw new Error(`hessian: the selection holds ${support.length} parameters, need at least 2`);
  let thetaSq = 0;
  for (const p of support) thetaSq += theta[p]! * theta[p]!;
  const epsilon = (opts.relativeStep ?? 1e-6) * Math.max(Math.sqrt(thetaSq), 1);
  const hvp = hessianVectorProduct(theta, gradient, support, epsilon);
  const eig = await topEigenpairs(hvp, support.length, {
    k: 2, iterations: opts.iterations ?? 100, tol: opts.tol ?? 1e-5, seed: opts.seed ?? 0, which: 'algebraic',
  });
  const scatter = (v: Float64Array): Float32Array => {
    const d = new Float32Array(layout.totalFloats);
    for (let s = 0; s < support.length; s++) d[support[s]!] = v[s]!;
    return d;
  };
  return {
    d1: scatter(eig.vectors[0]!),
    d2: scatter(eig.vectors[1]!),
    eigenvalues: [eig.values[0]!, eig.values[1]!],
    residuals: [eig.residuals[0]!, eig.residuals[1]!],
    iterations: eig.iterations,
    epsilon,
  };
}

/** The float64 TypeScript reference gradient of the (mask-weighted) cross-entropy on one batch. */
export function referenceGradient(
  layout: ParamLayout, batch: { B: number; T: number; idx: Int32Array; targets: Int32Array; mask: Float32Array | null },
): Gradient {
  return async (params) => {
    const r = forward(layout, params, batch.idx, batch.targets, batch.B, batch.T, batch.mask);
    return backward(layout, params, r, batch.targets, batch.mask);
  };
}

/** The relative finite-difference step for a float32 (GPU) gradient: about the cube root of float32's epsilon. */
export const GPU_RELATIVE_STEP = 1e-3;

/**
 * The GPU gradient (float32, src/model/gpu-backward.ts) of the
 * (mask-weighted) cross-entropy on one batch, one forward/backward plan
 * reused for every call; destroy it when done.
 */
export async function gpuGradientFunction(
  ctx: GpuContext, kernels: KernelCache, layout: ParamLayout,
  batch: { B: number; T: number; idx: Int32Array; targets: Int32Array; mask: Float32Array | null },
): Promise<{ gradient: Gradient; destroy: () => void }> {
  const fwd = await ForwardPlan.create(ctx, kernels, layout, { mode: 'plain', points: 1, B: batch.B, T: batch.T, metric: 'ce', keepActivations: true });
  const plan = await BackwardPlan.create(ctx, kernels, fwd);
  plan.setBatch(batch);
  return {
    gradient: async (params) => (await plan.gradient(Float32Array.from(params))).grad,
    destroy: () => {
      plan.destroy();
      fwd.destroy();
    },
  };
}
