/**
 * The model's backward pass on the GPU: the gradient of the mean (or
 * mask-weighted) cross-entropy with respect to every parameter, in one flat
 * buffer of the canonical layout (padding stays zero).
 *
 * A BackwardPlan extends a ForwardPlan made in plain mode with
 * keepActivations: its dispatches walk the forward back, op by op as in
 * src/model/reference.ts `backward`, reading the saved activations, and are
 * recorded after the forward's into the same compute pass, so a gradient
 * costs one submit and no CPU round trip. Every gradient element is
 * written by exactly one invocation with a sum in a fixed order (WGSL has
 * no float atomics), so the gradient is the same bit for bit on every run.
 */
import { type GpuContext, GpuError } from '../gpu/context.ts';
import { readFloats, storageBuffer, uniformBuffer, writeBuffer } from '../gpu/buffers.ts';
import { type Dispatch, type Kernel, type KernelCache, encodeDispatches } from '../gpu/kernel.ts';
import { type ParamLayout, outputWeightName } from './params.ts';
import { type Activation } from './config.ts';
import { type ForwardBatch, ForwardPlan, subgroupAttention } from './gpu-forward.ts';
import {
  type BcastOptions, type GemmStrategy, type GemmTile, COLSUM_WG, SUM_SLICES_WG, bcastLinearKernel, bcastRowGroups, bcastShape, columnSumKernel, isBcast, linearUniformWords,
  linearGradKernel, linearGradWorkgroups, linearWorkgroups, sumSlicesKernel,
} from '../../shaders/linear.ts';
import { LN_WG, layerNormBackwardKernel, layerNormParamGradKernel } from '../../shaders/layernorm.ts';
import {
  ATTN_WG, attentionBackwardKeyValueKernel, attentionBackwardKeyValueSubgroupKernel, attentionBackwardQueryKernel,
  attentionBackwardQuerySubgroupKernel, attentionSubgroupWorkgroups,
} from '../../shaders/attention.ts';
import { EMBED_WG, embeddingBackwardPositionKernel, embeddingBackwardTokenKernel } from '../../shaders/embedding.ts';
import { LOSS_WG, crossEntropyBackwardKernel } from '../../shaders/loss.ts';

/**
 * The backward GEMMs' tile: 8 rows x 4 columns per invocation measured
 * fastest of 4x4, 4x8, 8x4, 8x8 and 2x4 for both dX and dW shapes on
 * SwiftShader (2 cores), about 2x the forward's 4x4.
 */
export const BACKWARD_TILE: GemmTile = { TM: 8, TN: 4, WX: 8, WY: 8 };

export interface BackwardOptions {
  /** The backward GEMMs' register tile. */
  tile?: GemmTile;
  /**
   * A sum over the rows of a batch that fills fewer than this many
   * workgroups is cut into slices of rows, summed in parallel, then added
   * up in order (`sumSlicesKernel`): the dW, bias and LayerNorm gradients of
   * a small model would otherwise run on one or two workgroups.
   */
  targetWorkgroups?: number;
}

/** Slices of a sum over rows hold at least this many rows. */
const MIN_ROWS_PER_SLICE = 64;

/** The slices a reduction over `rows` rows with `workgroups` per slice is cut into. */
export function rowSlices(workgroups: readonly number[], rows: number, targetWorkgroups: number): { slices: number; rowsPerSlice: number } {
  const perSlice = workgroups[0]! * workgroups[1]! * workgroups[2]!;
  const wanted = Math.min(Math.ceil(targetWorkgroups / perSlice), Math.floor(rows / MIN_ROWS_PER_SLICE));
  if (wanted <= 1) return { slices: 1, rowsPerSlice: rows };
  const rowsPerSlice = Math.ceil(rows / wanted);
  return { slices: Math.ceil(rows / rowsPerSlice), rowsPerSlice };
}

