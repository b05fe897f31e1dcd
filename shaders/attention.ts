/**
 * Causal multi-head self-attention, one query row per invocation, with an
 * online softmax (running maximum and sum, Milakov & Gimelshein 2018) so the
 * T x T matrix is never stored; the head dimension is written out as
 * separate variables (SwiftShader turns private arrays indexed in loops
 * into slow per-lane memory accesses):
 *
 *   y[p][b,t][h*hs:(h+1)*hs] = sum_{s<=t} softmax_s(q_t . k_s / sqrt(hs)) v_s
 *
 * qkv rows are [q | k | v] of width 3C (the c_attn output). With `saveLse`
 * the log-sum-exp of each row is written, from which the backward pass
 * recomputes the probabilities.
 */
import { type KernelDef, type BindingDef } from '../src/gpu/kernel.ts';
import { laneElement, laneLoads } from './common.ts';

export const ATTN_WG = 64;

/**
 * attention
 * bindings: u {B, T, C, nHead}, qkv ([P][B*T][3C]), y ([P][B*T][C]), lse ([P][B][nHead][T], when saveLse)
 * dispatch: (ceil(B*nHead*T / 64), 1, points)
 */
export function attentionKernel(headSize: number, saveLse: boolean): KernelDef {
  const bindings: BindingDef[] = [{ name: 'u', kind: 'uniform' }, { name: 'qkv', kind: 'read' }, { name: 'y', kind: 'readwrite' }];
  if (saveLse) bindings.push({ name: 'lse', kind: 'readwrite' });
  return {
    name: `attention/hs${headSize}${saveLse ? '/lse' : ''}`,
    bindings,
    code: /* wgsl */ `
const HS: u32 = ${headSize}u;
struct U { B: u32, T: u32, C: u32, nHead: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${saveLse ? '@group(0) @binding(3) var<storage, read_write> lse: array<f32>;' : ''}

@compute @workgroup_size(${ATTN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let rowsPerPoint = u.B * u.nHead * u.T;
  let g = gid.x;
  if (g >= rowsPerPoint) { return; }
  let p = wg.z;
  let t = g % u.T;
  let h = (g / u.T) % u.nHead;
  let b = g / (u.T * u.nHead);
  let C3 = 3u * u.C;
  let seq = (p * u.B + b) * u.T;
  let qBase = (seq + t) * C3 + h * HS;
  let scale = inverseSqrt(${headSize}.0);
${unroll(headSize, (i) => `let q${i} = qkv[qBase + ${i}u] * scale;`)}
${unroll(headSize, (i) => `var acc${i} = 0.0;`)}
  var m = -3.0e38;
  var l = 0.0;
  for (var s = 0u; s <= t; s++) {
    let kBase = (seq + s) * C3 + u.C + h * HS;
    let vBase = kBase + u.C;
    let score = ${dot(headSize, (i) => `q${i}`, (i) => `qkv[kBase + ${i}u]`)};
    let mNew = max(m, score);
    let corr = exp(m - mNew);
    let e = exp(score - mNew);
    l = l * corr + e;
${unroll(headSize, (i) => `  acc${i} = fma(acc${i}, corr, e * qkv[vBase + ${i}u]);`)}
    m = mNew;
  }
  let yBase = (seq + t) * u.C + h * HS;
  let inv = 1.0 / l;
${unroll(headSize, (i) => `y[yBase + ${i}u] = acc${i} * inv;`)}
  ${saveLse ? 'lse[p * rowsPerPoint + g] = m + log(l);' : ''}
}
`,
  };
}

// ---------------------------------------------------------------- subgroup

/** Queries per workgroup of `attentionSubgroupKernel`: one subgroup of SwiftShader's 4 lanes. */
export const ATTN_SG_QUERIES = 4;

/** Workgroups along x of `attentionSubgroupKernel` for one point. */
export function attentionSubgroupWorkgroups(B: number, nHead: number, T: number): number {
  return B * nHead * Math.ceil(T / ATTN_SG_QUERIES);
}

