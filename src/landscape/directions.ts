/**
 * Directions of the landscape plane `theta + a d1 + b d2` (SPEC section 4),
 * as flat buffers in the canonical layout of src/model/params.ts (padding
 * floats stay zero). Random directions are normalised to the centre's scale
 * as in Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"
 * (filter normalisation, section 4), or per tensor, or over the whole model.
 */
import { InputError } from '../model/config.ts';
import { type ParamLayout, type TensorSpec, tensor } from '../model/params.ts';
import { Rng } from '../util/rng.ts';
import { cosine, norm } from './linalg.ts';

export { cosine, dot, norm, orthogonalize } from './linalg.ts';

export type NormalizationMode = 'filter' | 'layer' | 'model' | 'none';
export type DirectionKind = 'random' | 'filter' | 'layer' | 'model';

/** The tensors a direction may touch; `spec` is the flag value it was parsed from. */
export interface TensorMask {
  spec: string;
  names: ReadonlySet<string>;
}

export interface NormalizeOptions {
  mode: NormalizationMode;
  /** Give 1-D tensors (biases, LayerNorm) a direction, normalised as whole tensors; else they get zero. */
  includeVectors: boolean;
  /** Tensors outside the mask get zero (and do not count in `model` norms). */
  mask?: TensorMask;
}

export interface MakeDirectionsOptions {
  kind: DirectionKind;
  seed: number;
  includeVectors?: boolean;
  /** A mask spec for parseMask, e.g. "blocks:0-1;embeddings". */
  mask?: string;
}

function checkFlat(layout: ParamLayout, flat: Float32Array, what: string): void {
  if (flat.length !== layout.totalFloats) {
    throw new Error(`${what}: expected a flat buffer of ${layout.totalFloats} floats for this model, got ${flat.length}`);
  }
}

function sumSquares(x: Float32Array, offset: number, count: number): number {
  let s = 0;
  for (let i = offset; i < offset + count; i++) s += x[i]! * x[i]!;
  return s;
}

/**
 * i.i.d. N(0, 1) on every real parameter, padding zero. The draws follow the
 * canonical tensor order, one Rng(seed) stream, skipping padding: the same
 * seed gives the same direction on every machine.
 */
export function randomDirection(layout: ParamLayout, seed: number): Float32Array {
  const d = new Float32Array(layout.totalFloats);
  const rng = new Rng(seed);
  for (const t of layout.tensors) rng.fillNormal(d, 1, t.offset, t.size);
  return d;
}

/** A unit vector along element `index` (flat, row-major) of the tensor `name`. */
export function axisDirection(layout: ParamLayout, name: string, index = 0): Float32Array {
  const t = layout.byName.get(name);
  if (!t) throw new InputError(`axis direction: no tensor named "${name}" in this model`);
  if (!Number.isInteger(index) || index < 0 || index >= t.size) {
    throw new InputError(`axis direction: index ${index} is out of range for ${name} [${t.shape.join(', ')}] (0..${t.size - 1})`);
  }
  const d = new Float32Array(layout.totalFloats);
  d[t.offset + index] = 1;
  return d;
}

/**
 * Norms of the rows of tensor `name` in `flat`: one per row (shape[0] rows)
 * for a 2-D tensor, the one whole-tensor norm for a 1-D tensor, in float64.
 */
export function rowNorms(layout: ParamLayout, flat: Float32Array, name: string): Float64Array {
  checkFlat(layout, flat, `rowNorms(${name})`);
  const t = tensor(layout, name);
  const rowSize = filterRowSize(t);
  const out = new Float64Array(t.size / rowSize);
  for (let r = 0; r < out.length; r++) out[r] = Math.sqrt(sumSquares(flat, t.offset + r * rowSize, rowSize));
  return out;
}

/** A "filter" of Li et al.: a row of a 2-D tensor ([out, in] Linear, token or position of an embedding); a 1-D tensor is one filter. */
function filterRowSize(t: TensorSpec): number {
  return t.shape.length >= 2 ? t.size / t.shape[0]! : t.size;
}

function includedTensors(layout: ParamLayout, includeVectors: boolean, mask: TensorMask | undefined): TensorSpec[] {
  return layout.tensors.filter((t) => (includeVectors || t.role !== 'vector') && (!mask || mask.names.has(t.name)));
}

/**
 * Rescales a direction to the centre's scale, returning a new buffer:
 * - filter: `d_r <- d_r / ||d_r|| * ||theta_r||` for each row r of each 2-D tensor;
 * - layer: the same with r = the whole tensor;
 * - model: the same with r = all included tensors together;
 * - none: d unchanged.
 * 1-D tensors get zero unless includeVectors (then one group each, in filter
 * and layer modes); tensors outside the mask get zero. A group where d is zero
 * stays zero (there is no direction to rescale); one where theta is zero becomes zero.
 */
export function normalizeDirection(layout: ParamLayout, d: Float32Array, theta: Float32Array, opts: NormalizeOptions): Float32Array {
  checkFlat(layout, d, 'direction');
  checkFlat(layout, theta, 'centre weights');
  const out = new Float32Array(layout.totalFloats);
  const tensors = includedTensors(layout, opts.includeVectors, opts.mask);
  const rescale = (offset: number, count: number, scale: number): void => {
    for (let i = offset; i < offset + count; i++) out[i] = d[i]! * scale;
  };
  const ratio = (dSq: number, thetaSq: number): number => (dSq === 0 ? 0 : Math.sqrt(thetaSq) / Math.sqrt(dSq));
  if (opts.mode === 'model') {
    let dSq = 0;
    let thetaSq = 0;
    for (const t of tensors) {
      dSq += sumSquares(d, t.offset, t.size);
      thetaSq += sumSquares(theta, t.offset, t.size);
    }
    const scale = ratio(dSq, thetaSq);
    for (const t of tensors) rescale(t.offset, t.size, scale);
    return out;
  }
  for (const t of tensors) {
    const groupSize = opts.mode === 'filter' ? filterRowSize(t) : t.size;
    for (let offset = t.offset; offset < t.offset + t.size; offset += groupSize) {
      const scale = opts.mode === 'none' ? 1 : ratio(sumSquares(d, offset, groupSize), sumSquares(theta, offset, groupSize));
      rescale(offset, groupSize, scale);
    }
  }
  return out;
}