/**
 * Enough workgroups to keep every core busy: a CPU adapter has a few, a GPU
 * has many multiprocessors. On SwiftShader (2 cores) slicing measured
 * neutral (within 2% for the tiny and small presets); on a GPU a dW of a
 * small model would otherwise occupy one or two of its multiprocessors.
 */
export function defaultTargetWorkgroups(ctx: GpuContext): number {
  return ctx.adapter.isFallback ? 16 : 512;
}

/** Workgroups of a dW on the `bcast`/`subgroup` GEMM (at least one per column group). */
const DW_WORKGROUPS = 8;

export class BackwardPlan {
  /** The gradient, [layout.totalFloats] f32 in the canonical layout, after a run. */
  readonly grad: GPUBuffer;
  readonly dispatches: Dispatch[] = [];
  private readonly owned: GPUBuffer[] = [];
  private readonly grads = new Map<string, GPUBuffer>();
  private readonly tokenStart: GPUBuffer;
  private readonly tokenOrder: GPUBuffer;
  private readonly partials: GPUBuffer;
  private ceUniform!: GPUBuffer;

  private constructor(
    readonly ctx: GpuContext, readonly forward: ForwardPlan, private readonly tile: GemmTile, private readonly target: number,
  ) {
    const { layout, options: { B, T } } = forward;
    const { n_embd: C, vocab_size: V, n_head: H } = layout.config;
    const N = B * T;
    const own = (b: GPUBuffer): GPUBuffer => {
      this.owned.push(b);
      return b;
    };
    this.grad = own(storageBuffer(ctx, 'grad', layout.totalFloats * 4));
    // Gradients of the activations, by the activation they belong to.
    const sizes: Array<[string, number]> = [
      ['logits', N * V], ['resid', N * C], ['ln', N * C], ['atty', N * C], ['qkv', N * 3 * C], ['fc', N * 4 * C], ['dsum', B * H * T],
    ];
    for (const [name, floats] of sizes) this.grads.set(name, own(storageBuffer(ctx, `d${name}`, floats * 4)));
    // Partial sums of the sliced reductions: the largest of any dW, db or LayerNorm's [dw | db] times its slices.
    let partialFloats = rowSlices([Math.ceil(C / LN_WG), 1, 1], N, target).slices * 2 * C;
    for (const [inDim, outDim] of [[C, V], [C, 3 * C], [C, C], [C, 4 * C], [4 * C, C]] as const) {
      partialFloats = Math.max(partialFloats,
        rowSlices(linearGradWorkgroups(tile, outDim, inDim), N, target).slices * outDim * inDim,
        rowSlices([Math.ceil(outDim / COLSUM_WG), 1, 1], N, target).slices * outDim);
    }
    this.partials = own(storageBuffer(ctx, 'partial sums', partialFloats * 4));
    this.tokenStart = own(storageBuffer(ctx, 'token start', (V + 1) * 4));
    this.tokenOrder = own(storageBuffer(ctx, 'token order', N * 4));
  }

  /** The backward of `forward`, which must be a plain-mode plan with keepActivations. */
  static async create(ctx: GpuContext, kernels: KernelCache, forward: ForwardPlan, opts: BackwardOptions = {}): Promise<BackwardPlan> {
    if (forward.options.mode !== 'plain' || !forward.options.keepActivations) {
      throw new GpuError('backward: needs a forward plan in plain mode with keepActivations');
    }
    const plan = new BackwardPlan(ctx, forward, opts.tile ?? BACKWARD_TILE, opts.targetWorkgroups ?? defaultTargetWorkgroups(ctx));
    await plan.record(kernels);
    return plan;
  }

  private d(name: string): GPUBuffer {
    return this.grads.get(name)!;
  }

  private act(name: string): GPUBuffer {
    const b = this.forward.activations.get(name);
    if (!b) throw new Error(`backward: no activation ${name}`);
    return b;
  }