/**
 * A head's row of HS floats spread over the 4 lanes of a subgroup, in units
 * of V floats (vec4 where HS allows): lane l holds elements V*(4j + l) ..
 * + V-1 in its load j, and `laneElement(name, i, V)` gives element i to all.
 */
function headLanes(HS: number): {
  V: 1 | 4;
  /** The WGSL type of a unit. */
  unit: string;
  /** `let NAMEj = ARR[BASE + the lane's unit j]` for each load j (BASE in units). */
  load: (name: string, arr: string, base: string) => string;
  /** Element i of the row at BASE (in units) of ARR, read by each lane itself. */
  at: (arr: string, base: string, i: number) => string;
} {
  const V: 1 | 4 = HS % 4 === 0 ? 4 : 1;
  return {
    V,
    unit: V === 4 ? 'vec4f' : 'f32',
    load: (name, arr, base) => laneLoads(name, HS, V, (unit) => `${arr}[${base} + ${unit}]`, '    '),
    at: (arr, base, i) => (V === 4 ? `${arr}[${base} + ${Math.floor(i / 4)}u][${i % 4}]` : `${arr}[${base} + ${i}u]`),
  };
}

/**
 * attention (subgroup): the same result as `attentionKernel`, bit for bit,
 * for devices with subgroups (SwiftShader). There every lane's key and
 * value loads are per-lane gathers although the 4 lanes of a subgroup, 4
 * queries of one head, read the same key: here each workgroup is one
 * subgroup of 4 consecutive queries, each lane loads a quarter of key s
 * and of value s (as vec4 where the head size allows), and the dot product
 * and the weighted sum take the rest from the other lanes with
 * subgroupBroadcast. The loop runs to the subgroup's last query (a bound
 * the whole subgroup shares, as subgroupBroadcast needs); a lane past its
 * own query's causal limit keeps its running softmax as it was (by select,
 * so that even an infinite key or value it must not see leaves no NaN), so
 * every lane ends with the same bits as the per-query kernel.
 * bindings: as attentionKernel
 * dispatch: (attentionSubgroupWorkgroups(B, nHead, T), 1, points)
 */
export function attentionSubgroupKernel(headSize: number, saveLse: boolean): KernelDef {
  const HS = headSize;
  const { V, unit, load: loadFrom, at: atIn } = headLanes(HS);
  const bindings: BindingDef[] = [{ name: 'u', kind: 'uniform' }, { name: 'qkv', kind: 'read' }, { name: 'y', kind: 'readwrite' }];
  if (saveLse) bindings.push({ name: 'lse', kind: 'readwrite' });
  const load = (name: string, base: string): string => loadFrom(name, 'qkvv', base);
  const at = (base: string, i: number): string => atIn('qkvv', base, i);
  return {
    name: `attention-subgroup/hs${HS}${saveLse ? '/lse' : ''}`,
    bindings,
    code: /* wgsl */ `
enable subgroups;
const HS: u32 = ${HS}u;
struct U { B: u32, T: u32, C: u32, nHead: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkvv: array<${unit}>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${saveLse ? '@group(0) @binding(3) var<storage, read_write> lse: array<f32>;' : ''}

@compute @workgroup_size(${ATTN_SG_QUERIES})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) sl: u32) {
  let lane = sl % 4u;
  let tiles = (u.T + 3u) / 4u;
  let p = wg.z;
  let t0 = (wg.x % tiles) * 4u;
  let h = (wg.x / tiles) % u.nHead;
  let b = wg.x / (tiles * u.nHead);
  let t = t0 + lane;
  // A lane past the sequence's end computes a copy of the last query and writes nothing.
  let tq = min(t, u.T - 1u);
  let C3 = 3u * u.C;
  let seq = (p * u.B + b) * u.T;
  let qBase = ((seq + tq) * C3 + h * HS) / ${V}u;
  let scale = inverseSqrt(${HS}.0);
${unroll(HS, (i) => `let q${i} = ${at('qBase', i)} * scale;`)}
${unroll(HS, (i) => `var acc${i} = 0.0;`)}
  var m = -3.0e38;
  var l = 0.0;
  let sEnd = min(t0 + 4u, u.T);
  for (var s = 0u; s < sEnd; s++) {
    let live = s <= tq;
    let kBase = ((seq + s) * C3 + u.C + h * HS) / ${V}u;
    let vBase = kBase + u.C / ${V}u;
${load('kq', 'kBase')}
${load('vq', 'vBase')}
    let score = ${dot(HS, (i) => `q${i}`, (i) => laneElement('kq', i, V))};
    let mNew = select(m, max(m, score), live);
    let corr = exp(m - mNew);
    let e = select(0.0, exp(score - mNew), live);
    l = select(l, l * corr + e, live);
${unroll(HS, (i) => `  acc${i} = select(acc${i}, fma(acc${i}, corr, e * ${laneElement('vq', i, V)}), live);`)}
    m = mNew;
  }
  if (t < u.T) {
    let yBase = (seq + t) * u.C + h * HS;
    let inv = 1.0 / l;
${unroll(HS, (i) => `  y[yBase + ${i}u] = acc${i} * inv;`)}
    ${saveLse ? 'lse[((p * u.B + b) * u.nHead + h) * u.T + t] = m + log(l);' : ''}
  }
}
`,
  };
}

