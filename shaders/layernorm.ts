/**
 * LayerNorm over the last dimension: (x - mean) / sqrt(var + 1e-5) * w + b,
 * biased variance, two passes over the row for accuracy.
 */
import { type KernelDef } from '../src/gpu/kernel.ts';
import { type WeightMode, weightBindings, weightSource, weightBindingCount } from './common.ts';

export const LN_WG = 64;

export interface LayerNormOptions {
  mode: WeightMode;
  bias: boolean;
  /** Also write each row's (mean, rstd) for the backward pass. */
  saveStats: boolean;
}

/**
 * layernorm: out[p][r][:] = LN(x[p][r][:]) with weight at wOff, bias at bOff
 * bindings: u, weights, x (read [P][rows][C]), out ([P][rows][C]), stats ([P][rows][2], when saveStats)
 * dispatch: (ceil(rows / 64), 1, points)
 */
export function layerNormKernel(o: LayerNormOptions): KernelDef {
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
