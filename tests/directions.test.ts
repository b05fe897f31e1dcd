import { describe, expect, it } from 'vitest';
import { type GPTConfig, InputError } from '../src/model/config.ts';
import { type ParamLayout, initParams, paramLayout, view } from '../src/model/params.ts';
import { Rng } from '../src/util/rng.ts';
import {
  axisDirection,
  cosine,
  dot,
  makeDirections,
  norm,
  normalizeDirection,
  orthogonalize,
  parseMask,
  randomDirection,
  rowNorms,
} from '../src/landscape/directions.ts';

// Odd sizes (common brief): n_embd 48, 3 heads, vocab 37, block 13; untied with biases, and tied without.
const untied: GPTConfig = { vocab_size: 37, block_size: 13, n_layer: 3, n_head: 3, n_embd: 48, bias: true, activation: 'gelu', tie_embeddings: false };
const tied: GPTConfig = { ...untied, n_layer: 2, bias: false, tie_embeddings: true };
// n_embd 45: the 1-D tensors end off a multiple of 4, so the layout has padding floats.
const padded: GPTConfig = { ...untied, n_layer: 2, n_embd: 45 };

/** A centre that is not the initialisation: LayerNorm weights and biases away from 1 and 0, one zero row. */
function centre(layout: ParamLayout, seed: number): Float32Array {
  const theta = initParams(layout, seed);
  const rng = new Rng(seed + 1000);
  for (const t of layout.tensors) {
    if (t.role === 'vector') for (let i = 0; i < t.size; i++) theta[t.offset + i] = rng.normal() * 0.3 + 0.5;
  }
  return theta;
}

function paddingIsZero(layout: ParamLayout, flat: Float32Array): boolean {
  let pos = 0;
  for (const t of layout.tensors) {
    for (; pos < t.offset; pos++) if (flat[pos] !== 0) return false;
    pos = t.offset + t.size;
  }
  for (; pos < layout.totalFloats; pos++) if (flat[pos] !== 0) return false;
  return true;
}

function relClose(actual: number, expected: number, rel: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.abs(expected));
}

/** Bitwise equality of two float buffers (vitest's deep equality is slow on large typed arrays). */
function sameFloats(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

describe('randomDirection', () => {
  const layout = paramLayout(padded);

  it('is N(0,1) on every real parameter in canonical order from one Rng stream, padding zero', () => {
    const d = randomDirection(layout, 42);
    expect(layout.totalFloats).toBeGreaterThan(layout.paramCount); // the odd config does have padding
    expect(paddingIsZero(layout, d)).toBe(true);
    const rng = new Rng(42);
    const want = new Float32Array(layout.totalFloats);
    for (const t of layout.tensors) for (let i = 0; i < t.size; i++) want[t.offset + i] = rng.normal();
    expect(sameFloats(d, want)).toBe(true);
    let s = 0;
    let s2 = 0;
    for (const t of layout.tensors) for (let i = 0; i < t.size; i++) { s += d[t.offset + i]!; s2 += d[t.offset + i]! ** 2; }
    const mean = s / layout.paramCount;
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(layout.paramCount));
    expect(Math.abs(s2 / layout.paramCount - 1)).toBeLessThan(0.02);
  });

  it('reproduces with a seed and changes with it', () => {
    expect(sameFloats(randomDirection(layout, 7), randomDirection(layout, 7))).toBe(true);
    expect(cosine(randomDirection(layout, 7), randomDirection(layout, 8))).toBeLessThan(0.05);
  });
});