// ---------------------------------------------------------------- backward
//
// With p_ts = exp(scale q_t . k_s - lse_t) recomputed from the saved lse,
// dp_ts = dy_t . v_s and D_t = sum_s p_ts dp_ts = dy_t . y_t (FlashAttention-2):
//   dz_ts = p_ts (dp_ts - D_t)
//   dq_t = scale sum_{s<=t} dz_ts k_s,  dk_s = scale sum_{t>=s} dz_ts q_t,  dv_s = sum_{t>=s} p_ts dy_t
// Queries and keys get one invocation each, so no two invocations write the
// same element and every sum runs in a fixed order. The head dimension is
// unrolled into separate variables: weak shader compilers (SwiftShader)
// spill a dynamically indexed private array to memory.

/** WGSL statements `f(i)` for i in 0..n, one per line. */
function unroll(n: number, f: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => `  ${f(i)}`).join('\n');
}

/** `a0 * b0 + a1 * b1 + ...` as a chain of fma, for a dot product over the head. */
function dot(n: number, a: (i: number) => string, b: (i: number) => string): string {
  let s = '0.0';
  for (let i = 0; i < n; i++) s = `fma(${a(i)}, ${b(i)}, ${s})`;
  return s;
}

const ATTN_BACKWARD_HEADER = /* wgsl */ `
struct U { B: u32, T: u32, C: u32, nHead: u32 }
@group(0) @binding(0) var<uniform> u: U;
`;

/**
 * attention-backward-query: dq rows of dqkv and D_t = dy_t . y_t (to dsum) for each (b, h, t).
 * bindings: u, qkv ([B*T][3C]), lse ([B][nHead][T]), y ([B*T][C]), dy ([B*T][C]), dqkv ([B*T][3C]), dsum ([B][nHead][T])
 * dispatch: (ceil(B*nHead*T / 64), 1, 1)
 */
