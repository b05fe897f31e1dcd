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
 *
 * - `bcast` (the SwiftShader shape, `bcastLinearKernel`): each invocation
 *   owns C output columns and keeps their weights, formed once per point, in
 *   a private array (SwiftShader reads a private array at a constant index
 *   with one vector load, where every load whose address depends on the
 *   invocation is a per-lane gather); the workgroup stages one input row at
 *   a time in workgroup memory, and the fully unrolled reduction reads it
 *   back at compile-time addresses (4x the `register` GEMM's GFLOP/s on 2
 *   cores). The JIT's output shows that those reads are still masked
 *   per-lane loads, and a barrier costs a coroutine switch per subgroup (a
 *   quarter of a `bcast` dispatch), hence:
 * - `subgroup` (the same shape where the device has WebGPU subgroups): no
 *   workgroup memory and no barrier. Each lane of a subgroup loads 4
 *   consecutive inputs of the row (one vec4), and the unrolled reduction
 *   takes input k from lane (k / 4) % 4 with subgroupBroadcast at a constant
 *   lane (about 12 instructions on SwiftShader, no memory access): one
 *   gather serves 16 inputs (1.4-1.8x the `bcast` GFLOP/s). What bounds it
 *   there is the JIT's code for the multiply-adds: bench/README.md.
 *
 * The backward GEMMs (dX = dY W, dW = dY^T X) run on `bcastLinearKernel`
 * where the forward does (W, resp. dY, read transposed: BcastOptions), and
 * register-tiled otherwise (`linearGradKernel`, at the end of the file with
 * the bias gradient's column sums).
 */
import { type KernelDef, type BindingDef } from '../src/gpu/kernel.ts';
import { type Activation } from '../src/model/config.ts';
import { type WeightMode, laneElement, weightBindings, weightSource, weightBindingCount } from './common.ts';
import { GELU_WGSL, activationFn } from './activations.ts';

export interface GemmTile {
  /** Rows (tokens) per invocation. */
  TM: number;
  /** Output columns per invocation. */
  TN: number;
  /** Workgroup size in columns and rows of invocations. */
  WX: number;
  WY: number;
  /** in_features per staged step (`tiled` only; default TILED_BK). */
  BK?: number;
}

export const DEFAULT_TILE: GemmTile = { TM: 4, TN: 4, WX: 8, WY: 8 };

/**
 * The GEMM for an adapter and a job of `workFlops` GEMM FLOPs. On SwiftShader,
 * big jobs get `bcast` (see BCAST_MIN_FLOPS), small ones `register`, where
 * SwiftShader runs invocations as 4-wide SIMD
 * lanes and every buffer load is a per-lane gather, so tall register tiles
 * (more FMAs per load) beat the 4x4 that suits GPUs; past 8x4 the gain
 * measured on 2 cores was lost in noise while compile time grew steeply
 * (about 1 s for 8x4, 17 s for 32x4 per kernel under load). GPUs have far
 * fewer registers per invocation and fast workgroup memory: they get
 * `tiled`, TILED_DEFAULT's 4x4 outputs per invocation, with each layer's
 * tile chosen on the device for jobs of TUNE_MIN_FLOPS and more (the `slab`
 * that served them before reads its weight rows at a stride that conflicts
 * on NVIDIA's 32 banks, bench/README.md). Big SwiftShader jobs take `subgroup`
 * where the device has subgroups (createContext asks for them whenever the
 * adapter offers them), `bcast` where not.
 */
export function gemmFor(adapter: { isFallback: boolean; features?: readonly string[] }, workFlops = 0): { strategy: GemmStrategy; tile: GemmTile; tune: boolean } {
  if (!adapter.isFallback) return { strategy: 'tiled', tile: TILED_DEFAULT, tune: workFlops >= TUNE_MIN_FLOPS };
  const big = adapter.features?.includes('subgroups') ? 'subgroup' : 'bcast';
  return { strategy: workFlops >= BCAST_MIN_FLOPS ? big : 'register', tile: { TM: 8, TN: 4, WX: 8, WY: 8 }, tune: false };
}

/**
 * On GPUs, jobs of at least this many GEMM FLOPs (a 100x100 grid of issue
 * 6's reference model) have each Linear layer's tile chosen by timing the
 * candidates on the device (ForwardPlanOptions.tune, gemmCandidates): 6
 * pipelines per distinct layer shape, a fraction of a second on a GPU.
 * CPU adapters never tune: SwiftShader compiles an unrolled GEMM in seconds,
 * and its best shapes are known (above).
 */
export const TUNE_MIN_FLOPS = 1e12;

/**
 * What a GPU's tuner tries for one Linear layer, `base` giving the layer
 * (mode, in_features, bias, activation, ...): `tiled` with each of `tiles`
 * whose workgroup memory fits in `workgroupBytes`. Every tiled tile sums
 * each output's products in the same order (one fma chain over the
 * in_features, then bias, activation, residual), so the choice changes the
 * speed and never a value: a tuned grid equals an untuned one bit for bit,
 * and its shards, resumed parts and reruns agree whatever each one chose.
 * (`slab` and `register` sum in four vec4 lanes and would not.)
 */
export function gemmCandidates(
  base: Omit<LinearOptions, 'strategy' | 'tile'>, workgroupBytes: number, tiles: readonly GemmTile[] = TILED_CANDIDATES,
): LinearOptions[] {
  return tiles.filter((tile) => tiledBytes(tile) <= workgroupBytes).map((tile) => ({ ...base, strategy: 'tiled' as const, tile }));
}

/** The forward Linear kernel of any strategy (`outDim` sizes the unrolled `bcast` and `subgroup` kernels). */
export function forwardLinearKernel(lin: LinearOptions, outDim: number): KernelDef {
  if (isBcast(lin.strategy)) return bcastLinearKernel({ ...lin, outDim });
  return lin.strategy === 'tiled' ? tiledLinearKernel(lin) : linearKernel(lin);
}

/**
 * On SwiftShader the `bcast` GEMM runs 2-4x faster than `register` but its
 * unrolled kernels take seconds each to compile (a model's set: 5-13 s on 2
 * cores, against about 1 s): it pays from about 2e10 GEMM FLOPs of work (15 s
 * of `register` GEMMs) on. Jobs say how much work they have (ForwardPlan's
 * `workFlops`); a single forward says nothing and gets `register`.
 */
export const BCAST_MIN_FLOPS = 2e10;

export const GEMM_STRATEGIES = ['register', 'slab', 'tiled', 'bcast', 'subgroup'] as const;
export type GemmStrategy = (typeof GEMM_STRATEGIES)[number];

/** The strategies that run `bcastLinearKernel`. */
export function isBcast(strategy: GemmStrategy): strategy is 'bcast' | 'subgroup' {
  return strategy === 'bcast' || strategy === 'subgroup';
}

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

/**
 * What `bcastLinearKernel` does beside the forward product: the backward's
 * dX = dY W (W read transposed, scaled by act'(pre)) and dW = dY^T X (dY read
 * transposed, X in the weights' place) run on it too.
 */
export interface BcastOptions extends LinearOptions {
  outDim: number;
  /** Weight (column j, reduction k) at wOff + k*outDim + j: W [out][in] read as W^T, for dX = dY W. */
  transW?: boolean;
  /** Multiply each result by act'(pre[..]) (pre read): the GELU backward fused into dX of mlp.c_proj. */
  actGrad?: Activation | null;
  /**
   * Input (row r, reduction k) at inp[k * rows + r], one point: dY read
   * transposed, for dW = dY^T X (rows = out_features, the reduction over the
   * batch's rows, X in the weights' place).
   */
  transIn?: boolean;
  /** Add to what `out` holds (the tied wte's second gradient). */
  accumulate?: boolean;
}

/** Workgroups for a [rows x outDim] output per point. */
export function linearWorkgroups(
  o: Pick<LinearOptions, 'strategy' | 'tile' | 'inDim' | 'act'> & Pick<BcastOptions, 'actGrad'>, rows: number, outDim: number, points: number,
): [number, number, number] {
  const { strategy, tile } = o;
  if (isBcast(strategy)) {
    const shape = bcastShape(outDim, o.inDim, strategy, o.act !== null || Boolean(o.actGrad));
    return [shape.colGroups, bcastRowGroups(rows, points, shape.colGroups), points];
  }
  const rowGroups = strategy === 'slab' ? 1 : Math.ceil(rows / (tile.WY * tile.TM));
  return [Math.ceil(outDim / (tile.WX * tile.TN)), rowGroups, points];
}

/**
 * The uniform words of a forward-shaped Linear dispatch ({rows, inDim,
 * outDim, wOff, bOff, rowsPer, oOff}, as `bcastLinearKernel` reads them; the
 * other kernels read the first five): rowsPer from the dispatch's row groups.
 */
export function linearUniformWords(
  rows: number, inDim: number, outDim: number, wOff: number, bOff: number, workgroups: readonly number[], oOff = 0,
): number[] {
  return [rows, inDim, outDim, wOff, bOff, Math.ceil(rows / workgroups[1]!), oOff];
}

/** Bytes of workgroup memory the `slab` strategy needs. */
export function slabBytes(tile: GemmTile, inDim: number): number {
  return tile.WX * tile.TN * inDim * 4;
}

/**
 * The bindings of a forward Linear kernel after the uniforms and weights, and
 * their WGSL declarations: inp (of `inType`), resid, pre (when asked), out.
 */
function linearBindings(o: LinearOptions & Pick<BcastOptions, 'actGrad'>, inType: string): { bindings: BindingDef[]; decls: string[] } {
  const bindings: BindingDef[] = [{ name: 'u', kind: 'uniform' }, ...weightBindings(o.mode), { name: 'inp', kind: 'read' }];
  const decls: string[] = [];
  let next = weightBindingCount(o.mode) + 1;
  decls.push(`@group(0) @binding(${next++}) var<storage, read> inp: array<${inType}>;`);
  if (o.resid) {
    bindings.push({ name: 'resid', kind: 'read' });
    decls.push(`@group(0) @binding(${next++}) var<storage, read> resid: array<f32>;`);
  }
  if (o.savePre) {
    bindings.push({ name: 'pre', kind: 'readwrite' });
    decls.push(`@group(0) @binding(${next++}) var<storage, read_write> pre: array<f32>;`);
  } else if (o.actGrad) {
    bindings.push({ name: 'pre', kind: 'read' });
    decls.push(`@group(0) @binding(${next++}) var<storage, read> pre: array<f32>;`);
  }
  bindings.push({ name: 'out', kind: 'readwrite' });
  decls.push(`@group(0) @binding(${next++}) var<storage, read_write> out: array<f32>;`);
  return { bindings, decls };
}

/** A forward Linear kernel's name suffix for its epilogue: bias, activation, residual, saved pre-activation. */
function epilogueTag(o: LinearOptions): string {
  return `${o.bias ? '/b' : ''}${o.act ? `/${o.act}` : ''}${o.resid ? '/res' : ''}${o.savePre ? '/pre' : ''}`;
}

/** The WGSL that `linearKernel` and `tiledLinearKernel` open with: uniforms, weights, bindings, GELU where used. */
function forwardHeader(o: LinearOptions, decls: readonly string[]): string {
  return `struct U { rows: u32, inDim: u32, outDim: u32, wOff: u32, bOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
${weightSource(o.mode, 1, o.vec4)}
${decls.join('\n')}
${o.act ? GELU_WGSL : ''}`;
}

/**
 * linear: see the file comment.
 * bindings: u {rows, inDim, outDim, wOff, bOff}, weights, inp ([P][rows][inDim]),
 *           resid (when resid), pre (when savePre), out ([P][rows][outDim])
 * dispatch: linearWorkgroups(o, rows, outDim, points)
 */
export function linearKernel(o: LinearOptions): KernelDef {
  const { TM, TN, WX, WY } = o.tile;
  const vt = o.vec4 ? 'vec4f' : 'f32';
  const { bindings, decls } = linearBindings(o, vt);

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

  const tag = `${o.strategy}${slab ? `/k${o.inDim}` : ''}/${o.mode}/${o.vec4 ? 'v4' : 's'}/${TM}x${TN}/${WX}x${WY}${epilogueTag(o)}`;
  return {
    name: `linear/${tag}`,
    bindings,
    code: /* wgsl */ `
${forwardHeader(o, decls)}
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

// ---------------------------------------------------------------- tiled

/** in_features per step of the `tiled` GEMM (GemmTile.BK's default). */
export const TILED_BK = 16;

/**
 * The `tiled` GEMM's tile sizes for GPUs: TILED_DEFAULT (64x64 outputs per
 * workgroup of 16x16 invocations, 4x4 each) where nothing is tuned, and the
 * candidates the tuner (ForwardPlan's `tune`, src/model/gemm-tune.ts) tries
 * on each layer of a big job: 32x32 to 128x128 outputs per workgroup of
 * 64-256 invocations, 16-64 outputs per invocation.
 */
export const TILED_DEFAULT: GemmTile = { TM: 4, TN: 4, WX: 16, WY: 16 };

export const TILED_CANDIDATES: readonly GemmTile[] = [
  TILED_DEFAULT,
  { TM: 8, TN: 4, WX: 16, WY: 8 },
  { TM: 4, TN: 8, WX: 8, WY: 16 },
  { TM: 8, TN: 8, WX: 8, WY: 8 },
  { TM: 8, TN: 8, WX: 16, WY: 16 },
  { TM: 4, TN: 4, WX: 8, WY: 8 },
];

/** Bytes of workgroup memory the `tiled` strategy needs: a step of BK in_features of both tiles. */
export function tiledBytes(tile: GemmTile): number {
  return (tile.BK ?? TILED_BK) * (tile.WY * tile.TM + tile.WX * tile.TN) * 4;
}

/**
 * linear (tiled): the same product as `linearKernel`, the classic shape of a
 * GPU SGEMM. Workgroup (cx, ry, p) computes a block of BM = WY*TM rows by
 * BN = WX*TN columns of point p. Per step of BK in_features it stages the
 * block's inputs and its perturbed weights (formed once per block and step)
 * in workgroup memory, both transposed to [k][row] and [k][column], behind a
 * barrier; then every invocation multiplies them into its TM x TN outputs
 * from vec4 reads: rows ty*4 + g*WY*4 .. +3 (g < TM/4) and columns
 * tx*4 + g*WX*4 .. +3 (g < TN/4), so that neighbouring invocations read
 * neighbouring vec4s of a row of the tile (the inner loop's reads are free
 * of bank conflicts; the transposing stores are not) and write
 * neighbouring columns of the output. Inputs and weights past in_features
 * are zero; rows and columns past the ends are clamped on load and not
 * stored. TM and TN are multiples of 4.
 * bindings: u {rows, inDim, outDim, wOff, bOff}, weights, inp ([P][rows][inDim],
 *           vec4 when o.vec4), resid (when resid), pre (when savePre), out
 * dispatch: linearWorkgroups(o, rows, outDim, points) = (ceil(outDim / BN), ceil(rows / BM), points)
 */
export function tiledLinearKernel(o: LinearOptions): KernelDef {
  const { TM, TN, WX, WY } = o.tile;
  const BK = o.tile.BK ?? TILED_BK;
  if (TM % 4 !== 0 || TN % 4 !== 0 || BK % 4 !== 0) throw new Error(`tiledLinearKernel: TM ${TM}, TN ${TN} and BK ${BK} must be multiples of 4`);
  const BM = WY * TM;
  const BN = WX * TN;
  const threads = WX * WY;
  const V = o.vec4 ? 4 : 1;
  const { bindings, decls } = linearBindings(o, o.vec4 ? 'vec4f' : 'f32');
  const gm = [...Array(TM / 4).keys()];
  const gn = [...Array(TN / 4).keys()];
  const lanes = [0, 1, 2, 3];

  // One operand's tile: R rows (tokens, or weight rows = output columns) by
  // BK in_features, loaded in units of V along k and stored transposed.
  const stage = (tile: string, R: number, read: (row: string, unit: string) => string, lastRow: string): string[] => {
    const units = (R * BK) / V;
    const lines = [`    for (var e = li; e < ${units}u; e += ${threads}u) {`];
    lines.push(`      let r = e / ${BK / V}u;`);
    lines.push(`      let k = k0 + (e % ${BK / V}u) * ${V}u;`);
    lines.push(`      let v = select(${V === 4 ? 'vec4f(0.0)' : '0.0'}, ${read(`min(${lastRow}, r)`, V === 4 ? 'min(k, u.inDim - 4u) / 4u' : 'min(k, u.inDim - 1u)')}, k < u.inDim);`);
    if (V === 4) {
      for (const c of lanes) lines.push(`      ${tile}[((k - k0 + ${c}u) * ${R}u + r) / 4u][r % 4u] = v[${c}];`);
    } else {
      lines.push(`      ${tile}[((k - k0) * ${R}u + r) / 4u][r % 4u] = v;`);
    }
    lines.push('    }');
    return lines;
  };
  const kUnits = o.vec4 ? 'u.inDim / 4u' : 'u.inDim';
  const body: string[] = [];
  for (const i of gm) for (const r of lanes) for (const j of gn) body.push(`  var a${i}_${r}_${j} = vec4f(0.0);`);
  body.push(`  for (var k0 = 0u; k0 < u.inDim; k0 += ${BK}u) {`);
  body.push(...stage('xs', BM, (row, unit) => `inp[(p * u.rows + m0 + ${row}) * ${kUnits} + ${unit}]`, 'u.rows - 1u - m0'));
  body.push(...stage('ws', BN, (row, unit) => `${o.vec4 ? 'w4' : 'w'}(${o.vec4 ? 'u.wOff / 4u' : 'u.wOff'} + (n0 + ${row}) * ${kUnits} + ${unit}, ab)`, 'u.outDim - 1u - n0'));
  body.push('    workgroupBarrier();');
  body.push(`    for (var kk = 0u; kk < ${BK}u; kk++) {`);
  for (const i of gm) body.push(`      let x${i} = xs[kk * ${BM / 4}u + ${i * WY}u + lid.y];`);
  for (const j of gn) body.push(`      let w${j} = ws[kk * ${BN / 4}u + ${j * WX}u + lid.x];`);
  for (const i of gm) for (const r of lanes) for (const j of gn) body.push(`      a${i}_${r}_${j} = fma(vec4f(x${i}[${r}]), w${j}, a${i}_${r}_${j});`);
  body.push('    }');
  body.push('    workgroupBarrier();');
  body.push('  }');
  for (const i of gm) {
    for (const r of lanes) {
      body.push(`  { let row = m0 + ${i * WY * 4 + r}u + lid.y * 4u;`);
      body.push('    if (row < u.rows) {');
      body.push('      let ob = (p * u.rows + row) * u.outDim;');
      for (const j of gn) {
        for (const c of lanes) {
          body.push(`      { let col = n0 + ${j * WX * 4 + c}u + lid.x * 4u;`);
          body.push('        if (col < u.outDim) {');
          body.push(`          var s = a${i}_${r}_${j}[${c}]${o.bias ? ' + w(u.bOff + col, ab)' : ''};`);
          if (o.savePre) body.push('          pre[ob + col] = s;');
          if (o.act) body.push(`          s = ${activationFn(o.act)}(s);`);
          if (o.resid) body.push('          s += resid[ob + col];');
          body.push('          out[ob + col] = s;');
          body.push('        }');
          body.push('      }');
        }
      }
      body.push('    }');
      body.push('  }');
    }
  }

  const tag = `tiled/${o.mode}/${o.vec4 ? 'v4' : 's'}/${TM}x${TN}/${WX}x${WY}/bk${BK}${epilogueTag(o)}`;
  return {
    name: `linear/${tag}`,
    bindings,
    code: /* wgsl */ `
${forwardHeader(o, decls)}
var<workgroup> xs: array<vec4f, ${(BK * BM) / 4}>;
var<workgroup> ws: array<vec4f, ${(BK * BN) / 4}>;

@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let p = wg.z;
  let ab = pointCoords(p);
  let m0 = wg.y * ${BM}u;
  let n0 = wg.x * ${BN}u;
${body.join('\n')}
}
`,
  };
}

// ---------------------------------------------------------------- bcast

/** The `bcast` GEMM's shape for an [.. x inDim] x [inDim x outDim] product. */
export interface BcastShape {
  /** Invocations per workgroup (a multiple of SwiftShader's 4 lanes). */
  WG: number;
  /** Output columns per invocation: column j = colGroup*WG*C + c*WG + lane. */
  C: number;
  /** Workgroups along the columns. */
  colGroups: number;
  /** in_features per pass of the unrolled reduction (the last pass is zero-padded). */
  KC: number;
}

/** The most FMAs one pass of the `bcast` reduction unrolls (KC * C). */
export const BCAST_UNROLL = 768;
/**
 * The same for `subgroup`, whose kernels SwiftShader compiles 3-4x slower
 * for the same unrolled length (they have no barrier): 256 FMAs compile in
 * about 2 s, 512 in 6-8 s for at most 20% more speed.
 */
export const SUBGROUP_UNROLL = 256;

/**
 * Measured alone on 2 cores (perturbed, 512 rows, 32 points): 8-16
 * invocations of 8-12 columns each run fastest (WG 16 x C 12: 8.6 GFLOP/s
 * for 64 -> 192, WG 8 x C 8: 5.9 for 64 -> 64, against 2.1-2.3 for the
 * `register` 8x4 tile). SwiftShader's compile time grows steeply with the
 * unrolled body (KC*C FMAs: 768 take about 2 s, 1536 about 9 s), hence the
 * reduction runs in passes of KC in_features with KC*C <= BCAST_UNROLL;
 * each pass after the first adds to what the previous ones left in `out`.
 */
export function bcastShape(outDim: number, inDim: number, strategy: 'bcast' | 'subgroup' = 'bcast', act = false): BcastShape {
  const WG = Math.min(16, 4 * Math.ceil(Math.ceil(outDim / 8) / 4));
  // At most 12 columns per invocation (subgroup: 8, where 12 accumulators
  // spill), spread evenly over the column groups. SwiftShader runs the last
  // pass's epilogue, masked off, on every pass: with an activation (GELU
  // costs a third of the product of 64 -> 256) subgroup kernels take as few
  // as 4 columns to reduce in one pass (64 -> 256 with GELU: 1.6x faster
  // than 8 columns in 2 passes).
  const unroll = strategy === 'subgroup' ? SUBGROUP_UNROLL : BCAST_UNROLL;
  const maxC = strategy === 'bcast' ? 12 : act ? Math.max(4, Math.min(8, Math.floor(unroll / inDim))) : 8;
  const colGroups = Math.ceil(outDim / (WG * maxC));
  const C = Math.ceil(outDim / (WG * colGroups));
  const passes = Math.ceil(inDim / (4 * Math.floor(unroll / C / 4)));
  const KC = Math.min(inDim, 4 * Math.ceil(inDim / passes / 4));
  return { WG, C, colGroups, KC };
}

/**
 * Workgroups along the rows: one per point keeps the weights formed once per
 * point, but a single model (or a few) needs its rows split to keep all
 * cores busy: about `target` workgroups in all, never under 8 rows each.
 */
export function bcastRowGroups(rows: number, points: number, colGroups: number, target = 16): number {
  const wanted = Math.ceil(target / (points * colGroups));
  return Math.max(1, Math.min(Math.ceil(rows / 8), wanted));
}

/**
 * linear (bcast, subgroup): the same product as `linearKernel`, see the
 * file comment. Workgroup (cg, rg, p) computes columns cg*WG*C .. of rows
 * rg*rowsPer .. of point p; for each pass of KC in_features it forms the
 * lane's C*KC weights into `wv`, then for every row brings
 * in[p][row][k0 .. k0+KC) to all lanes (bcast: staged in `xs` behind a
 * barrier; subgroup: loaded across the lanes of each subgroup and
 * broadcast), reduces, and adds to what earlier passes left in `out` (bias,
 * pre, activation and residual on the last pass).
 * With transW and actGrad it is the backward's dX = dY W (times act'(pre)):
 * inDim = the layer's out_features, outDim = its in_features. With transIn,
 * transW and accumulate, dW = dY^T X: rows = out_features, inDim = the
 * batch's rows, outDim = in_features, X bound as the weights (wOff 0), the
 * result at oOff of the flat gradient.
 * bindings: u {rows, inDim, outDim, wOff, bOff, rowsPer, oOff}, weights, inp
 *           ([P][rows][inDim]; subgroup with inDim % 4 == 0: as vec4),
 *           resid (when resid), pre (written when savePre, read when
 *           actGrad), out
 * dispatch: linearWorkgroups(o, rows, outDim, points), with
 *           rowsPer = ceil(rows / that dispatch's y)
 */
export function bcastLinearKernel(o: BcastOptions): KernelDef {
  if (!isBcast(o.strategy)) throw new Error(`bcastLinearKernel: strategy ${o.strategy} is not bcast or subgroup`);
  if (o.actGrad && (o.act || o.savePre)) throw new Error('bcastLinearKernel: actGrad goes without act and savePre');
  if (o.transIn && o.mode !== 'plain') throw new Error('bcastLinearKernel: transIn is for one point, in plain mode');
  const sg = o.strategy === 'subgroup';
  const { WG, C, KC, colGroups } = bcastShape(o.outDim, o.inDim, o.strategy, o.act !== null || Boolean(o.actGrad));
  const onePass = KC === o.inDim;
  const padded = Math.ceil(o.inDim / KC) * KC > o.inDim;
  const exact = colGroups * WG * C === o.outDim;
  // subgroup: each lane loads V consecutive inputs (a vec4 where rows are
  // vec4-aligned), so that the first 4 lanes of a subgroup hold 4V of them.
  const V: 1 | 4 = o.inDim % 4 === 0 && !o.transIn ? 4 : 1;
  const { bindings, decls } = linearBindings(o, sg && V === 4 ? 'vec4f' : 'f32');

  const cs = [...Array(C).keys()];
  const ks = [...Array(KC).keys()];
  const body: string[] = [];
  for (const c of cs) body.push(`  let j${c} = wg.x * ${WG * C}u + ${c * WG}u + li;`);
  for (const c of cs) body.push(`  let o${c} = min(j${c}, OUT_DIM - 1u);`);
  if (o.bias) for (const c of cs) body.push(`  let bias${c} = w(u.bOff + o${c}, ab);`);
  body.push(`  let rowStart = wg.y * u.rowsPer;`);
  body.push(`  let rowEnd = min(rowStart + u.rowsPer, u.rows);`);
  body.push(`  var wv: array<f32, ${KC * C}>;`);
  body.push(`  for (var k0 = 0u; k0 < IN_DIM; k0 += ${KC}u) {`);
  body.push(`    let first = k0 == 0u;`);
  body.push(`    let last = k0 + ${KC}u >= IN_DIM;`);
  // The lane's weights for this pass, zero past in_features.
  for (const k of ks) {
    body.push(`    { let k = k0 + ${k}u; let live = k < IN_DIM; let kk = min(k, IN_DIM - 1u);`);
    for (const c of cs) body.push(`      wv[${k * C + c}] = select(0.0, w(u.wOff + ${o.transW ? `kk * OUT_DIM + o${c}` : `o${c} * IN_DIM + kk`}, ab), live);`);
    body.push('    }');
  }
  body.push('    for (var r = rowStart; r < rowEnd; r++) {');
  body.push('      let xb = (p * u.rows + r) * IN_DIM;');
  // Input k of this row (k already clamped below IN_DIM).
  const inAt = (k: string): string => (o.transIn ? `inp[(${k}) * u.rows + r]` : `inp[xb + ${k}]`);
  if (sg) {
    // Lane l of every 4 loads inputs k0 + 4V*q + V*l .. + V-1, clamped into
    // the row (past in_features the weights are zero, and the input is
    // zeroed below so that an infinite input cannot make 0 * inf).
    for (let q = 0; q * 4 * V < KC; q++) {
      body.push(V === 4
        ? `      let xq${q} = inp[min((xb + k0) / 4u + ${4 * q}u + lane, (xb + IN_DIM) / 4u - 1u)];`
        : `      let xq${q} = ${inAt(`min(k0 + ${4 * q}u + lane, IN_DIM - 1u)`)};`);
    }
  } else {
    for (let i = 0; i * WG < KC; i++) {
      const guard = (i + 1) * WG > KC ? `if (li + ${i * WG}u < ${KC}u) ` : '';
      body.push(`      ${guard}{ let k = k0 + li + ${i * WG}u; xs[li + ${i * WG}u] = select(0.0, ${inAt('min(k, IN_DIM - 1u)')}, k < IN_DIM); }`);
    }
    body.push('      workgroupBarrier();');
  }
  for (const c of cs) body.push(`      var a${c} = 0.0;`);
  for (const k of ks) {
    if (sg) {
      const shared = laneElement('xq', k, V);
      body.push(`      let x${k} = ${padded ? `select(0.0, ${shared}, k0 + ${k}u < IN_DIM)` : shared};`);
    } else {
      body.push(`      let x${k} = xs[${k}];`);
    }
    for (const c of cs) body.push(`      a${c} = fma(x${k}, wv[${k * C + c}], a${c});`);
  }
  body.push('      let ob = (p * u.rows + r) * OUT_DIM;');
  for (const c of cs) {
    body.push(exact ? '      {' : `      if (j${c} < OUT_DIM) {`);
    body.push(`        var s = a${c};`);
    // SwiftShader runs both sides of a branch under lane masks, uniform or
    // not: with a single pass, the pass logic is left out of the code.
    if (o.accumulate) {
      body.push(`        s += out[u.oOff + ob + j${c}];`);
      if (onePass && o.bias) body.push(`        s += bias${c};`);
    } else if (onePass) {
      if (o.bias) body.push(`        s += bias${c};`);
    } else {
      body.push(`        if (!first) { s += out[u.oOff + ob + j${c}]; }`);
    }
    const tail: string[] = [];
    if (o.bias && !onePass) tail.push(`s += bias${c};`);
    if (o.savePre) tail.push(`pre[ob + j${c}] = s;`);
    if (o.act) tail.push(`s = ${activationFn(o.act)}(s);`);
    if (o.actGrad) tail.push(`s *= ${activationFn(o.actGrad)}_grad(pre[ob + j${c}]);`);
    if (o.resid) tail.push(`s += resid[ob + j${c}];`);
    if (tail.length) body.push(onePass ? `        ${tail.join(' ')}` : `        if (last) { ${tail.join(' ')} }`);
    body.push(`        out[u.oOff + ob + j${c}] = s;`);
    body.push('      }');
  }
  if (!sg) body.push('      workgroupBarrier();');
  body.push('    }');
  body.push('  }');

  const tag = `${o.strategy}/${o.mode}/k${o.inDim}/n${o.outDim}/${WG}x${C}/kc${KC}${o.transW ? '/tW' : ''}${o.transIn ? '/tIn' : ''}${o.accumulate ? '/acc' : ''}${o.bias ? '/b' : ''}${o.act ? `/${o.act}` : ''}${o.actGrad ? `/d${o.actGrad}` : ''}${o.resid ? '/res' : ''}${o.savePre ? '/pre' : ''}`;
  return {
    name: `linear/${tag}`,
    bindings,
    code: /* wgsl */ `${sg ? '\nenable subgroups;' : ''}
const IN_DIM = ${o.inDim}u;
const OUT_DIM = ${o.outDim}u;
struct U { rows: u32, inDim: u32, outDim: u32, wOff: u32, bOff: u32, rowsPer: u32, oOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
${weightSource(o.mode, 1, false)}
${decls.join('\n')}
${o.act || o.actGrad ? GELU_WGSL : ''}
${sg ? '' : `var<workgroup> xs: array<f32, ${KC}>;`}

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32${sg ? ', @builtin(subgroup_invocation_id) sl: u32' : ''}) {
  let p = wg.z;
  let ab = pointCoords(p);${sg ? '\n  // Any subgroup size WebGPU allows (4..128) works: lanes 4 and up repeat 0..3.\n  let lane = sl % 4u;' : ''}
${body.join('\n')}
}
`,
  };
}

// ---------------------------------------------------------------- backward

export interface LinearGradOptions {
  tile: GemmTile;
  /** A is stored transposed, [K][M] (dW = dY^T X reads dY [rows][out] as A^T). */
  transA: boolean;
  /**
   * Load A (when transA, along i) and B (along j) as vec4: needs M % 4 == 0
   * (A), N % 4 == 0 (B), offsets that are multiples of 4, and TM (A) or TN
   * (B) multiples of 4.
   */
  vec4A: boolean;
  vec4B: boolean;
  /** Add to `out` instead of overwriting it (the tied wte receives two gradients). */
  accumulate: boolean;
  /** Multiply each result by act'(pre[i][j]): the GELU backward fused into dX of mlp.c_proj. */
  actGrad: Activation | null;
}

/** Workgroups for an [M x N] result of `linearGradKernel`, in `slices` slices of k. */
export function linearGradWorkgroups(tile: GemmTile, M: number, N: number, slices = 1): [number, number, number] {
  return [Math.ceil(N / (tile.WX * tile.TN)), Math.ceil(M / (tile.WY * tile.TM)), slices];
}

/**
 * linear-grad: the backward GEMMs of a Linear layer, y = x W^T + b, in the
 * same register-tiled shape as the forward family:
 *
 *   out[oOff + i*N + j] (+)= sum_k A(i,k) B(k,j)  (* act'(pre[i*N + j]))
 *   A(i,k) = a[aOff + i*K + k], or a[aOff + k*M + i] when transA;  B(k,j) = b[bOff + k*N + j]
 *
 * dX = dY W:    M = rows, N = in, K = out; a = dY, b = W (theta at wOff, [out][in] is [K][N]).
 * dW = dY^T X:  M = out, N = in, K = rows, transA; a = dY, b = X; out = the flat gradient at W's offset.
 * Each invocation accumulates a TM x TN tile as outer products over k, in
 * order, so the result is the same bit for bit on every run. With slices
 * (dispatch z > 1), workgroup z sums k in [z*kPer, (z+1)*kPer) only and
 * writes its partial result at out[oOff + z*M*N + ...], for `sumSlicesKernel`
 * to add up: a dW over many rows then runs in parallel over the rows too.
 * bindings: u {M, N, K, aOff, bOff, oOff, kPer}, a, b, pre (when actGrad), out
 * dispatch: linearGradWorkgroups(tile, M, N, slices)
 */
export function linearGradKernel(o: LinearGradOptions): KernelDef {
  const { TM, TN, WX, WY } = o.tile;
  if (o.vec4A && (!o.transA || TM % 4 !== 0)) throw new Error('linear-grad: vec4A needs transA and TM % 4 == 0');
  if (o.vec4B && TN % 4 !== 0) throw new Error('linear-grad: vec4B needs TN % 4 == 0');
  const bindings: BindingDef[] = [{ name: 'u', kind: 'uniform' }, { name: 'a', kind: 'read' }, { name: 'b', kind: 'read' }];
  if (o.actGrad) bindings.push({ name: 'pre', kind: 'read' });
  bindings.push({ name: 'out', kind: 'readwrite' });
  const rows = [...Array(TM).keys()];
  const cols = [...Array(TN).keys()];
  // B's columns as groups: TN/4 vec4 loads, or TN scalar loads.
  const groups = o.vec4B ? [...Array(TN / 4).keys()] : cols;
  const acc = o.vec4B ? 'vec4f' : 'f32';
  const body: string[] = [];
  if (o.vec4A) {
    for (let q = 0; q < TM / 4; q++) body.push(`  let i4_${q} = min(row0 / 4u + ${q}u, u.M / 4u - 1u);`);
  } else {
    for (const i of rows) body.push(`  let i${i} = min(row0 + ${i}u, u.M - 1u);`);
  }
  if (o.vec4B) {
    for (const g of groups) body.push(`  let j4_${g} = min(col0 / 4u + ${g}u, u.N / 4u - 1u);`);
  } else {
    for (const j of cols) body.push(`  let j${j} = min(col0 + ${j}u, u.N - 1u);`);
  }
  for (const i of rows) for (const g of groups) body.push(`  var acc${i}_${g} = ${acc}(0.0);`);
  body.push('  let kEnd = min(kBegin + u.kPer, u.K);');
  body.push('  for (var k = kBegin; k < kEnd; k++) {');
  if (o.vec4A) {
    for (let q = 0; q < TM / 4; q++) body.push(`    let x4_${q} = a[(u.aOff + k * u.M) / 4u + i4_${q}];`);
    for (const i of rows) body.push(`    let x${i} = x4_${Math.floor(i / 4)}[${i % 4}];`);
  } else {
    for (const i of rows) body.push(`    let x${i} = a[u.aOff + ${o.transA ? `k * u.M + i${i}` : `i${i} * u.K + k`}];`);
  }
  for (const g of groups) {
    body.push(o.vec4B ? `    let y${g} = b[(u.bOff + k * u.N) / 4u + j4_${g}];` : `    let y${g} = b[u.bOff + k * u.N + j${g}];`);
  }
  for (const i of rows) for (const g of groups) body.push(`    acc${i}_${g} = fma(${acc}(x${i}), y${g}, acc${i}_${g});`);
  body.push('  }');
  for (const i of rows) {
    body.push(`  if (row0 + ${i}u < u.M) {`);
    for (const j of cols) {
      const value = o.vec4B ? `acc${i}_${Math.floor(j / 4)}[${j % 4}]` : `acc${i}_${j}`;
      body.push(`    if (col0 + ${j}u < u.N) {`);
      body.push(`      let e = (row0 + ${i}u) * u.N + col0 + ${j}u;`);
      const scaled = o.actGrad ? `${value} * ${activationFn(o.actGrad)}_grad(pre[e])` : value;
      body.push(`      out[o + e] = ${o.accumulate ? 'out[o + e] + ' : ''}${scaled};`);
      body.push('    }');
    }
    body.push('  }');
  }
  const tag = `${o.transA ? 'tA' : 'nA'}${o.vec4A ? '4' : ''}${o.vec4B ? '/b4' : ''}/${TM}x${TN}/${WX}x${WY}${o.accumulate ? '/acc' : ''}${o.actGrad ? `/${o.actGrad}` : ''}`;
  return {
    name: `linear-grad/${tag}`,
    bindings,
    code: /* wgsl */ `
struct U { M: u32, N: u32, K: u32, aOff: u32, bOff: u32, oOff: u32, kPer: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<${o.vec4A ? 'vec4f' : 'f32'}>;
@group(0) @binding(2) var<storage, read> b: array<${o.vec4B ? 'vec4f' : 'f32'}>;
${o.actGrad ? '@group(0) @binding(3) var<storage, read> pre: array<f32>;' : ''}
@group(0) @binding(${o.actGrad ? 4 : 3}) var<storage, read_write> out: array<f32>;
${o.actGrad ? GELU_WGSL : ''}

@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col0 = (wg.x * ${WX}u + lid.x) * ${TN}u;
  let row0 = (wg.y * ${WY}u + lid.y) * ${TM}u;
  let kBegin = wg.z * u.kPer;
  let o = u.oOff + wg.z * u.M * u.N;
${body.join('\n')}
}
`,
  };
}

export const COLSUM_WG = 64;

/**
 * column-sum: the bias gradient db = sum over rows of dY, in slices of rows:
 *   out[oOff + z*N + j] = sum_{r in [z*rPer, (z+1)*rPer)} a[r*N + j], summed over r in order
 * (one slice: the whole sum; more: partial sums for `sumSlicesKernel`).
 * bindings: u {rows, N, oOff, rPer}, a ([rows][N]), out
 * dispatch: (ceil(N / 64), slices, 1)
 */
export function columnSumKernel(): KernelDef {
  return {
    name: 'column-sum',
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'a', kind: 'read' }, { name: 'out', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { rows: u32, N: u32, oOff: u32, rPer: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${COLSUM_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  if (j >= u.N) { return; }
  let first = gid.y * u.rPer;
  let end = min(first + u.rPer, u.rows);
  var s = 0.0;
  for (var r = first; r < end; r++) { s += a[r * u.N + j]; }
  out[u.oOff + gid.y * u.N + j] = s;
}
`,
  };
}

export const SUM_SLICES_WG = 64;

/**
 * sum-slices: adds up the partial results of sliced reductions, slice by slice in order:
 *   out[oOff + e] (+)= sum_{s < slices} part[pOff + s*stride + e], for e < count
 * bindings: u {count, slices, stride, pOff, oOff}, part, out
 * dispatch: (ceil(count / 64), 1, 1)
 */
export function sumSlicesKernel(accumulate: boolean): KernelDef {
  return {
    name: `sum-slices${accumulate ? '/acc' : ''}`,
    bindings: [{ name: 'u', kind: 'uniform' }, { name: 'part', kind: 'read' }, { name: 'out', kind: 'readwrite' }],
    code: /* wgsl */ `
struct U { count: u32, slices: u32, stride: u32, pOff: u32, oOff: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${SUM_SLICES_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  if (e >= u.count) { return; }
  var s = ${accumulate ? 'out[u.oOff + e]' : '0.0'};
  for (var z = 0u; z < u.slices; z++) { s += part[u.pOff + z * u.stride + e]; }
  out[u.oOff + e] = s;
}
`,
  };
}
