/**
 * The one tiled GEMM family every Linear layer shares (c_attn, c_proj, c_fc,
 * the MLP projection and the output head):
 *
 *   out[p][r][o] = act( sum_k in[p][r][k] * W_p[o][k] + b_p[o] ) (+ resid[p][r][o])
 *
 * with W in nn.Linear layout [out, in], read at `wOff` of the flat weights
 * and formed per point on the fly (see common.ts). Each invocation holds a
 * TM x TN register tile (TM rows of tokens, TN output columns), written out
 * as separate variables so that weak shader compilers keep them in
 * registers. When `vec4`, the reduction runs over vec4 loads
 * (in_features % 4 == 0).
 *
 * Two strategies share that inner tile:
 * - `register`: every invocation forms the weights it needs itself, straight
 *   from the weight buffers; no workgroup memory, no barrier.
 * - `slab`: the workgroup first forms a slab of BN = WX*TN whole weight rows
 *   ([BN][in_features]) of its point in workgroup memory, behind a single
 *   barrier, then sweeps all rows (tokens) of the point against it, so each
 *   perturbed weight is formed once per point and column block instead of
 *   once per TM rows. The slab must fit the device's workgroup storage.
 */
import { type KernelDef, type BindingDef } from '../src/gpu/kernel.ts';
import { type Activation } from '../src/model/config.ts';
import { type WeightMode, weightBindings, weightSource, weightBindingCount } from './common.ts';
import { GELU_WGSL, activationFn } from './activations.ts';

export interface GemmTile {
  /** Rows (tokens) per invocation. */
  TM: number;
  /** Output columns per invocation. */
  TN: number;
  /** Workgroup size in columns and rows of invocations. */
  WX: number;
  WY: number;
}

export const DEFAULT_TILE: GemmTile = { TM: 4, TN: 4, WX: 8, WY: 8 };

/**
 * The GEMM shape for an adapter. SwiftShader runs invocations as 4-wide SIMD
 * lanes where every buffer load is a per-lane gather, so tall register tiles
 * (more FMAs per load) beat the 4x4 that suits GPUs; past 8x4 the gain
 * measured on 2 cores was lost in noise while compile time grew steeply
 * (about 1 s for 8x4, 17 s for 32x4 per kernel under load). GPUs have far
 * fewer registers per invocation: a 4x4 tile of vec4 accumulators with the
 * weight slab in workgroup memory.
 */
export function gemmFor(adapter: { isFallback: boolean }): { strategy: GemmStrategy; tile: GemmTile } {
  return adapter.isFallback
    ? { strategy: 'register', tile: { TM: 8, TN: 4, WX: 8, WY: 8 } }
    : { strategy: 'slab', tile: DEFAULT_TILE };
}

export type GemmStrategy = 'register' | 'slab';

export interface LinearOptions {
  mode: WeightMode;
  strategy: GemmStrategy;
  /** in_features, fixed at compile time for the `slab` strategy (it sizes the workgroup array). */
  inDim: number;
  tile: GemmTile;
  vec4: boolean;
  bias: boolean;
  act: Activation | null;
  /** Add a residual input to the result. */
  resid: boolean;
  /** Store the pre-activation too (for the backward pass). */
  savePre: boolean;
}

/** Workgroups for a [rows x outDim] output per point. */
export function linearWorkgroups(strategy: GemmStrategy, tile: GemmTile, rows: number, outDim: number, points: number): [number, number, number] {
  const rowGroups = strategy === 'slab' ? 1 : Math.ceil(rows / (tile.WY * tile.TM));
  return [Math.ceil(outDim / (tile.WX * tile.TN)), rowGroups, points];
}

/** Bytes of workgroup memory the `slab` strategy needs. */
export function slabBytes(tile: GemmTile, inDim: number): number {
  return tile.WX * tile.TN * inDim * 4;
}

/**
 * linear: see the file comment.
 * bindings: u {rows, inDim, outDim, wOff, bOff}, weights, inp ([P][rows][inDim]),
 *           resid (when resid), pre (when savePre), out ([P][rows][outDim])
 * dispatch: linearWorkgroups(tile, rows, outDim, points)
 */
