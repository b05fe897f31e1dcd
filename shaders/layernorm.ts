/**
 * LayerNorm over the last dimension: (x - mean) / sqrt(var + 1e-5) * w + b,
 * biased variance, two passes over the row for accuracy.
 */
import { type KernelDef } from '../src/gpu/kernel.ts';
import { type WeightMode, laneElement, laneLoads, weightBindings, weightSource, weightBindingCount } from './common.ts';

export const LN_WG = 64;

export interface LayerNormOptions {
  mode: WeightMode;
  bias: boolean;
  /** Also write each row's (mean, rstd) for the backward pass. */
  saveStats: boolean;
  /**
   * With this C (compile time), the subgroup kernel (`layerNormSubgroupKernel`,
   * needs the device's subgroups); without it, the generic one.
   */
  subgroupC?: number;
}

/**
 * layernorm: out[p][r][:] = LN(x[p][r][:]) with weight at wOff, bias at bOff
 * bindings: u, weights, x (read [P][rows][C]), out ([P][rows][C]), stats ([P][rows][2], when saveStats)
 * dispatch: (ceil(rows / 64), 1, points)
 */
export function layerNormKernel(o: LayerNormOptions): KernelDef {
  if (o.subgroupC !== undefined) return layerNormSubgroupKernel(o, o.subgroupC);
  const wb = weightBindingCount(o.mode);
  const bindings = [{ name: 'u', kind: 'uniform' as const }, ...weightBindings(o.mode), { name: 'x', kind: 'read' as const }, { name: 'out', kind: 'readwrite' as const }];
  if (o.saveStats) bindings.push({ name: 'stats', kind: 'readwrite' });
  return {
    name: `layernorm/${o.mode}${o.bias ? '' : '/nobias'}${o.saveStats ? '/stats' : ''}`,
    bindings,
    code: /* wgsl */ `
struct U { rows: u32, C: u32, wOff: u32, bOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
${weightSource(o.mode, 1)}
@group(0) @binding(${wb + 1}) var<storage, read> x: array<f32>;
@group(0) @binding(${wb + 2}) var<storage, read_write> out: array<f32>;
${o.saveStats ? `@group(0) @binding(${wb + 3}) var<storage, read_write> stats: array<vec2f>;` : ''}

@compute @workgroup_size(${LN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let r = gid.x;
  if (r >= u.rows) { return; }
  let p = wg.z;
  let ab = pointCoords(p);
  let row = p * u.rows + r;
  let base = row * u.C;
  var mean = 0.0;
  for (var c = 0u; c < u.C; c++) { mean += x[base + c]; }
  mean /= f32(u.C);
  var variance = 0.0;
  for (var c = 0u; c < u.C; c++) { let d = x[base + c] - mean; variance += d * d; }
  variance /= f32(u.C);
  let rstd = inverseSqrt(variance + 1e-5);
  for (var c = 0u; c < u.C; c++) {
    out[base + c] = (x[base + c] - mean) * rstd * w(u.wOff + c, ab)${o.bias ? ' + w(u.bOff + c, ab)' : ''};
  }
  ${o.saveStats ? 'stats[row] = vec2f(mean, rstd);' : ''}
}
`,
  };
}

/**
 * layernorm (subgroup): the same result as the generic kernel, bit for bit,
 * for a C known at compile time, on devices with subgroups (SwiftShader).
 * There the generic kernel's three loops over the row are per-lane gathers,
 * and so are its six reads per element of the weight and bias of the point
 * (theta, d1, d2 each), although all lanes read the same weight. Here each
 * invocation reads its row once into registers (the loops unrolled), and
 * each lane of a subgroup forms a quarter of the weights and biases (as vec4
 * where C allows) that the others take with subgroupBroadcast.
 * bindings, dispatch: as layerNormKernel
 */