export function attentionBackwardQueryKernel(headSize: number): KernelDef {
  const HS = headSize;
  return {
    name: `attention-backward-query/hs${HS}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'qkv', kind: 'read' }, { name: 'lse', kind: 'read' }, { name: 'y', kind: 'read' },
      { name: 'dy', kind: 'read' }, { name: 'dqkv', kind: 'readwrite' }, { name: 'dsum', kind: 'readwrite' },
    ],
    code: /* wgsl */ `${ATTN_BACKWARD_HEADER}
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(6) var<storage, read_write> dsum: array<f32>;

@compute @workgroup_size(${ATTN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  if (g >= u.B * u.nHead * u.T) { return; }
  let t = g % u.T;
  let h = (g / u.T) % u.nHead;
  let b = g / (u.T * u.nHead);
  let C3 = 3u * u.C;
  let seq = b * u.T;
  let qBase = (seq + t) * C3 + h * ${HS}u;
  let yBase = (seq + t) * u.C + h * ${HS}u;
  let scale = inverseSqrt(${HS}.0);
${unroll(HS, (i) => `let q${i} = qkv[qBase + ${i}u] * scale;`)}
${unroll(HS, (i) => `let d${i} = dy[yBase + ${i}u];`)}
${unroll(HS, (i) => `var dq${i} = 0.0;`)}
  let D = ${dot(HS, (i) => `d${i}`, (i) => `y[yBase + ${i}u]`)};
  let l = lse[g];
  for (var s = 0u; s <= t; s++) {
    let kBase = (seq + s) * C3 + u.C + h * ${HS}u;
    let vBase = kBase + u.C;
${unroll(HS, (i) => `  let k${i} = qkv[kBase + ${i}u];`)}
    let score = ${dot(HS, (i) => `q${i}`, (i) => `k${i}`)};
    let dp = ${dot(HS, (i) => `d${i}`, (i) => `qkv[vBase + ${i}u]`)};
    let dz = exp(score - l) * (dp - D);
${unroll(HS, (i) => `  dq${i} = fma(dz, k${i}, dq${i});`)}
  }
${unroll(HS, (i) => `dqkv[qBase + ${i}u] = dq${i} * scale;`)}
  dsum[g] = D;
}
`,
  };
}

/**
 * attention-backward-key-value: dk and dv rows of dqkv for each (b, h, s).
 * bindings: u, qkv, lse, dy, dsum (from the query kernel), dqkv
 * dispatch: (ceil(B*nHead*T / 64), 1, 1)
 */
export function attentionBackwardKeyValueKernel(headSize: number): KernelDef {
  const HS = headSize;
  return {
    name: `attention-backward-key-value/hs${HS}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'qkv', kind: 'read' }, { name: 'lse', kind: 'read' }, { name: 'dy', kind: 'read' },
      { name: 'dsum', kind: 'read' }, { name: 'dqkv', kind: 'readwrite' },
    ],
    code: /* wgsl */ `${ATTN_BACKWARD_HEADER}
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> dsum: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;

@compute @workgroup_size(${ATTN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  if (g >= u.B * u.nHead * u.T) { return; }
  let s = g % u.T;
  let h = (g / u.T) % u.nHead;
  let b = g / (u.T * u.nHead);
  let C3 = 3u * u.C;
  let seq = b * u.T;
  let kBase = (seq + s) * C3 + u.C + h * ${HS}u;
  let vBase = kBase + u.C;
  let scale = inverseSqrt(${HS}.0);
${unroll(HS, (i) => `let k${i} = qkv[kBase + ${i}u] * scale;`)}
${unroll(HS, (i) => `let v${i} = qkv[vBase + ${i}u];`)}
${unroll(HS, (i) => `var dk${i} = 0.0;`)}
${unroll(HS, (i) => `var dv${i} = 0.0;`)}
  let row0 = g - s;
  for (var t = s; t < u.T; t++) {
    let qBase = (seq + t) * C3 + h * ${HS}u;
    let yBase = (seq + t) * u.C + h * ${HS}u;
${unroll(HS, (i) => `  let q${i} = qkv[qBase + ${i}u];`)}
${unroll(HS, (i) => `  let d${i} = dy[yBase + ${i}u];`)}
    let score = ${dot(HS, (i) => `q${i}`, (i) => `k${i}`)};
    let dp = ${dot(HS, (i) => `d${i}`, (i) => `v${i}`)};
    let p = exp(score - lse[row0 + t]);
    let dz = p * (dp - dsum[row0 + t]);
${unroll(HS, (i) => `  dk${i} = fma(dz, q${i}, dk${i});`)}
${unroll(HS, (i) => `  dv${i} = fma(p, d${i}, dv${i});`)}
  }
${unroll(HS, (i) => `dqkv[kBase + ${i}u] = dk${i} * scale;`)}
${unroll(HS, (i) => `dqkv[vBase + ${i}u] = dv${i};`)}
}
`,
  };
}

