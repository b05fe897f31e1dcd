/**
 * The files users exchange (SPEC section 3), bytes in and bytes out: model
 * weights under nanoGPT's state_dict names, token batches, directions and
 * loss grids. Readers check every tensor's presence, dtype and shape against
 * what the file must hold and name the file, the tensor and the expected
 * shape when it does not. No Node imports: this runs in the browser too.
 */
import { InputError } from '../model/config.ts';
import { type ParamLayout, type TensorSpec } from '../model/params.ts';
import {
  type SafeTensor, type SafetensorsFile, type TensorToWrite, isFloatDtype, serializeSafetensors,
} from './safetensors.ts';

function shapeToString(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A float tensor of exactly `shape`, or an InputError naming the file, the tensor and the expected shape. */
function floatTensor(t: SafeTensor, shape: number[], source: string): Float32Array {
  if (!isFloatDtype(t.dtype)) throw new InputError(`${source}: tensor "${t.name}" has dtype ${t.dtype}, expected a float (F32, F16 or BF16)`);
  if (!sameShape(t.shape, shape)) {
    throw new InputError(`${source}: tensor "${t.name}" has shape ${shapeToString(t.shape)}, expected ${shapeToString(shape)}`);
  }
  return t.data as Float32Array;
}

function required(file: SafetensorsFile, name: string, what: string, source: string): SafeTensor {
  const t = file.tensors.get(name);
  if (!t) throw new InputError(`${source}: missing tensor "${name}" (${what})`);
  return t;
}

function rejectUnknown(file: SafetensorsFile, known: (name: string) => boolean, what: string, source: string): void {
  for (const name of file.tensors.keys()) {
    if (!known(name)) throw new InputError(`${source}: unexpected tensor "${name}" in ${what}`);
  }
}

// ---------------------------------------------------------------- model

/** torch.compile wraps the model, so a compiled model's state_dict names start with this (nanoGPT strips it too). */
const COMPILED_PREFIX = '_orig_mod.';
/** nanoGPT without flash attention keeps its causal mask as a buffer `transformer.h.{i}.attn.bias` [1, 1, bs, bs]. */
const MASK_BUFFER = /^transformer\.h\.(\d+)\.attn\.bias$/;

function checkCausalMask(t: SafeTensor, layout: ParamLayout, source: string): void {
  const bs = layout.config.block_size;
  const mask = floatTensor(t, [1, 1, bs, bs], source);
  for (let r = 0; r < bs; r++) {
    for (let c = 0; c < bs; c++) {
      if (mask[r * bs + c] !== (c <= r ? 1 : 0)) {
        throw new InputError(`${source}: tensor "${t.name}" is not nanoGPT's causal mask (lower-triangular ones) at [0, 0, ${r}, ${c}]`);
      }
    }
  }
}

function modelTensorNames(file: SafetensorsFile): Map<string, SafeTensor> {
  const names = [...file.tensors.keys()];
  if (names.length === 0 || !names.every((n) => n.startsWith(COMPILED_PREFIX))) return file.tensors;
  return new Map([...file.tensors].map(([n, t]) => [n.slice(COMPILED_PREFIX.length), { ...t, name: n.slice(COMPILED_PREFIX.length) }]));
}

/**
 * Model weights from a nanoGPT state_dict saved with safetensors, into the
 * flat canonical buffer (padding zero). With tied embeddings `lm_head.weight`
 * may be present only as an exact copy of `transformer.wte.weight`.
 */
export function paramsFromSafetensors(layout: ParamLayout, file: SafetensorsFile, source: string): Float32Array {
  const tensors = modelTensorNames(file);
  const cfg = layout.config;
  const flat = new Float32Array(layout.totalFloats);
  for (const spec of layout.tensors) {
    const t = tensors.get(spec.name);
    if (!t) {
      const hint = spec.name === 'lm_head.weight' ? '; config.json has tie_embeddings false' : '';
      throw new InputError(`${source}: missing tensor "${spec.name}" (expected shape ${shapeToString(spec.shape)}${hint})`);
    }
    flat.set(floatTensor(t, spec.shape, source), spec.offset);
  }
  for (const [name, t] of tensors) {
    if (layout.byName.has(name)) continue;
    const mask = MASK_BUFFER.exec(name);
    if (mask && Number(mask[1]) < cfg.n_layer) {
      checkCausalMask(t, layout, source);
    } else if (name === 'lm_head.weight' && cfg.tie_embeddings) {
      const wte = layout.byName.get('transformer.wte.weight')!;
      const head = floatTensor(t, wte.shape, source);
      const i = head.findIndex((v, k) => !Object.is(v, flat[wte.offset + k]));
      if (i >= 0) {
        throw new InputError(
          `${source}: tensor "lm_head.weight" differs from "transformer.wte.weight" at element ${i}, ` +
            'but config.json ties the embeddings (set "tie_embeddings": false for an untied model)',
        );
      }
    } else {
      throw new InputError(
        `${source}: unexpected tensor "${name}" with shape ${shapeToString(t.shape)}: not part of a model with ` +
          `n_layer ${cfg.n_layer}, bias ${cfg.bias}, tie_embeddings ${cfg.tie_embeddings}`,
      );
    }
  }
  return flat;
}

function specTensors(layout: ParamLayout, flat: Float32Array, prefix: string): TensorToWrite[] {
  if (flat.length !== layout.totalFloats) throw new Error(`expected a flat buffer of ${layout.totalFloats} floats, got ${flat.length}`);
  return layout.tensors.map((s: TensorSpec) => ({
    name: prefix + s.name, dtype: 'F32' as const, shape: s.shape, data: flat.subarray(s.offset, s.offset + s.size),
  }));
}

/** Model weights as nanoGPT's state_dict (no lm_head when tied), F32, canonical order. */
export function paramsToSafetensors(layout: ParamLayout, flat: Float32Array, metadata?: Record<string, string>): Uint8Array {
  return serializeSafetensors(specTensors(layout, flat, ''), metadata);
}

// ---------------------------------------------------------------- tokens

export interface TokenBatch {
  B: number;
  T: number;
  /** Inputs tokens[:, :-1], [B*T] row-major. */
  idx: Int32Array;
  /** Targets tokens[:, 1:], [B*T] row-major. */
  targets: Int32Array;
  /** Weight of each target position [B*T], or null for all ones. */
  mask: Float32Array | null;
}

/**
 * A batch of token sequences: `tokens` I32/I64 [B, T+1], optional `mask`
 * [B, T]. With `vocabSize`, every id must lie in [0, vocabSize); with
 * `blockSize`, T must not exceed it.
 */
export function tokensFromSafetensors(file: SafetensorsFile, source: string, vocabSize?: number, blockSize?: number): TokenBatch {
  rejectUnknown(file, (n) => n === 'tokens' || n === 'mask', 'a tokens file (expected "tokens" and optionally "mask")', source);
  const t = required(file, 'tokens', 'I32 or I64 token ids of shape [B, T+1]', source);
  if (t.dtype !== 'I32' && t.dtype !== 'I64') throw new InputError(`${source}: tensor "tokens" has dtype ${t.dtype}, expected I32 or I64`);
  if (t.shape.length !== 2 || t.shape[0]! < 1 || t.shape[1]! < 2) {
    throw new InputError(`${source}: tensor "tokens" has shape ${shapeToString(t.shape)}, expected [B, T+1] with B >= 1 and T+1 >= 2`);
  }
  const B = t.shape[0]!;
  const T = t.shape[1]! - 1;
  if (blockSize !== undefined && T > blockSize) {
    throw new InputError(`${source}: tensor "tokens" has shape ${shapeToString(t.shape)}: sequence length T = ${T} exceeds block_size ${blockSize} (at most [B, ${blockSize + 1}])`);
  }
  const ids = t.data as Int32Array;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || (vocabSize !== undefined && id >= vocabSize)) {
      const range = vocabSize !== undefined ? `vocab_size ${vocabSize} (ids 0..${vocabSize - 1})` : 'token ids (must be >= 0)';
      throw new InputError(`${source}: token id ${id} at tokens[${Math.floor(i / (T + 1))}, ${i % (T + 1)}] is out of range for ${range}`);
    }
  }
  const idx = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    idx.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  let mask: Float32Array | null = null;
  const m = file.tensors.get('mask');
  if (m) {
    if (m.dtype !== 'F32' && m.dtype !== 'I32') throw new InputError(`${source}: tensor "mask" has dtype ${m.dtype}, expected F32 or I32`);
    if (!sameShape(m.shape, [B, T])) throw new InputError(`${source}: tensor "mask" has shape ${shapeToString(m.shape)}, expected ${shapeToString([B, T])}`);
    mask = Float32Array.from(m.data);
    const bad = mask.findIndex((w) => !(w >= 0 && Number.isFinite(w)));
    if (bad >= 0) throw new InputError(`${source}: tensor "mask" has weight ${mask[bad]} at element ${bad}, expected finite and >= 0`);
    if (!mask.some((w) => w > 0)) throw new InputError(`${source}: tensor "mask" is all zero: no target position to take the loss on`);
  }
  return { B, T, idx, targets, mask };
}

