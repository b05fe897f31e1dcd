/**
 * The model's forward pass and loss on the GPU, for `points` models at once.
 *
 * A ForwardPlan owns the buffers and the recorded dispatch list of one
 * configuration (model, batch shape, number of points, weight mode, metric);
 * running it is one compute pass with no CPU round trip between layers:
 * every chunk of grid points replays the same dispatches with new
 * coordinates. In `plain` mode (evaluation, training) `points` is 1 and the
 * weights are theta itself; in `perturbed` mode point p evaluates
 * theta + a_p d1 + b_p d2, formed inside the kernels.
 *
 * With `keepActivations` every intermediate tensor gets its own buffer (and
 * LayerNorm statistics, attention log-sum-exps and MLP pre-activations are
 * stored) so that a backward pass can read them; without it, buffers are
 * shared between layers and a chunk needs only a few per-point slabs.
 */
import { type GpuContext, GpuError } from '../gpu/context.ts';
import { readFloats, storageBuffer, uniformBuffer, writeBuffer } from '../gpu/buffers.ts';
import { type Dispatch, type Kernel, type KernelCache, encodeDispatches } from '../gpu/kernel.ts';
import { type ParamLayout, outputWeightName } from './params.ts';
import { type WeightMode } from '../../shaders/common.ts';
import { embeddingKernel, EMBED_WG } from '../../shaders/embedding.ts';
import { layerNormKernel, LN_WG } from '../../shaders/layernorm.ts';
import {
  type GemmStrategy, type GemmTile, type LinearOptions, TILED_CANDIDATES, forwardLinearKernel, gemmCandidates, gemmFor, linearUniformWords, linearWorkgroups, slabBytes,
} from '../../shaders/linear.ts';
import { type GemmChoice, fastestDispatch } from './gemm-tune.ts';
import { attentionKernel, attentionSubgroupKernel, attentionSubgroupWorkgroups, ATTN_WG } from '../../shaders/attention.ts';
import { type Metric, tokenLossKernel, reduceMeanKernel, LOSS_WG } from '../../shaders/loss.ts';
import { type Activation } from './config.ts';

/** Token ids and targets of B sequences of T positions, with per-position loss weights. */
export interface ForwardBatch {
  B: number;
  T: number;
  idx: Int32Array;
  targets: Int32Array;
  mask: Float32Array | null;
}

export interface ForwardPlanOptions {
  mode: WeightMode;
  /** Number of models evaluated by one run (the chunk capacity). */
  points: number;
  B: number;
  T: number;
  metric: Metric;
  keepActivations: boolean;
  tile?: GemmTile;
  /** The job's GEMM FLOPs in all (forwardGemmFlops x points x replays): weighs the default strategy's compile time (gemmFor). */
  workFlops?: number;
  /** GEMM strategy (see shaders/linear.ts; default gemmFor(adapter, workFlops)); `slab` falls back to `register` where the slab does not fit, `subgroup` to `bcast` on a device without subgroups. */
  strategy?: GemmStrategy;
  /**
   * Time the candidate tiles (gemmCandidates: `tiled`, whatever the strategy
   * above) on each Linear layer and keep the fastest (src/model/gemm-tune.ts);
   * needs timestamp-query, else the strategy above runs. Default: gemmFor's
   * choice (GPUs, big jobs) for perturbed plans (grids) given no strategy.
   * Single-model plans (training, evaluation) are not tuned by default: what
   * the benchmark and the profile time for training is what it runs.
   */
  tune?: boolean;
  /** The `tiled` tiles a tuned plan tries (default TILED_CANDIDATES). */
  tuneTiles?: readonly GemmTile[];
}

interface ActivationSpec {
  kind: string;
  floatsPerPoint: number;
}

