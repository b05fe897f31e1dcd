/**
 * Causal multi-head self-attention, one query row per invocation, with an
 * online softmax (running maximum and sum, Milakov & Gimelshein 2018) so the
 * T x T matrix is never stored:
 *
 *   y[p][b,t][h*hs:(h+1)*hs] = sum_{s<=t} softmax_s(q_t . k_s / sqrt(hs)) v_s
 *
 * qkv rows are [q | k | v] of width 3C (the c_attn output). With `saveLse`
 * the log-sum-exp of each row is written, from which the backward pass
 * recomputes the probabilities.
 */
import { type KernelDef, type BindingDef } from '../src/gpu/kernel.ts';

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
  let scale = inverseSqrt(f32(HS));
  var q: array<f32, HS>;
  var acc: array<f32, HS>;
  for (var i = 0u; i < HS; i++) { q[i] = qkv[qBase + i] * scale; acc[i] = 0.0; }
  var m = -3.0e38;
  var l = 0.0;
  for (var s = 0u; s <= t; s++) {
    let kBase = (seq + s) * C3 + u.C + h * HS;
    var score = 0.0;
    for (var i = 0u; i < HS; i++) { score = fma(q[i], qkv[kBase + i], score); }
    let mNew = max(m, score);
    let corr = exp(m - mNew);
    let e = exp(score - mNew);
    l = l * corr + e;
    let vBase = kBase + u.C;
    for (var i = 0u; i < HS; i++) { acc[i] = acc[i] * corr + e * qkv[vBase + i]; }
    m = mNew;
  }
  let yBase = (seq + t) * u.C + h * HS;
  let inv = 1.0 / l;
  for (var i = 0u; i < HS; i++) { y[yBase + i] = acc[i] * inv; }
  ${saveLse ? 'lse[p * rowsPerPoint + g] = m + log(l);' : ''}
}
`,
  };
}