function layerNormSubgroupKernel(o: LayerNormOptions, C: number): KernelDef {
  const wb = weightBindingCount(o.mode);
  const bindings = [{ name: 'u', kind: 'uniform' as const }, ...weightBindings(o.mode), { name: 'x', kind: 'read' as const }, { name: 'out', kind: 'readwrite' as const }];
  if (o.saveStats) bindings.push({ name: 'stats', kind: 'readwrite' });
  const V: 1 | 4 = C % 4 === 0 ? 4 : 1;
  const cs = [...Array(C).keys()];
  const form = (name: string, off: string): string =>
    laneLoads(name, C, V, (unit) => (V === 4 ? `w4(${off} / 4u + ${unit}, ab)` : `w(${off} + ${unit}, ab)`), '  ');
  return {
    name: `layernorm-subgroup/c${C}/${o.mode}${o.bias ? '' : '/nobias'}${o.saveStats ? '/stats' : ''}`,
    bindings,
    code: /* wgsl */ `
enable subgroups;
struct U { rows: u32, C: u32, wOff: u32, bOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
${weightSource(o.mode, 1, V === 4)}
@group(0) @binding(${wb + 1}) var<storage, read> x: array<f32>;
@group(0) @binding(${wb + 2}) var<storage, read_write> out: array<f32>;
${o.saveStats ? `@group(0) @binding(${wb + 3}) var<storage, read_write> stats: array<vec2f>;` : ''}

@compute @workgroup_size(${LN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) sl: u32) {
  let lane = sl % 4u;
  let r = gid.x;
  let p = wg.z;
  let ab = pointCoords(p);
  // A lane past the last row repeats it (its lanes' weights are still needed) and writes nothing.
  let row = p * u.rows + min(r, u.rows - 1u);
  let base = row * ${C}u;
${cs.map((c) => `  let x${c} = x[base + ${c}u];`).join('\n')}
  var mean = 0.0;
${cs.map((c) => `  mean += x${c};`).join('\n')}
  // Divided by the uniform, not the constant: a compiler may turn x / 48.0 into x * (1 / 48.0), which rounds differently.
  mean /= f32(u.C);
  var variance = 0.0;
${cs.map((c) => `  { let d = x${c} - mean; variance += d * d; }`).join('\n')}
  variance /= f32(u.C);
  let rstd = inverseSqrt(variance + 1e-5);
${form('g', 'u.wOff')}
${o.bias ? form('bq', 'u.bOff') : ''}
${cs.map((c) => `  let o${c} = (x${c} - mean) * rstd * ${laneElement('g', c, V)}${o.bias ? ` + ${laneElement('bq', c, V)}` : ''};`).join('\n')}
  if (r < u.rows) {
${cs.map((c) => `    out[base + ${c}u] = o${c};`).join('\n')}
    ${o.saveStats ? 'stats[row] = vec2f(mean, rstd);' : ''}
  }
}
`,
  };
}

// ---------------------------------------------------------------- backward

/**
 * layernorm-backward (llm.c layernorm_backward), from the saved (mean, rstd):
 * with n = (x - mean) * rstd and dn = dout * w,
 *   dx[r][c] (+)= rstd * (dn - mean_c(dn) - n * mean_c(dn * n))
 * `accumulate` adds to dx: the residual stream's gradient flows past the
 * LayerNorm unchanged, and this adds the branch's part to it.
 * bindings: u {rows, C, wOff}, theta, dout ([rows][C]), x ([rows][C]), stats ([rows] vec2 mean, rstd), dx ([rows][C])
 * dispatch: (ceil(rows / 64), 1, 1)
 */
export function layerNormBackwardKernel(accumulate: boolean): KernelDef {
  return {
    name: `layernorm-backward${accumulate ? '/acc' : ''}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'theta', kind: 'read' }, { name: 'dout', kind: 'read' },
      { name: 'x', kind: 'read' }, { name: 'stats', kind: 'read' }, { name: 'dx', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
struct U { rows: u32, C: u32, wOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(${LN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= u.rows) { return; }
  let base = r * u.C;
  let mean = stats[r].x;
  let rstd = stats[r].y;
  var dnMean = 0.0;
  var dnNormMean = 0.0;
  for (var c = 0u; c < u.C; c++) {
    let dn = dout[base + c] * theta[u.wOff + c];
    dnMean += dn;
    dnNormMean += dn * (x[base + c] - mean) * rstd;
  }
  dnMean /= f32(u.C);
  dnNormMean /= f32(u.C);
  for (var c = 0u; c < u.C; c++) {
    let n = (x[base + c] - mean) * rstd;
    let g = rstd * (dout[base + c] * theta[u.wOff + c] - dnMean - n * dnNormMean);
    dx[base + c] = ${accumulate ? 'dx[base + c] + ' : ''}g;
  }
}
`,
  };
}

/**
 * layernorm-param-grad: dw[c] = sum_r dout[r][c] * n[r][c], db[c] = sum_r dout[r][c],
 * over the rows of slice z, [z*rPer, (z+1)*rPer), in order; written to
 * grad[wOff + z*stride + c] (and grad[bOff + z*stride + c]): with one slice the
 * gradient itself, with more the partial sums for `sumSlicesKernel`.
 * bindings: u {rows, C, wOff, bOff, rPer, stride}, dout, x, stats, grad
 * dispatch: (ceil(C / 64), slices, 1)
 */
export function layerNormParamGradKernel(bias: boolean): KernelDef {
  return {
    name: `layernorm-param-grad${bias ? '' : '/nobias'}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'dout', kind: 'read' }, { name: 'x', kind: 'read' },
      { name: 'stats', kind: 'read' }, { name: 'grad', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
struct U { rows: u32, C: u32, wOff: u32, bOff: u32, rPer: u32, stride: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2f>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(${LN_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let first = gid.y * u.rPer;
  let end = min(first + u.rPer, u.rows);
  var dw = 0.0;
  ${bias ? 'var db = 0.0;' : ''}
  for (var r = first; r < end; r++) {
    let g = dout[r * u.C + c];
    dw = fma(g, (x[r * u.C + c] - stats[r].x) * stats[r].y, dw);
    ${bias ? 'db += g;' : ''}
  }
  grad[u.wOff + gid.y * u.stride + c] = dw;
  ${bias ? 'grad[u.bOff + gid.y * u.stride + c] = db;' : ''}
}
`,
  };
}
