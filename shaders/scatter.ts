/**
 * scatter: heights[index[p]] = values[p] for p < count — places a chunk of
 * results evaluated in an arbitrary order (a coarse lattice first, say) at
 * their grid positions.
 * bindings: u {count, indexOffset}, values (f32 [count]), index (u32 [...]), heights (f32 [...])
 * dispatch: (ceil(count / 64), 1, 1)
 */
import { type KernelDef } from '../src/gpu/kernel.ts';

export const SCATTER_WG = 64;

export function scatterKernel(): KernelDef {
  return {
    name: 'scatter',
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'values', kind: 'read' }, { name: 'index', kind: 'read' }, { name: 'heights', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { count: u32, indexOffset: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> heights: array<f32>;

@compute @workgroup_size(${SCATTER_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let p = gid.x;
  if (p >= u.count) { return; }
  heights[index[u.indexOffset + p]] = values[p];
}
`,
  };
}