export function linearKernel(o: LinearOptions): KernelDef {
  const { TM, TN, WX, WY } = o.tile;
  const wb = weightBindingCount(o.mode);
  const bindings: BindingDef[] = [{ name: 'u', kind: 'uniform' }, ...weightBindings(o.mode), { name: 'inp', kind: 'read' }];
  const decls: string[] = [];
  let next = wb + 1;
  const vt = o.vec4 ? 'vec4f' : 'f32';
  decls.push(`@group(0) @binding(${next++}) var<storage, read> inp: array<${vt}>;`);
  if (o.resid) {
    bindings.push({ name: 'resid', kind: 'read' });
    decls.push(`@group(0) @binding(${next++}) var<storage, read> resid: array<f32>;`);
  }
  if (o.savePre) {
    bindings.push({ name: 'pre', kind: 'readwrite' });
    decls.push(`@group(0) @binding(${next++}) var<storage, read_write> pre: array<f32>;`);
  }
  bindings.push({ name: 'out', kind: 'readwrite' });
  decls.push(`@group(0) @binding(${next++}) var<storage, read_write> out: array<f32>;`);

  const rows = [...Array(TM).keys()];
  const cols = [...Array(TN).keys()];
  const slab = o.strategy === 'slab';
  const BN = WX * TN;
  const body: string[] = [];
  const K = o.vec4 ? 'K4' : 'u.inDim';
  const load = o.vec4 ? 'w4' : 'w';
  body.push(`  let K4 = u.inDim / 4u;`);
  if (slab) {
    // Form the slab: BN weight rows of this point, all in_features, once.
    body.push(`  for (var e = lid.y * ${WX}u + lid.x; e < ${BN}u * ${K}; e += ${WX * WY}u) {`);
    body.push(`    let o = min(wg.x * ${BN}u + e / ${K}, u.outDim - 1u);`);
    body.push(`    slab[e] = ${load}(${o.vec4 ? 'u.wOff / 4u' : 'u.wOff'} + o * ${K} + e % ${K}, ab);`);
    body.push('  }');
    body.push('  workgroupBarrier();');
    body.push(`  for (var row0 = lid.y * ${TM}u; row0 < u.rows; row0 += ${WY * TM}u) {`);
  }
  for (const i of rows) body.push(`  let xr${i} = (p * u.rows + min(row0 + ${i}u, u.rows - 1u)) * ${K};`);
  for (const j of cols) {
    body.push(slab
      ? `  let wr${j} = (lid.x * ${TN}u + ${j}u) * ${K};`
      : `  let wr${j} = ${o.vec4 ? 'u.wOff / 4u' : 'u.wOff'} + min(col0 + ${j}u, u.outDim - 1u) * ${K};`);
  }
  for (const i of rows) for (const j of cols) body.push(`  var a${i}_${j} = ${vt}(0.0);`);
  body.push(`  for (var k = 0u; k < ${K}; k++) {`);
  for (const j of cols) body.push(slab ? `    let b${j} = slab[wr${j} + k];` : `    let b${j} = ${load}(wr${j} + k, ab);`);
  for (const i of rows) {
    body.push(`    let v${i} = inp[xr${i} + k];`);
    for (const j of cols) body.push(`    a${i}_${j} = fma(v${i}, b${j}, a${i}_${j});`);
  }
  body.push('  }');
  for (const i of rows) {
    body.push(`  if (row0 + ${i}u < u.rows) {`);
    body.push(`    let ob${i} = (p * u.rows + row0 + ${i}u) * u.outDim;`);
    for (const j of cols) {
      const sum = o.vec4 ? `a${i}_${j}.x + a${i}_${j}.y + a${i}_${j}.z + a${i}_${j}.w` : `a${i}_${j}`;
      body.push(`    if (col0 + ${j}u < u.outDim) {`);
      body.push(`      let c = col0 + ${j}u;`);
      body.push(`      var s = ${sum}${o.bias ? ' + w(u.bOff + c, ab)' : ''};`);
      if (o.savePre) body.push('      pre[ob' + i + ' + c] = s;');
      if (o.act) body.push(`      s = ${activationFn(o.act)}(s);`);
      if (o.resid) body.push(`      s += resid[ob${i} + c];`);
      body.push(`      out[ob${i} + c] = s;`);
      body.push('    }');
    }
    body.push('  }');
  }
  if (slab) body.push('  }');

  const tag = `${o.strategy}${slab ? `/k${o.inDim}` : ''}/${o.mode}/${o.vec4 ? 'v4' : 's'}/${TM}x${TN}/${WX}x${WY}${o.bias ? '/b' : ''}${o.act ? `/${o.act}` : ''}${o.resid ? '/res' : ''}${o.savePre ? '/pre' : ''}`;
  return {
    name: `linear/${tag}`,
    bindings,
    code: /* wgsl */ `
struct U { rows: u32, inDim: u32, outDim: u32, wOff: u32, bOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
${weightSource(o.mode, 1, o.vec4)}
${decls.join('\n')}
${o.act ? GELU_WGSL : ''}
${slab ? `var<workgroup> slab: array<${vt}, ${(BN * o.inDim) / (o.vec4 ? 4 : 1)}>;` : ''}

@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let p = wg.z;
  let ab = pointCoords(p);
  let col0 = (wg.x * ${WX}u + lid.x) * ${TN}u;
${slab ? '' : `  let row0 = (wg.y * ${WY}u + lid.y) * ${TM}u;`}
${body.join('\n')}
}
`,
  };
}