/** The per-point activation tensors of a forward, by name, and which may share storage. */
function activationSpecs(layout: ParamLayout, B: number, T: number, keep: boolean): Map<string, ActivationSpec> {
  const { n_embd: C, n_layer: L, vocab_size: V, n_head: H } = layout.config;
  const N = B * T;
  const specs = new Map<string, ActivationSpec>();
  const add = (name: string, kind: string, floats: number): void => {
    specs.set(name, { kind: keep ? name : kind, floatsPerPoint: floats });
  };
  add('x.0', 'x', N * C);
  for (let i = 0; i < L; i++) {
    add(`ln1.${i}`, 'ln', N * C);
    add(`qkv.${i}`, 'qkv', N * 3 * C);
    add(`atty.${i}`, 'atty', N * C);
    add(`xmid.${i}`, 'xmid', N * C);
    add(`ln2.${i}`, 'ln', N * C);
    add(`fcact.${i}`, 'fc', N * 4 * C);
    add(`x.${i + 1}`, 'x', N * C);
    if (keep) {
      add(`ln1stats.${i}`, '', N * 2);
      add(`lse.${i}`, '', B * H * T);
      add(`ln2stats.${i}`, '', N * 2);
      add(`fcpre.${i}`, '', N * 4 * C);
    }
  }
  add('lnf', 'ln', N * C);
  if (keep) add('lnfstats', '', N * 2);
  add('logits', 'logits', N * V);
  add('value', 'value', N);
  return specs;
}

/**
 * Whether plans on this device run the subgroup kernels of attention and
 * LayerNorm (forward and backward): SwiftShader whose device has subgroups,
 * where they share their reads between lanes; they compile about as fast
 * as the generic kernels, so every job gets them, whatever its GEMM.
 */
export function subgroupKernels(ctx: GpuContext): boolean {
  return ctx.adapter.isFallback && ctx.device.features.has('subgroups');
}

/** The same for attention of B sequences of T tokens and nHead heads, whose workgroups must fit one dispatch. */
export function subgroupAttention(ctx: GpuContext, B: number, nHead: number, T: number): boolean {
  return subgroupKernels(ctx) && attentionSubgroupWorkgroups(B, nHead, T) <= ctx.adapter.limits.maxComputeWorkgroupsPerDimension!;
}

/** Multiply-add FLOPs of one forward's Linear layers (2 per MAC): 2 N (12 L C^2 + V C), N = B T. */
export function forwardGemmFlops(layout: ParamLayout, B: number, T: number): number {
  const { n_embd: C, n_layer: L, vocab_size: V } = layout.config;
  return 2 * B * T * (12 * L * C * C + V * C);
}

/** Distinct storage a forward needs per point, in bytes, and its largest single tensor. */
export function forwardBytesPerPoint(layout: ParamLayout, B: number, T: number, keep: boolean): { total: number; largest: number } {
  const byKind = new Map<string, number>();
  for (const s of activationSpecs(layout, B, T, keep).values()) {
    byKind.set(s.kind, Math.max(byKind.get(s.kind) ?? 0, s.floatsPerPoint * 4));
  }
  let total = 0;
  let largest = 0;
  for (const b of byKind.values()) {
    total += b;
    largest = Math.max(largest, b);
  }
  return { total, largest };
}

export class ForwardPlan {
  readonly theta: GPUBuffer;
  readonly d1: GPUBuffer | null;
  readonly d2: GPUBuffer | null;
  readonly coords: GPUBuffer | null;
  readonly idx: GPUBuffer;
  readonly targets: GPUBuffer;
  readonly mask: GPUBuffer;
  /** The per-point results ([points] f32) of the last run, at `outOffset`. */
  readonly output: GPUBuffer;
  /** Activation buffers by name (`x.0`, `ln1.0`, `qkv.0`, ..., `logits`, `value`); shared ones appear under several names. */
  readonly activations = new Map<string, GPUBuffer>();
  readonly dispatches: Dispatch[] = [];
  /** The GEMM of each Linear layer, in order, with the tuner's timings where it ran. */
  readonly gemms: GemmChoice[] = [];
  private readonly owned: GPUBuffer[] = [];
  private reduceUniform!: GPUBuffer;
  private maskWeight = 1;