  private async record(kernels: KernelCache): Promise<void> {
    const { ctx, forward, tile, target } = this;
    const { layout, theta } = forward;
    const cfg = layout.config;
    const { B, T } = forward.options;
    const { n_embd: C, vocab_size: V, n_head: H, n_layer: L } = cfg;
    const N = B * T;
    const off = (name: string): number => layout.byName.get(name)!.offset;
    const push = (kernel: Kernel, u: Uint32Array | number[], buffers: Record<string, GPUBuffer>, workgroups: [number, number, number], label: string): GPUBuffer => {
      const ub = uniformBuffer(ctx, `${label} uniforms`, u instanceof Uint32Array ? u : new Uint32Array(u));
      this.owned.push(ub);
      this.dispatches.push({ kernel, bindGroup: kernel.bind({ u: ub, ...buffers }, label) , workgroups });
      return ub;
    };

    // vec4 loads where the dimension allows (activations start at 0, tensors at multiples of 4 floats).
    const v4 = (dim: number, tileDim: number): boolean => dim % 4 === 0 && tileDim % 4 === 0;
    // Where the forward runs an unrolled GEMM (long trainings on SwiftShader), dX and dW run on it too.
    const gemm = forward.gemmStrategy;
    const dxKernel = (inDim: number, actGrad: Activation | null): Promise<Kernel> => kernels.get(linearGradKernel({
      tile, transA: false, vec4A: false, vec4B: v4(inDim, tile.TN), accumulate: false, actGrad,
    }));
    const dwKernel = (inDim: number, outDim: number, accumulate: boolean): Promise<Kernel> => kernels.get(linearGradKernel({
      tile, transA: true, vec4A: v4(outDim, tile.TM), vec4B: v4(inDim, tile.TN), accumulate, actGrad: null,
    }));
    const colSum = await kernels.get(columnSumKernel());
    const sumSlices = { set: await kernels.get(sumSlicesKernel(false)), add: await kernels.get(sumSlicesKernel(true)) };
    /** Adds up `slices` partial results of `count` floats, `stride` apart in the partials buffer, into the gradient at `oOff`. */
    const reduce = (count: number, slices: number, stride: number, pOff: number, oOff: number, accumulate: boolean, label: string): void => {
      push(accumulate ? sumSlices.add : sumSlices.set, [count, slices, stride, pOff, oOff], { part: this.partials, out: this.grad },
        [Math.ceil(count / SUM_SLICES_WG), 1, 1], `${label} sum of slices`);
    };
    /**
     * Backward of y = x W^T + b (W [outDim][inDim] named `weight`): dx = dy W (times act'(pre) when
     * given), dW = dy^T x, db = column sums of dy; the sums over rows in slices where they would
     * otherwise fill few workgroups.
     */
    const linear = async (
      dy: GPUBuffer, x: GPUBuffer, dx: GPUBuffer, inDim: number, outDim: number, weight: string, bias: string | null,
      opts: { pre?: GPUBuffer; accumulateW?: boolean } = {},
    ): Promise<void> => {
      if (isBcast(gemm)) {
        // dX = dY W on the forward's unrolled GEMM, W read transposed: in_features columns, a reduction over out_features.
        const lin: BcastOptions = {
          mode: 'plain', strategy: gemm, inDim: outDim, outDim: inDim, tile, vec4: false, bias: false, act: null,
          resid: false, savePre: false, transW: true, actGrad: opts.pre ? cfg.activation : null,
        };
        const bufs: Record<string, GPUBuffer> = { theta, inp: dy, out: dx };
        if (opts.pre) bufs.pre = opts.pre;
        const workgroups = linearWorkgroups(lin, N, inDim, 1);
        push(await kernels.get(bcastLinearKernel(lin)), linearUniformWords(N, outDim, inDim, off(weight), 0, workgroups), bufs, workgroups, `${weight} dx`);
      } else {
        const dxBufs: Record<string, GPUBuffer> = { a: dy, b: theta, out: dx };
        if (opts.pre) dxBufs.pre = opts.pre;
        push(await dxKernel(inDim, opts.pre ? cfg.activation : null), [N, inDim, outDim, 0, off(weight), 0, outDim], dxBufs,
          linearGradWorkgroups(tile, N, inDim), `${weight} dx`);
      }
      const accumulate = opts.accumulateW ?? false;
      if (isBcast(gemm)) {
        // dW = dY^T X on the same GEMM: out_features rows, the batch's rows reduced, X in the weights' place.
        const lin: BcastOptions = {
          mode: 'plain', strategy: gemm, inDim: N, outDim: inDim, tile, vec4: false, bias: false, act: null,
          resid: false, savePre: false, transW: true, transIn: true, accumulate,
        };
        const shape = bcastShape(inDim, N, gemm);
        // Few row groups: each forms its share of X once per pass and sweeps its rows with it.
        const rowGroups = bcastRowGroups(outDim, 1, shape.colGroups, DW_WORKGROUPS);
        const rowsPer = Math.ceil(outDim / rowGroups);
        push(await kernels.get(bcastLinearKernel(lin)), [outDim, N, inDim, 0, 0, rowsPer, off(weight)], { theta: x, inp: dy, out: this.grad },
          [shape.colGroups, Math.ceil(outDim / rowsPer), 1], `${weight} dW`);
      } else {
        const w = rowSlices(linearGradWorkgroups(tile, outDim, inDim), N, target);
        if (w.slices === 1) {
          push(await dwKernel(inDim, outDim, accumulate), [outDim, inDim, N, 0, 0, off(weight), N], { a: dy, b: x, out: this.grad },
            linearGradWorkgroups(tile, outDim, inDim), `${weight} dW`);
        } else {
          push(await dwKernel(inDim, outDim, false), [outDim, inDim, N, 0, 0, 0, w.rowsPerSlice], { a: dy, b: x, out: this.partials },
            linearGradWorkgroups(tile, outDim, inDim, w.slices), `${weight} dW slices`);
          reduce(outDim * inDim, w.slices, outDim * inDim, 0, off(weight), accumulate, weight);
        }
      }
      if (!bias) return;
      const b = rowSlices([Math.ceil(outDim / COLSUM_WG), 1, 1], N, target);
      const direct = b.slices === 1;
      push(colSum, [N, outDim, direct ? off(bias) : 0, b.rowsPerSlice], { a: dy, out: direct ? this.grad : this.partials },
        [Math.ceil(outDim / COLSUM_WG), b.slices, 1], `${bias} db`);
      if (!direct) reduce(outDim, b.slices, outDim, 0, off(bias), false, bias);
    };
    const lnDx = { set: await kernels.get(layerNormBackwardKernel(false)), add: await kernels.get(layerNormBackwardKernel(true)) };
    const lnParams = await kernels.get(layerNormParamGradKernel(cfg.bias));
    /** Backward of a LayerNorm `prefix` of input x: dx (+)= ..., d weight, d bias. */
    const layerNorm = (dout: GPUBuffer, x: string, stats: string, prefix: string, accumulate: boolean): void => {
      push(accumulate ? lnDx.add : lnDx.set, [N, C, off(`${prefix}.weight`)],
        { theta, dout, x: this.act(x), stats: this.act(stats), dx: this.d('resid') }, [Math.ceil(N / LN_WG), 1, 1], `${prefix} dx`);
      const wOff = off(`${prefix}.weight`);
      const bOff = cfg.bias ? off(`${prefix}.bias`) : 0;
      const p = rowSlices([Math.ceil(C / LN_WG), 1, 1], N, target);
      const bufs = { dout, x: this.act(x), stats: this.act(stats) };
      if (p.slices === 1) {
        push(lnParams, [N, C, wOff, bOff, N, 0], { ...bufs, grad: this.grad }, [Math.ceil(C / LN_WG), 1, 1], `${prefix} dw`);
        return;
      }
      // Slice z writes [dw | db] at partials[z*2C ..].
      push(lnParams, [N, C, 0, C, p.rowsPerSlice, 2 * C], { ...bufs, grad: this.partials }, [Math.ceil(C / LN_WG), p.slices, 1], `${prefix} dw slices`);
      reduce(C, p.slices, 2 * C, 0, wOff, false, `${prefix}.weight`);
      if (cfg.bias) reduce(C, p.slices, 2 * C, C, bOff, false, `${prefix}.bias`);
    };
    const biasName = (n: string): string | null => (cfg.bias ? n : null);

    const ce = await kernels.get(crossEntropyBackwardKernel());
    this.ceUniform = push(ce, ceUniformWords(N, V, 1), {
      logits: this.act('logits'), targets: forward.targets, mask: forward.mask, dlogits: this.d('logits'),
    }, [Math.ceil(N / LOSS_WG), 1, 1], 'cross-entropy backward');
    await linear(this.d('logits'), this.act('lnf'), this.d('ln'), C, V, outputWeightName(cfg), null);
    layerNorm(this.d('ln'), `x.${L}`, 'lnfstats', 'transformer.ln_f', false);

    // As in the forward: 4 queries (keys) of a head share each key's (query's) loads.
    const sgAttn = subgroupAttention(ctx, B, H, T);
    const attnQuery = await kernels.get(sgAttn ? attentionBackwardQuerySubgroupKernel(C / H) : attentionBackwardQueryKernel(C / H));
    const attnKeyValue = await kernels.get(sgAttn ? attentionBackwardKeyValueSubgroupKernel(C / H) : attentionBackwardKeyValueKernel(C / H));
    const attnWorkgroups: [number, number, number] = [sgAttn ? attentionSubgroupWorkgroups(B, H, T) : Math.ceil((B * H * T) / ATTN_WG), 1, 1];
    for (let i = L - 1; i >= 0; i--) {
      const p = `transformer.h.${i}`;
      // x_{i+1} = xmid + mlp(ln_2(xmid)): d resid holds dL/dx_{i+1} and, after ln_2's backward adds to it, dL/dxmid.
      await linear(this.d('resid'), this.act(`fcact.${i}`), this.d('fc'), 4 * C, C, `${p}.mlp.c_proj.weight`, biasName(`${p}.mlp.c_proj.bias`),
        { pre: this.act(`fcpre.${i}`) });
      await linear(this.d('fc'), this.act(`ln2.${i}`), this.d('ln'), C, 4 * C, `${p}.mlp.c_fc.weight`, biasName(`${p}.mlp.c_fc.bias`));
      layerNorm(this.d('ln'), `xmid.${i}`, `ln2stats.${i}`, `${p}.ln_2`, true);
      // xmid = x_i + attn(ln_1(x_i)).
      await linear(this.d('resid'), this.act(`atty.${i}`), this.d('atty'), C, C, `${p}.attn.c_proj.weight`, biasName(`${p}.attn.c_proj.bias`));
      const attn = { qkv: this.act(`qkv.${i}`), lse: this.act(`lse.${i}`), dy: this.d('atty'), dqkv: this.d('qkv') };
      push(attnQuery, [B, T, C, H], { ...attn, y: this.act(`atty.${i}`), dsum: this.d('dsum') }, attnWorkgroups, `${p}.attn dq`);
      push(attnKeyValue, [B, T, C, H], { ...attn, dsum: this.d('dsum') }, attnWorkgroups, `${p}.attn dkv`);
      await linear(this.d('qkv'), this.act(`ln1.${i}`), this.d('ln'), C, 3 * C, `${p}.attn.c_attn.weight`, biasName(`${p}.attn.c_attn.bias`));
      layerNorm(this.d('ln'), `x.${i}`, `ln1stats.${i}`, `${p}.ln_1`, true);
    }

    // Tied embeddings: wte already holds the output projection's gradient, the embedding's adds to it.
    const tokens = await kernels.get(embeddingBackwardTokenKernel(cfg.tie_embeddings));
    push(tokens, [V, C, off('transformer.wte.weight')], { dx: this.d('resid'), start: this.tokenStart, order: this.tokenOrder, grad: this.grad },
      [Math.ceil((V * C) / EMBED_WG), 1, 1], 'transformer.wte.weight embedding dW');
    const positions = await kernels.get(embeddingBackwardPositionKernel());
    push(positions, [B, T, C, cfg.block_size, off('transformer.wpe.weight')], { dx: this.d('resid'), grad: this.grad },
      [Math.ceil((cfg.block_size * C) / EMBED_WG), 1, 1], 'transformer.wpe.weight dW');
  }

