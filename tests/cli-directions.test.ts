/**
 * `losscape directions` end to end: each kind's file against values
 * computed here independently (row norms, a run built from known principal
 * directions, the Rayleigh quotient of the Hessian, unit axes), and its
 * input errors.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './helpers/cli.ts';
import { centreParams, randomPlane, tinyLayout, TINY, writeModel, writeRun, writeTokens } from './helpers/runs.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { type Directions, directionsFromSafetensors, directionsToSafetensors } from '../src/io/formats.ts';
import { paramLayout } from '../src/model/params.ts';
import { backward, forward } from '../src/model/reference.ts';
import pkg from '../package.json' with { type: 'json' };
import { expectUsageError } from './helpers/errors.ts';

const dir = tempDir('losscape-directions-');
const MODEL = join(dir, 'model');
const TOKENS = join(dir, 'tokens.safetensors');
const centre = centreParams();
let tokens: ReturnType<typeof writeTokens>;

function read(path: string): Directions {
  return directionsFromSafetensors(tinyLayout, parseSafetensors(new Uint8Array(readFileSync(path)), path), path);
}

let written = 0;
function run(args: string[]): Directions {
  const out = join(dir, `dirs-${written++}.safetensors`);
  const r = runCli(['directions', ...args, '--out', out]);
  expect(r.status, r.stderr).toBe(0);
  return read(out);
}

const dot = (x: ArrayLike<number>, y: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
};

beforeAll(() => {
  writeModel(MODEL, centre);
  tokens = writeTokens(TOKENS, 2, 13, 5);
});

describe('losscape directions', () => {
  it('default filter: every row of a 2-D tensor has the centre row\'s norm, 1-D tensors zero, metadata from the vectors', () => {
    const d = run(['--model', MODEL, '--seed', '3']);
    for (const t of tinyLayout.tensors) {
      if (t.role === 'vector') {
        expect(d.d1.subarray(t.offset, t.offset + t.size).every((x) => x === 0)).toBe(true);
        continue;
      }
      const row = t.size / t.shape[0]!;
      for (let r = 0; r < t.shape[0]!; r += 7) {
        const o = t.offset + r * row;
        const want = Math.sqrt(dot(centre.subarray(o, o + row), centre.subarray(o, o + row)));
        expect(Math.abs(Math.sqrt(dot(d.d2.subarray(o, o + row), d.d2.subarray(o, o + row))) - want) / want).toBeLessThan(1e-5);
      }
    }
    const n1 = Math.sqrt(dot(d.d1, d.d1));
    const n2 = Math.sqrt(dot(d.d2, d.d2));
    expect(d.metadata).toMatchObject({ kind: 'filter', normalisation: 'filter', seed: '3', include_vectors: 'false', mask: 'all', engine: `losscape ${pkg.version}` });
    expect(d.metadata.centre).toBe(join(MODEL, 'model.safetensors'));
    expect(Math.abs(Number(d.metadata.norm_d1) - n1) / n1).toBeLessThan(1e-6);
    expect(Math.abs(Number(d.metadata.cosine) - dot(d.d1, d.d2) / (n1 * n2))).toBeLessThan(1e-6);
  });

  it('pca recovers the two directions a run was built from, with their explained variance', () => {
    // u, v: orthonormal, zero on 1-D tensors (which pca leaves out by default)
    const { d1: u0, d2: v0 } = randomPlane(9, 1, 1);
    for (const t of tinyLayout.tensors) if (t.role === 'vector') [u0, v0].forEach((x) => x.fill(0, t.offset, t.offset + t.size));
    const unit = (x: Float32Array): Float32Array => {
      const n = Math.sqrt(dot(x, x));
      return x.map((e) => e / n);
    };
    const u = unit(u0);
    const vu = dot(v0, u);
    const v = unit(v0.map((x, i) => x - vu * u[i]!));
    // coordinates (3, 0), (0, 1), (1, 0) and the final (0, 0): variance 10 along u, 1 along v, no cross term
    const coords = [[3, 0], [0, 1], [1, 0], [0, 0]];
    const runDir = join(dir, 'pca-run');
    writeRun(runDir, coords.map(([a, b], i) => ({ step: 10 * i, params: centre.map((w, k) => w + a! * u[k]! + b! * v[k]!) })));
    const d = run(['--run', runDir, '--kind', 'pca']);
    expect(Number(d.metadata.explained_variance_d1)).toBeCloseTo(10 / 11, 5);
    expect(Number(d.metadata.explained_variance_d2)).toBeCloseTo(1 / 11, 5);
    expect(dot(d.d1, u)).toBeGreaterThan(1 - 1e-5);
    expect(Math.abs(dot(d.d2, v))).toBeGreaterThan(1 - 1e-5);
    expect(d.metadata.centre).toBe(join(runDir, 'ckpt-30.safetensors'));
  });

  it('hessian (GPU gradient): unit orthogonal vectors on the mask whose Rayleigh quotients are the eigenvalues in the metadata', () => {
    const mask = 'tensor:transformer.h.0.attn.c_proj.weight';
    const d = run(['--model', MODEL, '--tokens', TOKENS, '--kind', 'hessian', '--mask', mask, '--iterations', '8']);
    const proj = tinyLayout.byName.get('transformer.h.0.attn.c_proj.weight')!;
    d.d1.forEach((x, i) => {
      if (i < proj.offset || i >= proj.offset + proj.size) expect(x).toBe(0);
    });
    expect(Math.abs(dot(d.d1, d.d1) - 1)).toBeLessThan(1e-6);
    expect(Math.abs(dot(d.d1, d.d2))).toBeLessThan(1e-5);
    const gradient = (w: Float64Array): Float64Array => backward(tinyLayout, w, forward(tinyLayout, w, tokens.idx, tokens.targets, 2, 13), tokens.targets);
    const h = 1e-4;
    for (const [v, key] of [[d.d1, 'eigenvalue_d1'], [d.d2, 'eigenvalue_d2']] as const) {
      const gp = gradient(Float64Array.from(centre, (w, i) => w + h * v[i]!));
      const gm = gradient(Float64Array.from(centre, (w, i) => w - h * v[i]!));
      const rayleigh = dot(v, gp.map((g, i) => (g - gm[i]!) / (2 * h)));
      expect(Math.abs(rayleigh - Number(d.metadata[key])) / Math.abs(Number(d.metadata.eigenvalue_d1))).toBeLessThan(1e-3);
    }
    expect(Number(d.metadata.eigenvalue_d1)).toBeGreaterThanOrEqual(Number(d.metadata.eigenvalue_d2));
    expect(d.metadata.gradient).toMatch(/^GPU \(float32\)/);
  });

  it('axis: unit vectors on the named elements; file: a given file re-written with its statistics', () => {
    const d = run(['--model', MODEL, '--kind', 'axis', '--axis', 'transformer.h.0.mlp.c_fc.weight:5,transformer.wte.weight']);
    const fc = tinyLayout.byName.get('transformer.h.0.mlp.c_fc.weight')!;
    const wte = tinyLayout.byName.get('transformer.wte.weight')!;
    expect(d.d1[fc.offset + 5]).toBe(1);
    expect(dot(d.d1, d.d1)).toBe(1);
    expect(d.d2[wte.offset]).toBe(1);
    expect(dot(d.d2, d.d2)).toBe(1);
    expect(d.metadata).toMatchObject({ kind: 'axis', axis_d1: 'transformer.h.0.mlp.c_fc.weight:5', axis_d2: 'transformer.wte.weight:0', cosine: '0' });

    const given = join(dir, 'given.safetensors');
    const plane = randomPlane(2);
    writeFileSync(given, directionsToSafetensors(tinyLayout, { ...plane, metadata: { kind: 'mine', note: 'kept' } }));
    const f = run(['--model', MODEL, '--kind', 'file', '--from', given]);
    expect(f.d1).toEqual(plane.d1);
    expect(f.metadata).toMatchObject({ kind: 'file', from: given, from_kind: 'mine', note: 'kept' });
    expect(Math.abs(Number(f.metadata.norm_d2) - Math.sqrt(dot(plane.d2, plane.d2)))).toBeLessThan(1e-4);
  });

  it('exits 2 with one line: pca without a run, an unknown axis tensor, directions of another model', () => {
    const out = join(dir, 'never.safetensors');
    expectUsageError(runCli(['directions', '--model', MODEL, '--kind', 'pca', '--out', out]), '--kind pca', '--run');
    expectUsageError(runCli(['directions', '--model', MODEL, '--kind', 'axis', '--axis', 'transformer.h.9.ln_1.weight,transformer.wte.weight', '--out', out]),
      '--axis', 'transformer.h.9.ln_1.weight');
    const other = join(dir, 'other.safetensors');
    const layout = paramLayout({ ...TINY, n_layer: 2 });
    const z = new Float32Array(layout.totalFloats);
    writeFileSync(other, directionsToSafetensors(layout, { d1: z, d2: z, metadata: {} }));
    expectUsageError(runCli(['directions', '--model', MODEL, '--kind', 'file', '--from', other, '--out', out]), 'other.safetensors', 'transformer.h.1');
  });
});
