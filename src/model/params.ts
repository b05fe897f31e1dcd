/**
 * The canonical parameter layout: every tensor of the model in nanoGPT's
 * state_dict order (SPEC section 2), laid out in one flat f32 buffer. Each
 * tensor starts on a multiple of 4 floats so that GPU kernels may use vec4
 * loads; the few padding floats between tensors are always zero and belong
 * to no tensor.
 */
import { type GPTConfig } from './config.ts';
import { Rng } from '../util/rng.ts';

/** What a tensor is, for direction normalisation and weight decay. */
export type TensorRole = 'embedding' | 'matrix' | 'vector';

export interface TensorSpec {
  name: string;
  shape: number[];
  /** Offset of the first element in the flat buffer, in floats. */
  offset: number;
  /** Number of elements (product of shape). */
  size: number;
  role: TensorRole;
  /** Block index for `transformer.h.{i}.*`, else -1. */
  layer: number;
}

export interface ParamLayout {
  config: GPTConfig;
  tensors: TensorSpec[];
  byName: Map<string, TensorSpec>;
  /** Length of the flat buffer in floats, padding included. */
  totalFloats: number;
  /** Number of real parameters (padding excluded). */
  paramCount: number;
}

const ALIGN_FLOATS = 4;

/** Names and shapes in canonical order, before offsets are assigned. */
export function tensorShapes(cfg: GPTConfig): Array<Omit<TensorSpec, 'offset' | 'size'>> {
  const C = cfg.n_embd;
  const out: Array<Omit<TensorSpec, 'offset' | 'size'>> = [];
  const add = (name: string, shape: number[], role: TensorRole, layer = -1): void => {
    out.push({ name, shape, role, layer });
  };
  add('transformer.wte.weight', [cfg.vocab_size, C], 'embedding');
  add('transformer.wpe.weight', [cfg.block_size, C], 'embedding');
  for (let i = 0; i < cfg.n_layer; i++) {
    const p = `transformer.h.${i}.`;
    add(`${p}ln_1.weight`, [C], 'vector', i);
    if (cfg.bias) add(`${p}ln_1.bias`, [C], 'vector', i);
    add(`${p}attn.c_attn.weight`, [3 * C, C], 'matrix', i);
    if (cfg.bias) add(`${p}attn.c_attn.bias`, [3 * C], 'vector', i);
    add(`${p}attn.c_proj.weight`, [C, C], 'matrix', i);
    if (cfg.bias) add(`${p}attn.c_proj.bias`, [C], 'vector', i);
    add(`${p}ln_2.weight`, [C], 'vector', i);
    if (cfg.bias) add(`${p}ln_2.bias`, [C], 'vector', i);
    add(`${p}mlp.c_fc.weight`, [4 * C, C], 'matrix', i);
    if (cfg.bias) add(`${p}mlp.c_fc.bias`, [4 * C], 'vector', i);
    add(`${p}mlp.c_proj.weight`, [C, 4 * C], 'matrix', i);
    if (cfg.bias) add(`${p}mlp.c_proj.bias`, [C], 'vector', i);
  }
  add('transformer.ln_f.weight', [C], 'vector');
  if (cfg.bias) add('transformer.ln_f.bias', [C], 'vector');
  if (!cfg.tie_embeddings) add('lm_head.weight', [cfg.vocab_size, C], 'matrix');
  return out;
}

export function paramLayout(cfg: GPTConfig): ParamLayout {
  const tensors: TensorSpec[] = [];
  let offset = 0;
  let paramCount = 0;
  for (const t of tensorShapes(cfg)) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    tensors.push({ ...t, offset, size });
    paramCount += size;
    offset += Math.ceil(size / ALIGN_FLOATS) * ALIGN_FLOATS;
  }
  return { config: cfg, tensors, byName: new Map(tensors.map((t) => [t.name, t])), totalFloats: offset, paramCount };
}

/** The tensor that holds the output projection: lm_head when untied, else wte. */
export function outputWeightName(cfg: GPTConfig): string {
  return cfg.tie_embeddings ? 'transformer.wte.weight' : 'lm_head.weight';
}

/** A named view into a flat buffer (no copy). */
export function view<T extends Float32Array | Float64Array>(layout: ParamLayout, flat: T, name: string): T {
  const t = layout.byName.get(name);
  if (!t) throw new Error(`no tensor named ${name} in this model`);
  return flat.subarray(t.offset, t.offset + t.size) as T;
}

export function tensor(layout: ParamLayout, name: string): TensorSpec {
  const t = layout.byName.get(name);
  if (!t) throw new Error(`no tensor named ${name} in this model`);
  return t;
}

/**
 * GPT-2 initialisation as nanoGPT does it: Linear and Embedding weights
 * N(0, 0.02), residual projections (`c_proj.weight`) N(0, 0.02/sqrt(2*n_layer)),
 * biases zero, LayerNorm weight one.
 */
export function initParams(layout: ParamLayout, seed: number): Float32Array {
  const flat = new Float32Array(layout.totalFloats);
  const rng = new Rng(seed);
  const residualStd = 0.02 / Math.sqrt(2 * layout.config.n_layer);
  for (const t of layout.tensors) {
    if (t.role === 'vector') {
      if (t.name.endsWith('.weight')) flat.fill(1, t.offset, t.offset + t.size);
    } else {
      rng.fillNormal(flat, t.name.endsWith('c_proj.weight') ? residualStd : 0.02, t.offset, t.size);
    }
  }
  return flat;
}
