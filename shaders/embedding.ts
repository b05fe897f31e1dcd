/**
 * Token + position embedding, x = wte[idx] + wpe[pos] (SPEC section 2).
 */
import { type KernelDef } from '../src/gpu/kernel.ts';
import { type WeightMode, weightBindings, weightSource, weightBindingCount } from './common.ts';

export const EMBED_WG = 64;

/**
 * embedding: x[p][n][c] = w(wte + idx[n]*C + c) + w(wpe + (n % T)*C + c)
 * bindings: u (uniform), weights, idx (u32 [N]), x (out [P][N][C])
 * dispatch: (ceil(N*C / 64), 1, points)
 */
export function embeddingKernel(mode: WeightMode): KernelDef {
  const wb = weightBindingCount(mode);
  return {
    name: `embedding/${mode}`,
    bindings: [{ name: 'u', kind: 'uniform' }, ...weightBindings(mode), { name: 'idx', kind: 'read' }, { name: 'x', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { tokens: u32, C: u32, T: u32, wteOff: u32, wpeOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
${weightSource(mode, 1)}
@group(0) @binding(${wb + 1}) var<storage, read> idx: array<u32>;
@group(0) @binding(${wb + 2}) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(${EMBED_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let e = gid.x;
  let perPoint = u.tokens * u.C;
  if (e >= perPoint) { return; }
  let p = wg.z;
  let ab = pointCoords(p);
  let n = e / u.C;
  let c = e % u.C;
  let pos = n % u.T;
  x[p * perPoint + e] = w(u.wteOff + idx[n] * u.C + c, ab) + w(u.wpeOff + pos * u.C + c, ab);
}
`,
  };
}