describe('normalizeDirection', () => {
  for (const cfg of [untied, tied, padded]) {
    const layout = paramLayout(cfg);
    const theta = centre(layout, 3);
    const d = randomDirection(layout, 5);
    const label = `n_embd ${cfg.n_embd}, bias ${cfg.bias}, tied ${cfg.tie_embeddings}`;

    it(`filter: every row norm of a 2-D tensor equals the centre's, the row keeps its direction, 1-D tensors zero (${label})`, () => {
      const out = normalizeDirection(layout, d, theta, { mode: 'filter', includeVectors: false });
      expect(paddingIsZero(layout, out)).toBe(true);
      for (const t of layout.tensors) {
        if (t.role === 'vector') {
          expect(norm(view(layout, out, t.name))).toBe(0);
          continue;
        }
        const got = rowNorms(layout, out, t.name);
        const want = rowNorms(layout, theta, t.name);
        expect(got.length).toBe(t.shape[0]);
        for (let r = 0; r < got.length; r++) relClose(got[r]!, want[r]!, 1e-6);
        const rowSize = t.shape[1]!;
        const row = (flat: Float32Array, r: number) => flat.subarray(t.offset + r * rowSize, t.offset + (r + 1) * rowSize);
        for (let r = 0; r < t.shape[0]!; r += 7) expect(cosine(row(out, r), row(d, r))).toBeGreaterThan(1 - 1e-6);
      }
    });

    it(`filter with includeVectors: each 1-D tensor scaled as a whole to the centre's norm (${label})`, () => {
      const out = normalizeDirection(layout, d, theta, { mode: 'filter', includeVectors: true });
      for (const t of layout.tensors.filter((t) => t.role === 'vector')) {
        relClose(norm(view(layout, out, t.name)), norm(view(layout, theta, t.name)), 1e-6);
        expect(cosine(view(layout, out, t.name), view(layout, d, t.name))).toBeGreaterThan(1 - 1e-6);
      }
    });

    it(`layer: every tensor norm equals the centre's (${label})`, () => {
      const out = normalizeDirection(layout, d, theta, { mode: 'layer', includeVectors: true });
      for (const t of layout.tensors) relClose(norm(view(layout, out, t.name)), norm(view(layout, theta, t.name)), 1e-6);
      // Layer mode does not equalise rows: the first rows of wte differ from the centre's.
      const rowsOut = rowNorms(layout, out, 'transformer.wte.weight');
      const rowsTheta = rowNorms(layout, theta, 'transformer.wte.weight');
      expect(Math.abs(rowsOut[0]! - rowsTheta[0]!)).toBeGreaterThan(1e-4 * rowsTheta[0]!);
    });

    it(`model: the norm over the included tensors equals the centre's, a single scale (${label})`, () => {
      const out = normalizeDirection(layout, d, theta, { mode: 'model', includeVectors: false });
      let thetaSq = 0;
      for (const t of layout.tensors) if (t.role !== 'vector') thetaSq += norm(view(layout, theta, t.name)) ** 2;
      relClose(norm(out), Math.sqrt(thetaSq), 1e-6);
      const scale = out[0]! / d[0]!;
      const last = layout.tensors.filter((t) => t.role !== 'vector').at(-1)!;
      relClose(out[last.offset + 3]! / d[last.offset + 3]!, scale, 1e-6);
    });
  }

  it('none: d itself on the included tensors, zero elsewhere', () => {
    const layout = paramLayout(untied);
    const d = randomDirection(layout, 9);
    const out = normalizeDirection(layout, d, centre(layout, 1), { mode: 'none', includeVectors: false });
    for (const t of layout.tensors) {
      expect(Array.from(view(layout, out, t.name))).toEqual(t.role === 'vector' ? new Array(t.size).fill(0) : Array.from(view(layout, d, t.name)));
    }
  });

  it('a zero row of d stays zero; a zero row of theta gives a zero row', () => {
    const layout = paramLayout(untied);
    const theta = centre(layout, 2);
    const d = randomDirection(layout, 4);
    const fc = layout.byName.get('transformer.h.1.mlp.c_fc.weight')!;
    const C = untied.n_embd;
    d.fill(0, fc.offset + 5 * C, fc.offset + 6 * C);
    theta.fill(0, fc.offset + 9 * C, fc.offset + 10 * C);
    const out = normalizeDirection(layout, d, theta, { mode: 'filter', includeVectors: false });
    const rows = rowNorms(layout, out, fc.name);
    expect(rows[5]).toBe(0);
    expect(rows[9]).toBe(0);
    expect(Number.isFinite(norm(out))).toBe(true);
    relClose(rows[6]!, rowNorms(layout, theta, fc.name)[6]!, 1e-6);
  });

  it('masked-out tensors get zero, and model mode measures only the masked-in ones', () => {
    const layout = paramLayout(untied);
    const theta = centre(layout, 2);
    const mask = parseMask('blocks:1', layout);
    const out = normalizeDirection(layout, randomDirection(layout, 4), theta, { mode: 'model', includeVectors: true, mask });
    let thetaSq = 0;
    for (const t of layout.tensors) {
      const n = norm(view(layout, out, t.name));
      if (t.layer === 1) {
        expect(n).toBeGreaterThan(0);
        thetaSq += norm(view(layout, theta, t.name)) ** 2;
      } else {
        expect(n).toBe(0);
      }
    }
    relClose(norm(out), Math.sqrt(thetaSq), 1e-6);
  });

  it('rejects buffers of the wrong length', () => {
    const layout = paramLayout(untied);
    expect(() => normalizeDirection(layout, new Float32Array(5), centre(layout, 1), { mode: 'filter', includeVectors: false })).toThrow(/direction: expected a flat buffer of \d+ floats/);
  });
});