// ---------------------------------------------------------------- backward (subgroup)

/** The opening of both subgroup backward kernels: lane, tile, head, sequence of workgroup wg. */
function backwardSubgroupPrologue(HS: number, first: string): string {
  return /* wgsl */ `  let lane = sl % 4u;
  let tiles = (u.T + 3u) / 4u;
  let ${first} = (wg.x % tiles) * 4u;
  let h = (wg.x / tiles) % u.nHead;
  let b = wg.x / (tiles * u.nHead);
  let C3 = 3u * u.C;
  let seq = b * u.T;
  let row0 = (b * u.nHead + h) * u.T;
  let scale = inverseSqrt(${HS}.0);`;
}

/**
 * attention-backward-query (subgroup): attentionBackwardQueryKernel's dq and
 * D, bit for bit, for devices with subgroups (SwiftShader), the way
 * attentionSubgroupKernel does the forward: one subgroup of 4 consecutive
 * queries of a head per workgroup, each lane loading a quarter of key s and
 * of value s and taking the rest from the other lanes; a lane past its
 * query's causal limit leaves its sums as they are (by select).
 * bindings: as attentionBackwardQueryKernel
 * dispatch: (attentionSubgroupWorkgroups(B, nHead, T), 1, 1)
 */
export function attentionBackwardQuerySubgroupKernel(headSize: number): KernelDef {
  const HS = headSize;
  const { V, unit, load, at } = headLanes(HS);
  return {
    name: `attention-backward-query-subgroup/hs${HS}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'qkv', kind: 'read' }, { name: 'lse', kind: 'read' }, { name: 'y', kind: 'read' },
      { name: 'dy', kind: 'read' }, { name: 'dqkv', kind: 'readwrite' }, { name: 'dsum', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
enable subgroups;
${ATTN_BACKWARD_HEADER}
@group(0) @binding(1) var<storage, read> qkvv: array<${unit}>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(6) var<storage, read_write> dsum: array<f32>;

@compute @workgroup_size(${ATTN_SG_QUERIES})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) sl: u32) {
${backwardSubgroupPrologue(HS, 't0')}
  let t = t0 + lane;
  // A lane past the sequence's end computes a copy of the last query and writes nothing.
  let tq = min(t, u.T - 1u);
  let qBase = (seq + tq) * C3 + h * ${HS}u;
  let yBase = (seq + tq) * u.C + h * ${HS}u;
${unroll(HS, (i) => `let q${i} = ${at('qkvv', `qBase / ${V}u`, i)} * scale;`)}
${unroll(HS, (i) => `let d${i} = dy[yBase + ${i}u];`)}
${unroll(HS, (i) => `var dq${i} = 0.0;`)}
  let D = ${dot(HS, (i) => `d${i}`, (i) => `y[yBase + ${i}u]`)};
  let l = lse[row0 + tq];
  let sEnd = min(t0 + 4u, u.T);
  for (var s = 0u; s < sEnd; s++) {
    let live = s <= tq;
    let kBase = ((seq + s) * C3 + u.C + h * ${HS}u) / ${V}u;
    let vBase = kBase + u.C / ${V}u;
${load('kq', 'qkvv', 'kBase')}
${load('vq', 'qkvv', 'vBase')}
${unroll(HS, (i) => `  let k${i} = ${laneElement('kq', i, V)};`)}
    let score = ${dot(HS, (i) => `q${i}`, (i) => `k${i}`)};
    let dp = ${dot(HS, (i) => `d${i}`, (i) => laneElement('vq', i, V))};
    let dz = exp(score - l) * (dp - D);
${unroll(HS, (i) => `  dq${i} = select(dq${i}, fma(dz, k${i}, dq${i}), live);`)}
  }
  if (t < u.T) {
${unroll(HS, (i) => `  dqkv[qBase + ${i}u] = dq${i} * scale;`)}
    dsum[row0 + t] = D;
  }
}
`,
  };
}