/** Writes `tokens` I32 [B, T1] (T1 = T+1) and, when given, `mask` F32 [B, T1-1]. */
export function tokensToSafetensors(
  tokens: Int32Array, B: number, T1: number, mask?: Float32Array | null, metadata?: Record<string, string>,
): Uint8Array {
  const out: TensorToWrite[] = [{ name: 'tokens', dtype: 'I32', shape: [B, T1], data: tokens }];
  if (mask) out.push({ name: 'mask', dtype: 'F32', shape: [B, T1 - 1], data: mask });
  return serializeSafetensors(out, metadata);
}

// ---------------------------------------------------------------- directions

export interface Directions {
  /** Flat canonical buffers (padding zero). */
  d1: Float32Array;
  d2: Float32Array;
  metadata: Record<string, string>;
}

/** `d1.<param name>` and `d2.<param name>` for every parameter of the model, with the model's shapes. */
export function directionsFromSafetensors(layout: ParamLayout, file: SafetensorsFile, source: string): Directions {
  const read = (prefix: string): Float32Array => {
    const flat = new Float32Array(layout.totalFloats);
    for (const spec of layout.tensors) {
      const name = prefix + spec.name;
      const t = required(file, name, `expected shape ${shapeToString(spec.shape)}`, source);
      flat.set(floatTensor(t, spec.shape, source), spec.offset);
    }
    return flat;
  };
  const d1 = read('d1.');
  const d2 = read('d2.');
  rejectUnknown(
    file,
    (n) => (n.startsWith('d1.') || n.startsWith('d2.')) && layout.byName.has(n.slice(3)),
    'a directions file for this model (expected d1.<param> and d2.<param> for its parameters only)',
    source,
  );
  return { d1, d2, metadata: { ...file.metadata } };
}