describe('parseMask', () => {
  const layout = paramLayout(untied);
  const names = (spec: string) => [...parseMask(spec, layout).names].sort();
  const where = (f: (name: string, layer: number) => boolean) => layout.tensors.filter((t) => f(t.name, t.layer)).map((t) => t.name).sort();

  it('blocks: ranges and lists select every tensor of those blocks', () => {
    expect(names('blocks:0-1')).toEqual(where((_, l) => l === 0 || l === 1));
    expect(names('blocks:0,2')).toEqual(where((_, l) => l === 0 || l === 2));
    expect(names('blocks:2')).toEqual(where((_, l) => l === 2));
    expect(names('blocks:0-1').length).toBe(2 * 12); // 12 tensors per block with biases
  });

  it('tensor: globs on nanoGPT names, embeddings, all, and unions with ;', () => {
    expect(names('tensor:transformer.h.*.attn.*')).toEqual(where((n) => /^transformer\.h\.\d+\.attn\./.test(n)));
    expect(names('tensor:transformer.h.?.mlp.c_fc.weight')).toEqual(['transformer.h.0.mlp.c_fc.weight', 'transformer.h.1.mlp.c_fc.weight', 'transformer.h.2.mlp.c_fc.weight']);
    expect(names('embeddings')).toEqual(['transformer.wpe.weight', 'transformer.wte.weight']);
    expect(names('all')).toEqual(where(() => true));
    expect(names('embeddings; blocks:2;tensor:lm_head.weight')).toEqual(where((n, l) => l === 2 || n === 'lm_head.weight' || n.startsWith('transformer.w')));
  });

  it('unknown terms, bad ranges and empty selections are InputErrors naming the flag value', () => {
    const bad: Array<[string, RegExp]> = [
      ['blocks:3', /--mask "blocks:3": block 3 is out of range \(the model has 3 blocks, 0-2\)/],
      ['blocks:2-1', /block range "2-1" is empty/],
      ['blocks:x', /"x" is not a block index or range/],
      ['blocks:', /"" is not a block index/],
      ['tensor:transformer.h.*.attn.q_proj.*', /no tensor matches "transformer.h.\*.attn.q_proj.\*"/],
      ['layers:0', /unknown term "layers:0"/],
      ['', /--mask "": unknown term ""/],
      ['embeddings;;blocks:0', /unknown term ""/],
    ];
    for (const [spec, message] of bad) {
      expect(() => parseMask(spec, layout)).toThrow(InputError);
      expect(() => parseMask(spec, layout)).toThrow(message);
    }
    // The glob is anchored and '.' is literal.
    expect(() => parseMask('tensor:transformer_wte_weight', layout)).toThrow(/no tensor matches/);
  });
});

describe('axisDirection', () => {
  const layout = paramLayout(untied);

  it('is the unit vector along one element of one tensor', () => {
    const d = axisDirection(layout, 'transformer.h.1.attn.c_proj.weight', 50);
    const t = layout.byName.get('transformer.h.1.attn.c_proj.weight')!;
    expect(norm(d)).toBe(1);
    expect(d[t.offset + 50]).toBe(1);
    expect(axisDirection(layout, 'transformer.ln_f.bias')[layout.byName.get('transformer.ln_f.bias')!.offset]).toBe(1);
  });

  it('rejects unknown names and indices out of range', () => {
    expect(() => axisDirection(layout, 'transformer.h.9.ln_1.weight')).toThrow(InputError);
    expect(() => axisDirection(layout, 'transformer.ln_f.bias', 48)).toThrow(/index 48 is out of range for transformer.ln_f.bias \[48\] \(0..47\)/);
    expect(() => axisDirection(layout, 'transformer.ln_f.bias', -1)).toThrow(InputError);
    expect(() => axisDirection(layout, 'transformer.ln_f.bias', 1.5)).toThrow(InputError);
  });
});

