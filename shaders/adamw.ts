/**
 * AdamW over the flat parameter buffer, with global gradient-norm clipping,
 * as torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ (the reference is
 * src/train/adamw.ts). The norm is a deterministic two-level tree
 * reduction (fixed chunks, then one workgroup over the chunks' sums), and
 * the clip factor is applied inside the AdamW kernel, so a step needs no
 * CPU round trip.
 */
import { type KernelDef } from '../src/gpu/kernel.ts';

export const SUMSQ_WG = 64;
export const ADAMW_WG = 256;

/** What each float of the flat buffer is, for the AdamW kernel's `kind` buffer. */
export const PARAM_KIND = { padding: 0, noDecay: 1, decay: 2 } as const;

/**
 * sum-squares: partial[w] = sum of x[i]^2 over i in [w*chunk, min((w+1)*chunk, count)),
 * each invocation over a strided slice in order, then a fixed tree.
 * bindings: u {count, chunk}, x, partial ([chunks])
 * dispatch: (ceil(count / chunk), 1, 1)
 */
export function sumSquaresKernel(): KernelDef {
  return {
    name: 'sum-squares',
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'x', kind: 'read' }, { name: 'partial', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { count: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> acc: array<f32, ${SUMSQ_WG}>;

@compute @workgroup_size(${SUMSQ_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let first = wg.x * u.chunk;
  let end = min(first + u.chunk, u.count);
  var s = 0.0;
  for (var i = first + lid.x; i < end; i += ${SUMSQ_WG}u) { s = fma(x[i], x[i], s); }
  acc[lid.x] = s;
  workgroupBarrier();
  for (var stride = ${SUMSQ_WG / 2}u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { acc[lid.x] += acc[lid.x + stride]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partial[wg.x] = acc[0]; }
}
`,
  };
}

/**
 * sum-partials: out[0] = sum of partial[0..count), strided per invocation in order, then a fixed tree.
 * bindings: u {count}, partial, out ([1])
 * dispatch: (1, 1, 1)
 */
export function sumPartialsKernel(): KernelDef {
  return {
    name: 'sum-partials',
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'partial', kind: 'read' }, { name: 'out', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { count: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> acc: array<f32, ${SUMSQ_WG}>;

@compute @workgroup_size(${SUMSQ_WG})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < u.count; i += ${SUMSQ_WG}u) { s += partial[i]; }
  acc[lid.x] = s;
  workgroupBarrier();
  for (var stride = ${SUMSQ_WG / 2}u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { acc[lid.x] += acc[lid.x + stride]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[0] = acc[0]; }
}
`,
  };
}

/** Workgroups covering `count` invocations of `ADAMW_WG`, folded into y past the per-dimension limit. */
export function adamwWorkgroups(count: number, maxPerDimension = 65535): [number, number, number] {
  const groups = Math.ceil(count / ADAMW_WG);
  return groups <= maxPerDimension ? [groups, 1, 1] : [maxPerDimension, Math.ceil(groups / maxPerDimension), 1];
}

/**
 * adamw: one optimizer step on every float i with kind[i] != padding (padding is left as it is):
 *   g = grad[i] * clip,  clip = min(1, maxNorm / (sqrt(normSq[0]) + 1e-6)) (1 when maxNorm <= 0)
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p = p * (kind == decay ? decay : 1) - stepSize * m / (sqrt(v) / bias2Sqrt + eps)
 * with decay = 1 - lr * weightDecay, stepSize = lr / (1 - beta1^t), bias2Sqrt = sqrt(1 - beta2^t)
 * computed on the host for step t.
 * bindings: u, grad, normSq ([1]), kind (u32 [count]), params, m, v
 * dispatch: adamwWorkgroups(count)
 */
export function adamwKernel(): KernelDef {
  return {
    name: 'adamw',
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'grad', kind: 'read' }, { name: 'normSq', kind: 'read' }, { name: 'kind', kind: 'read' },
      { name: 'params', kind: 'readwrite' }, { name: 'm', kind: 'readwrite' }, { name: 'v', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
struct U { count: u32, beta1: f32, beta2: f32, eps: f32, stepSize: f32, bias2Sqrt: f32, decay: f32, maxNorm: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> normSq: array<f32>;
@group(0) @binding(3) var<storage, read> kind: array<u32>;
@group(0) @binding(4) var<storage, read_write> params: array<f32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(${ADAMW_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${ADAMW_WG}u;
  if (i >= u.count) { return; }
  let k = kind[i];
  if (k == ${PARAM_KIND.padding}u) { return; }
  var clip = 1.0;
  if (u.maxNorm > 0.0) { clip = min(1.0, u.maxNorm / (sqrt(normSq[0]) + 1e-6)); }
  let g = grad[i] * clip;
  let mi = u.beta1 * m[i] + (1.0 - u.beta1) * g;
  let vi = u.beta2 * v[i] + (1.0 - u.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let decay = select(1.0, u.decay, k == ${PARAM_KIND.decay}u);
  params[i] = params[i] * decay - u.stepSize * mi / (sqrt(vi) / u.bias2Sqrt + u.eps);
}
`,
  };
}