  /** Whether the plan's Linear layers had their GEMMs chosen by timing (options.tune on a device with timestamp-query). */
  get tuned(): boolean {
    return this.options.tune && this.ctx.hasTimestamps;
  }

  /** What the plan's GEMM is called in reports: `tuned` where tuned (the kernels' names then say which tile each layer runs), else gemmStrategy. */
  get gemmName(): GemmStrategy | 'tuned' {
    return this.tuned ? 'tuned' : this.gemmStrategy;
  }

  /** The GEMM the plan runs: options.strategy, `subgroup` falling back to `bcast` on a device without subgroups (`slab` may still fall back to `register` layer by layer). */
  get gemmStrategy(): GemmStrategy {
    const wanted = this.options.strategy;
    return wanted === 'subgroup' && !this.ctx.device.features.has('subgroups') ? 'bcast' : wanted;
  }

  private constructor(
    readonly ctx: GpuContext,
    readonly layout: ParamLayout,
    readonly options: Required<ForwardPlanOptions>,
  ) {
    const { points, B, T, mode } = options;
    const N = B * T;
    const own = (b: GPUBuffer): GPUBuffer => {
      this.owned.push(b);
      return b;
    };
    const floats = layout.totalFloats;
    this.theta = own(storageBuffer(ctx, 'theta', floats * 4));
    this.d1 = mode === 'perturbed' ? own(storageBuffer(ctx, 'd1', floats * 4)) : null;
    this.d2 = mode === 'perturbed' ? own(storageBuffer(ctx, 'd2', floats * 4)) : null;
    this.coords = mode === 'perturbed' ? own(storageBuffer(ctx, 'coords', points * 8)) : null;
    this.idx = own(storageBuffer(ctx, 'idx', N * 4));
    this.targets = own(storageBuffer(ctx, 'targets', N * 4));
    this.mask = own(storageBuffer(ctx, 'mask', new Float32Array(N).fill(1)));
    this.output = own(storageBuffer(ctx, 'forward output', points * 4));
    const maxBinding = ctx.adapter.limits.maxStorageBufferBindingSize!;
    const byKind = new Map<string, GPUBuffer>();
    for (const [name, spec] of activationSpecs(layout, B, T, options.keepActivations)) {
      const bytes = spec.floatsPerPoint * 4 * points;
      if (bytes > maxBinding) {
        throw new GpuError(`forward: activation ${name} needs ${bytes} bytes for ${points} points, over the device's maxStorageBufferBindingSize (${maxBinding}); use fewer points per chunk`);
      }
      let buf = byKind.get(spec.kind);
      if (!buf) {
        buf = own(storageBuffer(ctx, `act ${spec.kind}`, forwardSlabBytes(layout, B, T, options.keepActivations, spec.kind) * points));
        byKind.set(spec.kind, buf);
      }
      this.activations.set(name, buf);
    }
  }

  static async create(ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, opts: ForwardPlanOptions): Promise<ForwardPlan> {
    const cfg = layout.config;
    if (opts.T > cfg.block_size) throw new GpuError(`forward: sequence length ${opts.T} exceeds block_size ${cfg.block_size}`);
    if (opts.mode === 'plain' && opts.points !== 1) throw new GpuError('forward: plain mode evaluates exactly one point');
    const auto = gemmFor(ctx.adapter, opts.workFlops);
    const plan = new ForwardPlan(ctx, layout, {
      ...auto, tune: auto.tune && opts.strategy === undefined && opts.mode === 'perturbed', tuneTiles: TILED_CANDIDATES, workFlops: 0, ...opts,
    });
    await plan.record(kernels);
    return plan;
  }

  private act(name: string): GPUBuffer {
    const b = this.activations.get(name);
    if (!b) throw new Error(`forward: no activation ${name}`);
    return b;
  }

  private weights(): Record<string, GPUBuffer> {
    const w: Record<string, GPUBuffer> = { theta: this.theta };
    if (this.options.mode === 'perturbed') Object.assign(w, { d1: this.d1!, d2: this.d2!, coords: this.coords! });
    return w;
  }