describe('vector helpers', () => {
  it('dot, norm and cosine of hand-computed vectors, accumulated in float64', () => {
    const x = new Float32Array([3, 4, 0]);
    const y = new Float64Array([4, -3, 12]);
    expect(dot(x, y)).toBe(0);
    expect(norm(x)).toBe(5);
    expect(norm(y)).toBe(13);
    expect(cosine(new Float32Array([1, 1]), new Float32Array([1, 0]))).toBeCloseTo(Math.SQRT1_2, 15);
    expect(cosine(x, new Float32Array(3))).toBeNaN();
    // 2^24 + 1 ones: a float32 accumulator would stall at 2^24.
    const ones = new Float32Array((1 << 24) + 1).fill(1);
    expect(dot(ones, ones)).toBe((1 << 24) + 1);
  });

  it('orthogonalize removes the d1 component and keeps the rest', () => {
    const d1 = new Float32Array([1, 2, 0, -1]);
    const d2 = new Float32Array([2, 1, 1, 1]);
    const o = orthogonalize(d2, d1);
    // d2.d1 = 3, d1.d1 = 6: o = d2 - d1/2
    expect(Array.from(o)).toEqual([1.5, 0, 1, 1.5]);
    expect(dot(o, d1)).toBe(0);
    expect(() => orthogonalize(d2, new Float32Array(4))).toThrow(/d1 is the zero vector/);
  });
});

describe('makeDirections', () => {
  const layout = paramLayout(untied);
  const theta = centre(layout, 11);

  it('filter directions: two independent seeded streams, normalised, with their stats in the metadata', () => {
    const dirs = makeDirections(layout, theta, { kind: 'filter', seed: 123 });
    const seeds = new Rng(123);
    const seed1 = seeds.nextU32();
    const seed2 = seeds.nextU32();
    const opts = { mode: 'filter', includeVectors: false } as const;
    expect(sameFloats(dirs.d1, normalizeDirection(layout, randomDirection(layout, seed1), theta, opts))).toBe(true);
    expect(sameFloats(dirs.d2, normalizeDirection(layout, randomDirection(layout, seed2), theta, opts))).toBe(true);
    const m = dirs.metadata;
    expect(m).toMatchObject({ kind: 'filter', normalisation: 'filter', seed: '123', seed_d1: String(seed1), seed_d2: String(seed2), include_vectors: 'false', mask: 'all' });
    expect(Number(m.norm_d1)).toBe(norm(dirs.d1));
    expect(Number(m.norm_d2)).toBe(norm(dirs.d2));
    expect(Number(m.cosine)).toBe(cosine(dirs.d1, dirs.d2));
    expect(Math.abs(Number(m.cosine))).toBeLessThan(0.1);
    const again = makeDirections(layout, theta, { kind: 'filter', seed: 123 });
    expect(sameFloats(again.d1, dirs.d1) && sameFloats(again.d2, dirs.d2)).toBe(true);
    expect(again.metadata).toEqual(dirs.metadata);
  });

  it('random kind is unnormalised; masks and include-vectors are recorded', () => {
    const dirs = makeDirections(layout, theta, { kind: 'random', seed: 1, includeVectors: true, mask: 'blocks:0-1' });
    expect(dirs.metadata).toMatchObject({ kind: 'random', normalisation: 'none', include_vectors: 'true', mask: 'blocks:0-1' });
    const seed1 = new Rng(1).nextU32();
    const raw = randomDirection(layout, seed1);
    for (const t of layout.tensors) {
      const want = t.layer === 0 || t.layer === 1 ? Array.from(view(layout, raw, t.name)) : new Array(t.size).fill(0);
      expect(Array.from(view(layout, dirs.d1, t.name))).toEqual(want);
    }
    expect(parseMask(dirs.metadata.mask!, layout).names.size).toBe(24);
  });

  it('refuses a mask of 1-D tensors without include-vectors, a zero centre, and a bad seed', () => {
    expect(() => makeDirections(layout, theta, { kind: 'filter', seed: 1, mask: 'tensor:*.ln_?.*' })).toThrow(/--mask "tensor:\*\.ln_\?\.\*" selects only 1-D tensors/);
    expect(makeDirections(layout, theta, { kind: 'filter', seed: 1, mask: 'tensor:*.ln_?.*', includeVectors: true }).metadata.mask).toBe('tensor:*.ln_?.*');
    expect(() => makeDirections(layout, new Float32Array(layout.totalFloats), { kind: 'layer', seed: 1 })).toThrow(/layer directions are zero/);
    expect(() => makeDirections(layout, theta, { kind: 'filter', seed: -1 })).toThrow(/--seed -1/);
  });
});
