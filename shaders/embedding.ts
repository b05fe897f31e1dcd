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

// ---------------------------------------------------------------- backward
//
// The scatter-add of dx into the rows of wte and wpe, without float atomics
// (WGSL has none): one invocation per gradient element gathers the
// positions that read it, in ascending order, so the sum is the same bit
// for bit on every run.

/**
 * embedding-backward-token: dwte[v][c] (+)= sum over positions n with idx[n] == v of dx[n][c].
 * The positions of token v are order[start[v] .. start[v+1]), ascending (built on the host
 * with the batch). `accumulate` adds to what the tied output projection already wrote.
 * bindings: u {V, C, wteOff}, dx ([N][C]), start (u32 [V+1]), order (u32 [N]), grad
 * dispatch: (ceil(V*C / 64), 1, 1)
 */
export function embeddingBackwardTokenKernel(accumulate: boolean): KernelDef {
  return {
    name: `embedding-backward-token${accumulate ? '/acc' : ''}`,
    bindings: [
      { name: 'u', kind: 'uniform' }, { name: 'dx', kind: 'read' }, { name: 'start', kind: 'read' },
      { name: 'order', kind: 'read' }, { name: 'grad', kind: 'readwrite' },
    ],
    code: /* wgsl */ `
struct U { V: u32, C: u32, wteOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dx: array<f32>;
@group(0) @binding(2) var<storage, read> start: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(${EMBED_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  if (e >= u.V * u.C) { return; }
  let v = e / u.C;
  let c = e % u.C;
  var s = ${accumulate ? 'grad[u.wteOff + e]' : '0.0'};
  for (var j = start[v]; j < start[v + 1u]; j++) { s += dx[order[j] * u.C + c]; }
  grad[u.wteOff + e] = s;
}
`,
  };
}

/**
 * embedding-backward-position: dwpe[t][c] = sum_b dx[b*T + t][c] for t < T, 0 for T <= t < block_size.
 * bindings: u {B, T, C, blockSize, wpeOff}, dx ([B*T][C]), grad
 * dispatch: (ceil(blockSize*C / 64), 1, 1)
 */
export function embeddingBackwardPositionKernel(): KernelDef {
  return {
    name: 'embedding-backward-position',
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'dx', kind: 'read' }, { name: 'grad', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { B: u32, T: u32, C: u32, blockSize: u32, wpeOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(${EMBED_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  if (e >= u.blockSize * u.C) { return; }
  let t = e / u.C;
  let c = e % u.C;
  var s = 0.0;
  if (t < u.T) {
    for (var b = 0u; b < u.B; b++) { s += dx[(b * u.T + t) * u.C + c]; }
  }
  grad[u.wpeOff + e] = s;
}
`,
  };
}