  private async record(kernels: KernelCache): Promise<void> {
    const { layout, ctx } = this;
    const cfg = layout.config;
    const { mode, points, B, T, keepActivations: keep, tile, metric } = this.options;
    const C = cfg.n_embd;
    const N = B * T;
    const off = (name: string): number => layout.byName.get(name)!.offset;
    const bOff = (name: string): number => (cfg.bias ? off(name) : 0);
    const W = this.weights();
    const push = (kernel: Kernel, u: number[] | Uint32Array, buffers: Record<string, GPUBuffer>, workgroups: [number, number, number], label: string, pointsAxis: 0 | 2 = 2): GPUBuffer => {
      const ub = uniformBuffer(ctx, `${label} uniforms`, u instanceof Uint32Array ? u : new Uint32Array(u));
      this.owned.push(ub);
      this.dispatches.push({ kernel, bindGroup: kernel.bind({ u: ub, ...buffers }, label), workgroups, pointsAxis });
      return ub;
    };

    const embed = await kernels.get(embeddingKernel(mode));
    push(embed, [N, C, T, off('transformer.wte.weight'), off('transformer.wpe.weight')], { ...W, idx: this.idx, x: this.act('x.0') },
      [Math.ceil((N * C) / EMBED_WG), 1, points], 'embedding');

    const sg = subgroupKernels(ctx);
    const lnK = await kernels.get(layerNormKernel({ mode, bias: cfg.bias, saveStats: keep, ...(sg ? { subgroupC: C } : {}) }));
    const layerNorm = (inName: string, outName: string, statsName: string, prefix: string): void => {
      const bufs: Record<string, GPUBuffer> = { ...W, x: this.act(inName), out: this.act(outName) };
      if (keep) bufs.stats = this.act(statsName);
      push(lnK, [N, C, off(`${prefix}.weight`), bOff(`${prefix}.bias`)], bufs, [Math.ceil(N / LN_WG), 1, points], prefix);
    };
    const linear = async (
      inName: string, outName: string, inDim: number, outDim: number, weightName: string, biasName: string | null,
      extra: { act?: Activation; resid?: string; pre?: string },
    ): Promise<void> => {
      const base = {
        mode, inDim, vec4: inDim % 4 === 0, bias: biasName !== null, act: extra.act ?? null,
        resid: extra.resid !== undefined, savePre: extra.pre !== undefined,
      };
      const workgroupBytes = ctx.adapter.limits.maxComputeWorkgroupStorageSize!;
      const wanted = this.gemmStrategy;
      const strategy = wanted === 'slab' && slabBytes(tile, inDim) > workgroupBytes ? 'register' : wanted;
      const candidates = this.tuned ? gemmCandidates(base, workgroupBytes, this.options.tuneTiles) : [];
      const options: LinearOptions[] = candidates.length > 0 ? candidates : [{ ...base, strategy, tile }];
      const bufs: Record<string, GPUBuffer> = { ...W, inp: this.act(inName), out: this.act(outName) };
      if (extra.resid) bufs.resid = this.act(extra.resid);
      if (extra.pre) bufs.pre = this.act(extra.pre);
      const made = await Promise.all(options.map(async (lin) => {
        const workgroups = linearWorkgroups(lin, N, outDim, points);
        const words = linearUniformWords(N, inDim, outDim, off(weightName), biasName ? off(biasName) : 0, workgroups);
        return { kernel: await kernels.get(forwardLinearKernel(lin, outDim)), words, workgroups };
      }));
      let pick = 0;
      let trials: GemmChoice['trials'] = [];
      if (made.length > 1) {
        const uniforms = made.map((m) => uniformBuffer(ctx, `${weightName} tuning uniforms`, new Uint32Array(m.words)));
        try {
          const trial = made.map((m, i) => ({ kernel: m.kernel, bindGroup: m.kernel.bind({ u: uniforms[i]!, ...bufs }, `${weightName} tuning`), workgroups: m.workgroups }));
          const best = await fastestDispatch(ctx, JSON.stringify({ ...base, N, outDim, points }), trial);
          if (best) ({ index: pick, trials } = best);
        } finally {
          for (const u of uniforms) u.destroy();
        }
      }
      const m = made[pick]!;
      push(m.kernel, m.words, bufs, m.workgroups, weightName);
      this.gemms.push({ weight: weightName, kernel: m.kernel.name, flops: 2 * N * inDim * outDim * points, trials });
    };
    const sgAttn = subgroupAttention(ctx, B, cfg.n_head, T);
    const attn = await kernels.get(sgAttn ? attentionSubgroupKernel(C / cfg.n_head, keep) : attentionKernel(C / cfg.n_head, keep));
    const attnGroups = sgAttn ? attentionSubgroupWorkgroups(B, cfg.n_head, T) : Math.ceil((B * cfg.n_head * T) / ATTN_WG);
    const biasName = (n: string): string | null => (cfg.bias ? n : null);

    for (let i = 0; i < cfg.n_layer; i++) {
      const p = `transformer.h.${i}`;
      layerNorm(`x.${i}`, `ln1.${i}`, `ln1stats.${i}`, `${p}.ln_1`);
      await linear(`ln1.${i}`, `qkv.${i}`, C, 3 * C, `${p}.attn.c_attn.weight`, biasName(`${p}.attn.c_attn.bias`), {});
      const attnBufs: Record<string, GPUBuffer> = { qkv: this.act(`qkv.${i}`), y: this.act(`atty.${i}`) };
      if (keep) attnBufs.lse = this.act(`lse.${i}`);
      push(attn, [B, T, C, cfg.n_head], attnBufs, [attnGroups, 1, points], `${p}.attn`);
      await linear(`atty.${i}`, `xmid.${i}`, C, C, `${p}.attn.c_proj.weight`, biasName(`${p}.attn.c_proj.bias`), { resid: `x.${i}` });
      layerNorm(`xmid.${i}`, `ln2.${i}`, `ln2stats.${i}`, `${p}.ln_2`);
      await linear(`ln2.${i}`, `fcact.${i}`, C, 4 * C, `${p}.mlp.c_fc.weight`, biasName(`${p}.mlp.c_fc.bias`),
        { act: cfg.activation, ...(keep ? { pre: `fcpre.${i}` } : {}) });
      await linear(`fcact.${i}`, `x.${i + 1}`, 4 * C, C, `${p}.mlp.c_proj.weight`, biasName(`${p}.mlp.c_proj.bias`), { resid: `xmid.${i}` });
    }
    layerNorm(`x.${cfg.n_layer}`, 'lnf', 'lnfstats', 'transformer.ln_f');
    await linear('lnf', 'logits', C, cfg.vocab_size, outputWeightName(cfg), null, {});
    const tl = await kernels.get(tokenLossKernel(metric));
    push(tl, [N, cfg.vocab_size], { logits: this.act('logits'), targets: this.targets, mask: this.mask, value: this.act('value') },
      [Math.ceil(N / LOSS_WG), 1, points], 'token-loss');
    const red = await kernels.get(reduceMeanKernel());
    this.reduceUniform = push(red, reduceUniformWords(N, points, 0, 1 / N), { value: this.act('value'), out: this.output }, [points, 1, 1], 'reduce', 0);
  }