/**
 * attention-backward-key-value (subgroup): attentionBackwardKeyValueKernel's
 * dk and dv, bit for bit, 4 consecutive keys of a head per subgroup sharing
 * each query's and output gradient's loads; the loop runs from the
 * subgroup's first key, a lane before its own key leaving its sums as they
 * are (by select).
 * bindings: as attentionBackwardKeyValueKernel
 * dispatch: (attentionSubgroupWorkgroups(B, nHead, T), 1, 1)
 */
export function attentionBackwardKeyValueSubgroupKernel(headSize: number): KernelDef {
  const HS = headSize;
  const { V, unit, load, at } = headLanes(HS);
  return {
    name: `attention-backward-key-value-subgroup/hs${HS}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'qkv', kind: 'read' }, { name: 'lse', kind: 'read' }, { name: 'dy', kind: 'read' },
      { name: 'dsum', kind: 'read' }, { name: 'dqkv', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
enable subgroups;
${ATTN_BACKWARD_HEADER}
@group(0) @binding(1) var<storage, read> qkvv: array<${unit}>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> dyv: array<${unit}>;
@group(0) @binding(4) var<storage, read> dsum: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;

@compute @workgroup_size(${ATTN_SG_QUERIES})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) sl: u32) {
${backwardSubgroupPrologue(HS, 's0')}
  let s = s0 + lane;
  // A lane past the sequence's end computes a copy of the last key and writes nothing.
  let sk = min(s, u.T - 1u);
  let kBase = (seq + sk) * C3 + u.C + h * ${HS}u;
  let vBase = kBase + u.C;
${unroll(HS, (i) => `let k${i} = ${at('qkvv', `kBase / ${V}u`, i)} * scale;`)}
${unroll(HS, (i) => `let v${i} = ${at('qkvv', `vBase / ${V}u`, i)};`)}
${unroll(HS, (i) => `var dk${i} = 0.0;`)}
${unroll(HS, (i) => `var dv${i} = 0.0;`)}
  for (var t = s0; t < u.T; t++) {
    let live = t >= sk;
    let qBase = ((seq + t) * C3 + h * ${HS}u) / ${V}u;
    let yBase = ((seq + t) * u.C + h * ${HS}u) / ${V}u;
${load('qq', 'qkvv', 'qBase')}
${load('dd', 'dyv', 'yBase')}
${unroll(HS, (i) => `  let q${i} = ${laneElement('qq', i, V)};`)}
${unroll(HS, (i) => `  let d${i} = ${laneElement('dd', i, V)};`)}
    let score = ${dot(HS, (i) => `q${i}`, (i) => `k${i}`)};
    let dp = ${dot(HS, (i) => `d${i}`, (i) => `v${i}`)};
    let p = exp(score - lse[row0 + t]);
    let dz = p * (dp - dsum[row0 + t]);
${unroll(HS, (i) => `  dk${i} = select(dk${i}, fma(dz, q${i}, dk${i}), live);`)}
${unroll(HS, (i) => `  dv${i} = select(dv${i}, fma(p, d${i}, dv${i}), live);`)}
  }
  if (s < u.T) {
${unroll(HS, (i) => `  dqkv[kBase + ${i}u] = dk${i} * scale;`)}
${unroll(HS, (i) => `  dqkv[vBase + ${i}u] = dv${i};`)}
  }
}
`,
  };
}