  /**
   * Sets the batch of the forward, the loss weights' normalisation and the
   * positions of each token (for the embedding's gather), ascending.
   */
  setBatch(batch: ForwardBatch): void {
    this.forward.setBatch(batch);
    const V = this.forward.layout.config.vocab_size;
    const N = batch.B * batch.T;
    let weight = N;
    if (batch.mask) {
      weight = 0;
      for (const m of batch.mask) weight += m;
    }
    writeBuffer(this.ctx, this.ceUniform, ceUniformWords(N, V, 1 / weight));
    const start = new Uint32Array(V + 1);
    for (let n = 0; n < N; n++) start[batch.idx[n]! + 1]!++;
    for (let v = 0; v < V; v++) start[v + 1]! += start[v]!;
    const next = start.slice(0, V);
    const order = new Uint32Array(N);
    for (let n = 0; n < N; n++) order[next[batch.idx[n]!]!++] = n;
    writeBuffer(this.ctx, this.tokenStart, start);
    writeBuffer(this.ctx, this.tokenOrder, order);
  }

  /** Queues the uniform writes of a run; then `dispatches` after the forward's may go into any pass. */
  prepare(): void {
    this.forward.prepare();
  }

  /** Records forward, loss and backward into one compute pass. */
  encode(encoder: GPUCommandEncoder): void {
    this.prepare();
    encodeDispatches(encoder, [...this.forward.dispatches, ...this.dispatches], 'forward + backward');
  }

