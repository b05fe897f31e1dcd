/**
 * The loss of each position and its weighted mean per point.
 *
 * metric `ce`:  logsumexp(logits) - logits[target], the maximum subtracted first
 * metric `acc`: 1 when the first arg-max of the logits is the target, else 0
 * metric `mse`: sum_v (softmax_v - onehot(target)_v)^2, the "simple error"
 *
 * Each position's value is weighted by mask[n] (1 for every position by
 * default; 0/1 to take chosen positions only, e.g. a single target token);
 * a zero weight contributes exactly 0, even where the value is non-finite.
 */
import { type KernelDef } from '../src/gpu/kernel.ts';

export type Metric = 'ce' | 'acc' | 'mse';
export const METRICS: readonly Metric[] = ['ce', 'acc', 'mse'];

export const LOSS_WG = 64;
export const REDUCE_WG = 64;

/**
 * token-loss: value[p][n] = mask[n] * metric(logits[p][n][:], targets[n])
 * bindings: u {rows, V}, logits ([P][rows][V]), targets (u32 [rows]), mask (f32 [rows]), value ([P][rows])
 * dispatch: (ceil(rows / 64), 1, points)
 */
export function tokenLossKernel(metric: Metric): KernelDef {
  const value = {
    ce: 'log(sum) + mx - logits[base + tgt]',
    acc: 'select(0.0, 1.0, arg == tgt)',
    mse: 'sq',
  }[metric];
  return {
    name: `token-loss/${metric}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'logits', kind: 'read' }, { name: 'targets', kind: 'read' },
      { name: 'mask', kind: 'read' }, { name: 'value', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
struct U { rows: u32, V: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> value: array<f32>;

@compute @workgroup_size(${LOSS_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let n = gid.x;
  if (n >= u.rows) { return; }
  let p = wg.z;
  let base = (p * u.rows + n) * u.V;
  let tgt = targets[n];
  var mx = logits[base];
  var arg = 0u;
  for (var v = 1u; v < u.V; v++) {
    let l = logits[base + v];
    if (l > mx) { mx = l; arg = v; }
  }
  var sum = 0.0;
  for (var v = 0u; v < u.V; v++) { sum += exp(logits[base + v] - mx); }
  ${metric === 'mse' ? `var sq = 0.0;
  for (var v = 0u; v < u.V; v++) {
    let d = exp(logits[base + v] - mx) / sum - select(0.0, 1.0, v == tgt);
    sq += d * d;
  }` : ''}
  let m = mask[n];
  value[p * u.rows + n] = select(0.0, m * (${value}), m != 0.0);
}
`,
  };
}

/**
 * reduce-mean: out[outOffset + p] = sum_n value[p][n] * invWeight, for p < count,
 * summed in a fixed tree so a run is reproducible bit for bit.
 * bindings: u {rows, count, outOffset, invWeight(f32 bits)}, value ([P][rows]), out (f32 [...])
 * dispatch: (points, 1, 1), workgroup 64
 */
export function reduceMeanKernel(): KernelDef {
  return {
    name: 'reduce-mean',
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'value', kind: 'read' }, { name: 'out', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { rows: u32, count: u32, outOffset: u32, invWeight: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> value: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, ${REDUCE_WG}>;

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let p = wg.x;
  var s = 0.0;
  for (var n = lid.x; n < u.rows; n += ${REDUCE_WG}u) { s += value[p * u.rows + n]; }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var stride = ${REDUCE_WG / 2}u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
    workgroupBarrier();
  }
  if (lid.x == 0u && p < u.count) { out[u.outOffset + p] = partial[0] * u.invWeight; }
}
`,
  };
}

/**
 * cross-entropy-backward: the gradient of the loss sum_n w_n ce_n / sum(w) with respect to the logits,
 *   dlogits[n][v] = mask[n] * invWeight * (softmax(logits[n])_v - onehot(targets[n])_v),
 * exactly 0 on rows of weight 0 (even where the logits are not finite).
 * bindings: u {rows, V, invWeight}, logits ([rows][V]), targets, mask, dlogits ([rows][V])
 * dispatch: (ceil(rows / 64), 1, 1)
 */
export function crossEntropyBackwardKernel(): KernelDef {
  return {
    name: 'cross-entropy-backward',
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'logits', kind: 'read' }, { name: 'targets', kind: 'read' },
      { name: 'mask', kind: 'read' }, { name: 'dlogits', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
struct U { rows: u32, V: u32, invWeight: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(${LOSS_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  if (n >= u.rows) { return; }
  let base = n * u.V;
  let tgt = targets[n];
  let coef = mask[n] * u.invWeight;
  var mx = logits[base];
  for (var v = 1u; v < u.V; v++) { mx = max(mx, logits[base + v]); }
  var sum = 0.0;
  for (var v = 0u; v < u.V; v++) { sum += exp(logits[base + v] - mx); }
  let inv = 1.0 / sum;
  for (var v = 0u; v < u.V; v++) {
    let g = coef * (exp(logits[base + v] - mx) * inv - select(0.0, 1.0, v == tgt));
    dlogits[base + v] = select(0.0, g, coef != 0.0);
  }
}
`,
  };
}