export function directionsToSafetensors(layout: ParamLayout, dirs: Directions): Uint8Array {
  return serializeSafetensors([...specTensors(layout, dirs.d1, 'd1.'), ...specTensors(layout, dirs.d2, 'd2.')], dirs.metadata);
}

// ---------------------------------------------------------------- grid

export interface GridFile {
  nx: number;
  ny: number;
  /** 1 for a still grid. */
  frames: number;
  /** True when `loss` is [frames, ny, nx]; a still grid's loss is [ny, nx]. */
  animated: boolean;
  /** Inclusive linspaces, length nx / ny. */
  alpha: Float32Array;
  beta: Float32Array;
  /** [frames][ny][nx]: loss[(f*ny + j)*nx + i] at centre + alpha[i] d1 + beta[j] d2; NaN/Inf kept. */
  loss: Float32Array;
  /** [checkpoints, 2]: (a_t, b_t) of each checkpoint projected onto the plane. */
  path?: Float32Array;
  /** [checkpoints]: distance of each checkpoint from the plane. */
  pathResidual?: Float32Array;
  /** [checkpoints]: true loss of each checkpoint. */
  pathLoss?: Float32Array;
  /** [checkpoints]: loss at centre + a_t d1 + b_t d2 (the height on the plane). */
  pathPlaneLoss?: Float32Array;
  /** [checkpoints]: training step of each checkpoint. */
  pathStep?: Int32Array;
  metadata: Record<string, string>;
}

/** The per-checkpoint vectors of a grid: field of GridFile, tensor name in the file. */
const PATH_VECTORS = [
  ['pathResidual', 'path_residual'],
  ['pathLoss', 'path_loss'],
  ['pathPlaneLoss', 'path_plane_loss'],
] as const;

const GRID_TENSORS = new Set(['loss', 'alpha', 'beta', 'path', 'path_step', ...PATH_VECTORS.map(([, n]) => n)]);