const GLOB_SPECIAL = /[.+^${}()|[\]\\]/g;

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(GLOB_SPECIAL, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * Parses a mask: terms separated by ';', their union selected.
 * - `all`: every tensor;
 * - `embeddings`: transformer.wte.weight and transformer.wpe.weight;
 * - `blocks:LIST`: every tensor of the listed blocks `transformer.h.{i}.*`, LIST like `0-1`, `0,2` or `0-1,3`;
 * - `tensor:GLOB`: tensors whose nanoGPT name matches GLOB (`*` any characters, dots included; `?` one).
 * Unknown terms, blocks out of range and terms that select nothing are InputErrors naming the flag value.
 */
export function parseMask(spec: string, layout: ParamLayout): TensorMask {
  const fail: (why: string) => never = (why) => {
    throw new InputError(`--mask ${JSON.stringify(spec)}: ${why}`);
  };
  const names = new Set<string>();
  const terms = spec.split(';').map((s) => s.trim());
  const nLayer = layout.config.n_layer;
  for (const term of terms) {
    let selected: TensorSpec[];
    if (term === 'all') {
      selected = layout.tensors;
    } else if (term === 'embeddings') {
      selected = layout.tensors.filter((t) => t.role === 'embedding');
    } else if (term.startsWith('blocks:')) {
      const blocks = new Set<number>();
      for (const item of term.slice('blocks:'.length).split(',').map((s) => s.trim())) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(item);
        if (!m) fail(`"${item}" is not a block index or range (expected e.g. blocks:0-1 or blocks:0,2)`);
        const lo = Number(m[1]);
        const hi = m[2] === undefined ? lo : Number(m[2]);
        if (hi < lo) fail(`block range "${item}" is empty`);
        if (hi >= nLayer) fail(`block ${hi} is out of range (the model has ${nLayer} blocks, 0-${nLayer - 1})`);
        for (let i = lo; i <= hi; i++) blocks.add(i);
      }
      selected = layout.tensors.filter((t) => blocks.has(t.layer));
    } else if (term.startsWith('tensor:')) {
      const glob = term.slice('tensor:'.length);
      const re = globToRegExp(glob);
      selected = layout.tensors.filter((t) => re.test(t.name));
      if (selected.length === 0) fail(`no tensor matches "${glob}" (names look like transformer.h.0.attn.c_attn.weight)`);
    } else {
      selected = fail(`unknown term "${term}" (expected all, embeddings, blocks:LIST or tensor:GLOB, separated by ';')`);
    }
    for (const t of selected) names.add(t.name);
  }
  return { spec, names };
}

/** Norms of d1 and d2 and their cosine, as directions-file metadata strings. */
export function directionStats(d1: Float32Array, d2: Float32Array): Record<string, string> {
  return { norm_d1: String(norm(d1)), norm_d2: String(norm(d2)), cosine: String(cosine(d1, d2)) };
}

/**
 * Two seeded random directions, normalised by `kind` ('random' = no
 * normalisation). d1 and d2 draw from seeds derived from `seed` (the first
 * two outputs of Rng(seed)), so they are independent streams. They are not
 * orthogonalised: the metadata reports their cosine instead (SPEC section 8).
 */
export function makeDirections(
  layout: ParamLayout,
  theta: Float32Array,
  opts: MakeDirectionsOptions,
): { d1: Float32Array; d2: Float32Array; metadata: Record<string, string> } {
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) {
    throw new InputError(`--seed ${opts.seed}: expected an integer from 0 to 4294967295`);
  }
  const mode: NormalizationMode = opts.kind === 'random' ? 'none' : opts.kind;
  const includeVectors = opts.includeVectors ?? false;
  const mask = opts.mask === undefined ? undefined : parseMask(opts.mask, layout);
  if (includedTensors(layout, includeVectors, mask).length === 0) {
    throw new InputError(`--mask ${JSON.stringify(opts.mask)} selects only 1-D tensors, which get no direction without --include-vectors`);
  }
  const seeds = new Rng(opts.seed);
  const seed1 = seeds.nextU32();
  const seed2 = seeds.nextU32();
  const normalization = { mode, includeVectors, mask };
  const d1 = normalizeDirection(layout, randomDirection(layout, seed1), theta, normalization);
  const d2 = normalizeDirection(layout, randomDirection(layout, seed2), theta, normalization);
  if (norm(d1) === 0 || norm(d2) === 0) {
    throw new InputError(`${opts.kind} directions are zero: the centre weights are zero on every selected tensor`);
  }
  return {
    d1,
    d2,
    metadata: {
      kind: opts.kind,
      normalisation: mode,
      seed: String(opts.seed),
      seed_d1: String(seed1),
      seed_d2: String(seed2),
      include_vectors: String(includeVectors),
      mask: opts.mask ?? 'all',
      ...directionStats(d1, d2),
    },
  };
}