  setParams(flat: Float32Array): void {
    checkLength(flat, this.layout.totalFloats, 'parameters');
    writeBuffer(this.ctx, this.theta, flat);
  }

  setDirections(d1: Float32Array, d2: Float32Array): void {
    if (!this.d1 || !this.d2) throw new GpuError('forward: directions need a perturbed plan');
    checkLength(d1, this.layout.totalFloats, 'd1');
    checkLength(d2, this.layout.totalFloats, 'd2');
    writeBuffer(this.ctx, this.d1, d1);
    writeBuffer(this.ctx, this.d2, d2);
  }

  setBatch(batch: ForwardBatch): void {
    const { B, T } = this.options;
    const V = this.layout.config.vocab_size;
    if (batch.B !== B || batch.T !== T) throw new GpuError(`forward: batch is ${batch.B}x${batch.T}, plan expects ${B}x${T}`);
    for (const ids of [batch.idx, batch.targets]) {
      for (let i = 0; i < ids.length; i++) {
        if (ids[i]! < 0 || ids[i]! >= V) throw new GpuError(`forward: token id ${ids[i]} at position ${i} is outside the vocabulary (0..${V - 1})`);
      }
    }
    writeBuffer(this.ctx, this.idx, new Uint32Array(batch.idx.buffer, batch.idx.byteOffset, batch.idx.length));
    writeBuffer(this.ctx, this.targets, new Uint32Array(batch.targets.buffer, batch.targets.byteOffset, batch.targets.length));
    const mask = batch.mask ?? new Float32Array(B * T).fill(1);
    let weight = 0;
    for (const m of mask) weight += m;
    if (!(weight > 0)) throw new GpuError('forward: the loss mask selects no position');
    this.maskWeight = weight;
    writeBuffer(this.ctx, this.mask, mask);
  }