function checkAxis(values: Float32Array, name: string, source: string): void {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new InputError(`${source}: tensor "${name}" has the non-finite value ${values[bad]} at element ${bad}`);
  const sign = Math.sign(values[values.length - 1]! - values[0]!);
  for (let i = 1; i < values.length; i++) {
    if (Math.sign(values[i]! - values[i - 1]!) !== sign || sign === 0) {
      throw new InputError(`${source}: tensor "${name}" must be strictly monotonic (a linspace), but elements ${i - 1} and ${i} are ${values[i - 1]} and ${values[i]}`);
    }
  }
}

export function gridFromSafetensors(file: SafetensorsFile, source: string): GridFile {
  rejectUnknown(file, (n) => GRID_TENSORS.has(n), `a grid file (expected ${[...GRID_TENSORS].join(', ')})`, source);
  const lossT = required(file, 'loss', 'F32 [ny, nx] or [frames, ny, nx]', source);
  if ((lossT.shape.length !== 2 && lossT.shape.length !== 3) || lossT.shape.some((d) => d < 1)) {
    throw new InputError(`${source}: tensor "loss" has shape ${shapeToString(lossT.shape)}, expected [ny, nx] or [frames, ny, nx] with every size >= 1`);
  }
  const animated = lossT.shape.length === 3;
  const [frames, ny, nx] = animated ? (lossT.shape as [number, number, number]) : [1, lossT.shape[0]!, lossT.shape[1]!];
  const loss = floatTensor(lossT, lossT.shape, source);
  const alpha = floatTensor(required(file, 'alpha', `expected shape [${nx}]`, source), [nx], source);
  const beta = floatTensor(required(file, 'beta', `expected shape [${ny}]`, source), [ny], source);
  checkAxis(alpha, 'alpha', source);
  checkAxis(beta, 'beta', source);
  const grid: GridFile = { nx, ny, frames, animated, alpha, beta, loss, metadata: { ...file.metadata } };

  const pathT = file.tensors.get('path');
  if (!pathT) {
    const orphan = [...file.tensors.keys()].find((n) => n.startsWith('path_'));
    if (orphan) throw new InputError(`${source}: tensor "${orphan}" needs the tensor "path" [checkpoints, 2], which is missing`);
    return grid;
  }
  if (pathT.shape.length !== 2 || pathT.shape[1] !== 2) {
    throw new InputError(`${source}: tensor "path" has shape ${shapeToString(pathT.shape)}, expected [checkpoints, 2]`);
  }
  const P = pathT.shape[0]!;
  grid.path = floatTensor(pathT, [P, 2], source);
  for (const [field, name] of PATH_VECTORS) {
    const t = file.tensors.get(name);
    if (t) grid[field] = floatTensor(t, [P], source);
  }
  const stepT = file.tensors.get('path_step');
  if (stepT) {
    if (stepT.dtype !== 'I32' && stepT.dtype !== 'I64') throw new InputError(`${source}: tensor "path_step" has dtype ${stepT.dtype}, expected I32 or I64`);
    if (!sameShape(stepT.shape, [P])) throw new InputError(`${source}: tensor "path_step" has shape ${shapeToString(stepT.shape)}, expected [${P}]`);
    grid.pathStep = stepT.data as Int32Array;
  }
  return grid;
}

export function gridToSafetensors(grid: GridFile): Uint8Array {
  const { nx, ny, frames } = grid;
  if (!grid.animated && frames !== 1) throw new Error(`gridToSafetensors: a still grid has 1 frame, got ${frames}`);
  const out: TensorToWrite[] = [
    { name: 'loss', dtype: 'F32', shape: grid.animated ? [frames, ny, nx] : [ny, nx], data: grid.loss },
    { name: 'alpha', dtype: 'F32', shape: [nx], data: grid.alpha },
    { name: 'beta', dtype: 'F32', shape: [ny], data: grid.beta },
  ];
  if (grid.path) {
    const P = grid.path.length / 2;
    out.push({ name: 'path', dtype: 'F32', shape: [P, 2], data: grid.path });
    for (const [field, name] of PATH_VECTORS) {
      const v = grid[field];
      if (v) out.push({ name, dtype: 'F32', shape: [P], data: v });
    }
    if (grid.pathStep) out.push({ name: 'path_step', dtype: 'I32', shape: [P], data: grid.pathStep });
  } else if (PATH_VECTORS.some(([field]) => grid[field]) || grid.pathStep) {
    throw new Error('gridToSafetensors: path_* vectors need a path');
  }
  return serializeSafetensors(out, grid.metadata);
}