  /** The loss and gradient at `params` on the batch last set. */
  async gradient(params: Float32Array): Promise<{ loss: number; grad: Float32Array }> {
    this.forward.setParams(params);
    const encoder = this.ctx.device.createCommandEncoder({ label: 'gradient' });
    this.encode(encoder);
    this.ctx.device.queue.submit([encoder.finish()]);
    const loss = (await readFloats(this.ctx, this.forward.output, 0, 1))[0]!;
    const grad = await readFloats(this.ctx, this.grad, 0, this.forward.layout.totalFloats);
    return { loss, grad };
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

function ceUniformWords(rows: number, V: number, invWeight: number): Uint32Array {
  const words = new Uint32Array(4);
  words[0] = rows;
  words[1] = V;
  new Float32Array(words.buffer, 8, 1)[0] = invWeight;
  return words;
}

/**
 * The loss and its gradient (flat, canonical layout) of one model on one
 * batch, on the GPU. For repeated gradients on one batch (Hessian-vector
 * products by differences of gradients), keep a BackwardPlan and call
 * `gradient` instead. `strategy` picks the forward's GEMM; dX and dW run on it too where it is `bcast` or `subgroup`.
 */
export async function gpuGradient(
  ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, params: Float32Array, batch: ForwardBatch,
  opts: { strategy?: GemmStrategy } = {},
): Promise<{ loss: number; grad: Float32Array }> {
  const forward = await ForwardPlan.create(ctx, kernels, layout, {
    mode: 'plain', points: 1, B: batch.B, T: batch.T, metric: 'ce', keepActivations: true, ...(opts.strategy ? { strategy: opts.strategy } : {}),
  });
  try {
    const backward = await BackwardPlan.create(ctx, kernels, forward);
    try {
      backward.setBatch(batch);
      return await backward.gradient(params);
    } finally {
      backward.destroy();
    }
  } finally {
    forward.destroy();
  }
}