  /** Sets the (a, b) of the first coords.length/2 points. */
  setCoords(coords: Float32Array): void {
    if (!this.coords) throw new GpuError('forward: coordinates need a perturbed plan');
    if (coords.length > this.options.points * 2) throw new GpuError(`forward: ${coords.length / 2} points given, plan holds ${this.options.points}`);
    writeBuffer(this.ctx, this.coords, coords);
  }

  /**
   * Encodes one run: the first `count` points' results land at
   * output[outOffset .. outOffset + count). The uniform write is queued now,
   * so submit the encoder before encoding the next run.
   */
  encode(encoder: GPUCommandEncoder, count = this.options.points, outOffset = 0, timestampWrites?: GPUComputePassTimestampWrites): void {
    this.prepare(count, outOffset);
    encodeDispatches(encoder, this.dispatches, 'forward', timestampWrites, count);
  }

  /**
   * Queues the uniform write that `encode` makes before recording, for a
   * caller that records `dispatches` into its own pass (the training step
   * puts forward, backward and optimizer into one).
   */
  prepare(count = this.options.points, outOffset = 0): void {
    writeBuffer(this.ctx, this.reduceUniform, reduceUniformWords(this.options.B * this.options.T, count, outOffset, 1 / this.maskWeight));
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

function reduceUniformWords(rows: number, count: number, outOffset: number, invWeight: number): Uint32Array {
  const words = new Uint32Array(4);
  words[0] = rows;
  words[1] = count;
  words[2] = outOffset;
  new Float32Array(words.buffer, 12, 1)[0] = invWeight;
  return words;
}

function forwardSlabBytes(layout: ParamLayout, B: number, T: number, keep: boolean, kind: string): number {
  let floats = 0;
  for (const s of activationSpecs(layout, B, T, keep).values()) if (s.kind === kind) floats = Math.max(floats, s.floatsPerPoint);
  return floats * 4;
}

function checkLength(a: Float32Array, expected: number, what: string): void {
  if (a.length !== expected) throw new GpuError(`forward: ${what} has ${a.length} floats, the layout has ${expected}`);
}

/** The mean loss of one model on one batch, on the GPU (what `losscape eval` prints). */
export async function gpuLoss(
  ctx: GpuContext, kernels: KernelCache, layout: ParamLayout, params: Float32Array, batch: ForwardBatch, metric: Metric = 'ce',
): Promise<number> {
  const plan = await ForwardPlan.create(ctx, kernels, layout, { mode: 'plain', points: 1, B: batch.B, T: batch.T, metric, keepActivations: false });
  try {
    plan.setParams(params);
    plan.setBatch(batch);
    const encoder = ctx.device.createCommandEncoder({ label: 'loss' });
    plan.encode(encoder);
    ctx.device.queue.submit([encoder.finish()]);
    return (await readFloats(ctx, plan.output, 0, 1))[0]!;
  } finally {
    plan.destroy();
  }
}
