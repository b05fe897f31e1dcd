/**
 * `losscape grid`, `merge` and `line` end to end, in child processes as a
 * user runs them: values against the in-process GridEvaluator and the
 * TypeScript reference on a non-square grid over an asymmetric range,
 * sharded and merged grids bit for bit, an interrupted and resumed grid bit
 * for bit, the path of a synthetic run lying in the plane, the wormhole
 * frames, non-finite regions, 1-D lines, and one-line exit-2 errors.
 */
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, errorLine, runCli, tempDir } from './helpers/cli.ts';
import { runCliWithEnv } from './helpers/runs.ts';
import { centreParams, randomPlane, tinyLayout, TINY, writeModel, writeRun, writeTokens } from './helpers/runs.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { directionsToSafetensors, gridFromSafetensors, tokensToSafetensors } from '../src/io/formats.ts';
import { paramLayout } from '../src/model/params.ts';
import { forward } from '../src/model/reference.ts';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { GridEvaluator, gridCoords } from '../src/landscape/grid.ts';
import pkg from '../package.json' with { type: 'json' };
import { expectUsageError } from './helpers/errors.ts';

const dir = tempDir('losscape-grid-');
const MODEL = join(dir, 'model');
const TOKENS = join(dir, 'tokens.safetensors');
const DIRS = join(dir, 'dirs.safetensors');
const RUN = join(dir, 'run');
const GRID_ARGS = ['--model', MODEL, '--directions', DIRS, '--tokens', TOKENS, '--res', '5x4', '--range', '-0.5:1,-1:0.25'];
/** (a, b) of the synthetic run's checkpoints, steps 0, 5, 10, 15; the last is the centre. */
const PATH = [[0.8, -0.6], [0.5, -0.3], [0.2, 0.1], [0, 0]] as const;

const centre = centreParams();
const { d1, d2 } = randomPlane(5);
let tokens: ReturnType<typeof writeTokens>;
let runTokens: ReturnType<typeof writeTokens>;
let unsharded: string;

function grid(path: string) {
  return gridFromSafetensors(parseSafetensors(new Uint8Array(readFileSync(path)), path), path);
}

function lossBytes(path: string): Uint8Array {
  const t = parseSafetensors(new Uint8Array(readFileSync(path)), path).tensors.get('loss')!;
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function summary(r: CliResult): Record<string, unknown> {
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Reference loss at w (float32 weights, float64 arithmetic), optionally weighted by a position mask. */
function referenceLoss(w: Float32Array, t: { idx: Int32Array; targets: Int32Array; B: number; T: number }, mask?: Float32Array): number {
  return forward(tinyLayout, Float64Array.from(w), t.idx, t.targets, t.B, t.T, mask ?? null).loss;
}

const at = (base: Float32Array, a: number, b: number): Float32Array => base.map((w, k) => w + a * d1[k]! + b * d2[k]!);

function expectClose(actual: number, expected: number, rel = 2e-5): void {
  expect(Math.abs(actual - expected) / Math.abs(expected)).toBeLessThan(rel);
}

beforeAll(() => {
  writeModel(MODEL, centre);
  tokens = writeTokens(TOKENS, 2, 13, 5);
  writeFileSync(DIRS, directionsToSafetensors(tinyLayout, { d1, d2, metadata: { kind: 'test' } }));
  runTokens = writeRun(RUN, PATH.map(([a, b], i) => ({ step: 5 * i, params: at(centre, a, b) }))).tokens;
  unsharded = join(dir, 'grid.safetensors');
  summary(runCli(['grid', ...GRID_ARGS, '--out', unsharded, '--json']));
});

describe('losscape grid', () => {
  it('equals the GridEvaluator and the reference on a 5x4 grid over alpha -0.5..1, beta -1..0.25', async () => {
    const g = grid(unsharded);
    const file = parseSafetensors(new Uint8Array(readFileSync(unsharded)), unsharded);
    expect(file.tensors.get('loss')!.shape).toEqual([4, 5]);
    expect(Array.from(g.alpha)).toEqual(Array.from(Float32Array.from([-0.5, -0.125, 0.25, 0.625, 1])));
    expect(Array.from(g.beta)).toEqual(Array.from(Float32Array.from([-1, -1 + 1.25 / 3, -1 + 2.5 / 3, 0.25])));
    const ctx = await nodeGpu();
    const ev = await GridEvaluator.create(ctx, new KernelCache(ctx), tinyLayout, { ...tokens, mask: null }, { centre, d1, d2 }, { metric: 'ce' });
    const values = await ev.values(gridCoords(g.alpha, g.beta));
    ev.destroy();
    expect(g.loss).toEqual(values);
    for (const [i, j] of [[1, 2], [4, 0], [0, 3]] as const) {
      expectClose(g.loss[j * 5 + i]!, referenceLoss(at(centre, g.alpha[i]!, g.beta[j]!), tokens));
    }
    expect(Math.max(...g.loss) - Math.min(...g.loss)).toBeGreaterThan(0.01);
    expect(g.metadata).toMatchObject({
      model: join(MODEL, 'model.safetensors'), directions: `file:${DIRS}`, 'directions.kind': 'test', metric: 'ce', positions: 'all',
      tokens: '26', tokens_shape: '2x13', range: '-0.5:1,-1:0.25', res: '5x4', engine: `losscape ${pkg.version}`,
    });
    expect(g.metadata.adapter).toMatch(/\S/);
    expect(g.path).toBeUndefined();
  });

  it('merged shards (3 shares, other chunk sizes, any order) equal the unsharded grid file bit for bit', () => {
    const shards = [0, 1, 2].map((k) => join(dir, `shard-${k}.safetensors`));
    shards.forEach((out, k) => {
      const s = summary(runCli(['grid', ...GRID_ARGS, '--shard', `${k}/3`, '--chunk', '3', '--out', out, '--json']));
      expect(s.points).toBe([6, 7, 7][k]);
      // a few points on SwiftShader: the GEMM that compiles fastest, not tuned
      expect(s.gemm).toBe('register');
    });
    const merged = join(dir, 'merged.safetensors');
    expect(runCli(['merge', shards[2]!, shards[0]!, shards[1]!, '--out', merged]).status).toBe(0);
    expect(lossBytes(merged)).toEqual(lossBytes(unsharded));
    expect(new Uint8Array(readFileSync(merged))).toEqual(new Uint8Array(readFileSync(unsharded)));

    const other = join(dir, 'other-shard-0.safetensors');
    summary(runCli(['grid', ...GRID_ARGS, '--range', '0:1', '--shard', '0/3', '--out', other, '--json']));
    expectUsageError(runCli(['merge', other, shards[1]!, shards[2]!, '--out', merged]), 'different grid');
    expectUsageError(runCli(['merge', shards[0]!, shards[1]!, '--out', merged]), 'missing shard 2 of 3');
  });

  it('resumes an interrupted grid from its partial file to the uninterrupted result, and refuses another job\'s partial', () => {
    const out = join(dir, 'resumed.safetensors');
    const partial = `${out}.partial`;
    const stopped = runCliWithEnv(['grid', ...GRID_ARGS, '--chunk', '4', '--out', out], { LOSSCAPE_TEST_STOP_AFTER_CHUNKS: '2' });
    expect(stopped.status, stopped.stderr).toBe(130);
    expect(errorLine(stopped)).toContain('--resume');
    expect(existsSync(out)).toBe(false);
    const p = parseSafetensors(new Uint8Array(readFileSync(partial)), partial);
    const done = (p.tensors.get('done')!.data as Int32Array).reduce((s, d) => s + d, 0);
    expect(done).toBeGreaterThanOrEqual(8);
    expect(done).toBeLessThan(20);

    expectUsageError(runCli(['grid', ...GRID_ARGS, '--out', out]), partial, '--resume');
    expectUsageError(runCli(['grid', ...GRID_ARGS, '--metric', 'acc', '--out', out, '--resume']), partial, 'different grid job');
    const s = summary(runCli(['grid', ...GRID_ARGS, '--out', out, '--resume', '--json']));
    expect(s.resumed_points).toBe(done);
    expect(new Uint8Array(readFileSync(out))).toEqual(new Uint8Array(readFileSync(unsharded)));
    expect(existsSync(partial)).toBe(false);
  });

  it('projects a run lying in the plane onto its known (a, b), with true and plane losses on the last position', () => {
    const out = join(dir, 'path.safetensors');
    summary(runCli(['grid', '--run', RUN, '--directions', DIRS, '--res', '3x2', '--positions', 'last', '--out', out, '--json']));
    const g = grid(out);
    expect(g.metadata.model).toBe(join(RUN, 'ckpt-15.safetensors'));
    expect(Array.from(g.pathStep!)).toEqual([0, 5, 10, 15]);
    const mask = new Float32Array(2 * 13);
    mask[12] = 1;
    mask[25] = 1;
    PATH.forEach(([a, b], t) => {
      expect(Math.abs(g.path![2 * t]! - a)).toBeLessThan(1e-6);
      expect(Math.abs(g.path![2 * t + 1]! - b)).toBeLessThan(1e-6);
      // float32 checkpoints: the residual is rounding, against an offset of norm |a d1 + b d2| ~ 1
      expect(g.pathResidual![t]!).toBeLessThan(1e-5);
      const truth = referenceLoss(at(centre, a, b), runTokens, mask);
      expectClose(g.pathLoss![t]!, truth);
      expectClose(g.pathPlaneLoss![t]!, truth);
    });
    expectClose(g.loss[0]!, referenceLoss(at(centre, -1, -1), runTokens, mask));
  });

  it('evaluates the wormhole: one frame per kept checkpoint, each checkpoint at the offset of its frame', () => {
    const out = join(dir, 'frames.safetensors');
    const s = summary(runCli(['grid', '--run', RUN, '--directions', DIRS, '--frames', '--every', '2', '--offset', '0.1,-0.2',
      '--res', '4x3', '--range', '-1:0.5,-0.5:1', '--out', out, '--json']));
    expect(s.frames).toBe(3);
    const g = grid(out);
    expect(g.animated).toBe(true);
    expect(parseSafetensors(new Uint8Array(readFileSync(out)), out).tensors.get('loss')!.shape).toEqual([3, 3, 4]);
    expect(Array.from(g.pathStep!)).toEqual([0, 10, 15]);
    expect(Array.from(g.path!)).toEqual(Array.from(Float32Array.from([0.1, -0.2, 0.1, -0.2, 0.1, -0.2])));
    [0, 2, 3].forEach((c, f) => {
      const [a, b] = PATH[c]!;
      // frame f, point (i, j): checkpoint c moved by (alpha_i - 0.1, beta_j + 0.2)
      for (const [i, j] of [[0, 0], [3, 1], [2, 2]] as const) {
        expectClose(g.loss[(f * 3 + j) * 4 + i]!, referenceLoss(at(centre, a + g.alpha[i]! - 0.1, b + g.beta[j]! + 0.2), runTokens), 5e-5);
      }
      expectClose(g.pathLoss![f]!, referenceLoss(at(centre, a, b), runTokens));
    });
    expect(g.metadata.frame_steps).toBe('0,10,15');
  });

  it('keeps a non-finite region as NaN/Inf in the grid file', () => {
    const huge = join(dir, 'huge.safetensors');
    writeFileSync(huge, directionsToSafetensors(tinyLayout, { d1: d1.map((x) => x * 1e30), d2, metadata: {} }));
    const out = join(dir, 'nan.safetensors');
    const s = summary(runCli(['grid', '--model', MODEL, '--directions', huge, '--tokens', TOKENS, '--res', '5x3', '--range', '-1:1', '--out', out, '--json']));
    const g = grid(out);
    for (let j = 0; j < 3; j++) {
      for (let i = 0; i < 5; i++) {
        const v = g.loss[j * 5 + i]!;
        // alpha = 0 (i = 2) leaves the weights finite; elsewhere they are ~1e30
        expect(Number.isFinite(v)).toBe(i === 2);
      }
    }
    expect(s.non_finite).toBe(12);
  });

  it('--kind with the direction flags equals `losscape directions` with the same flags and a grid of its file, bit for bit', () => {
    const flags = ['--kind', 'layer', '--seed', '7', '--include-vectors', '--mask', 'blocks:0;embeddings'];
    const file = join(dir, 'layer7.safetensors');
    const made = runCli(['directions', '--model', MODEL, ...flags, '--out', file]);
    expect(made.status, made.stderr).toBe(0);
    const common = ['--model', MODEL, '--tokens', TOKENS, '--res', '4x3', '--range', '-0.5:0.5'];
    const viaFile = join(dir, 'layer7-file.safetensors');
    const viaKind = join(dir, 'layer7-kind.safetensors');
    summary(runCli(['grid', ...common, '--directions', file, '--out', viaFile, '--json']));
    summary(runCli(['grid', ...common, ...flags, '--out', viaKind, '--json']));
    expect(lossBytes(viaKind)).toEqual(lossBytes(viaFile));
    // The flags reached the directions: another seed, or no mask, moves the grid.
    const reseeded = join(dir, 'layer8-kind.safetensors');
    summary(runCli(['grid', ...common, ...flags.map((f) => (f === '7' ? '8' : f)), '--out', reseeded, '--json']));
    expect(lossBytes(reseeded)).not.toEqual(lossBytes(viaKind));
    expect(grid(viaKind).metadata).toMatchObject({
      directions: 'layer seed 7', 'directions.seed': '7', 'directions.mask': 'blocks:0;embeddings', 'directions.include_vectors': 'true',
    });
  });
});

describe('losscape line', () => {
  it('evaluates (1-s) A + s B from RUN:5 to RUN:final for s in [-0.5, 1.5]', () => {
    const out = join(dir, 'line.safetensors');
    summary(runCli(['line', '--from', `${RUN}:5`, '--to', `${RUN}:final`, '--run', RUN, '--res', '5', '--extend', '0.5', '--out', out, '--json']));
    const g = grid(out);
    expect(parseSafetensors(new Uint8Array(readFileSync(out)), out).tensors.get('loss')!.shape).toEqual([1, 5]);
    expect(Array.from(g.alpha)).toEqual([-0.5, 0, 0.5, 1, 1.5]);
    const A = at(centre, ...PATH[1]);
    const B = at(centre, ...PATH[3]);
    g.alpha.forEach((s, i) => {
      const w = A.map((x, k) => (1 - s) * x + s * B[k]!);
      expectClose(g.loss[i]!, referenceLoss(w, runTokens));
    });
    expect(g.metadata.model).toBe(join(RUN, 'ckpt-5.safetensors'));
    expect(g.metadata.to).toBe(join(RUN, 'ckpt-15.safetensors'));
  });
});

describe('grid input errors: one line, exit 2', () => {
  const out = (): string => join(dir, 'never.safetensors');
  const base = ['grid', '--model', MODEL, '--directions', DIRS, '--tokens', TOKENS];

  it('a zero or negative resolution', () => {
    expectUsageError(runCli([...base, '--res', '0', '--out', out()]), '--res', '"0"');
    expectUsageError(runCli([...base, '--res', '-3', '--out', out()]), '--res', '"-3"');
    expectUsageError(runCli([...base, '--res', '5x0', '--out', out()]), '--res', '"5x0"');
  });

  it('an empty or descending range', () => {
    expectUsageError(runCli([...base, '--res', '5', '--range', '1:1', '--out', out()]), '--range', 'empty or descending');
    expectUsageError(runCli([...base, '--res', '5', '--range', '-1:1,0.5:-0.5', '--out', out()]), '--range', '0.5:-0.5');
  });

  it('directions whose shapes do not match the model', () => {
    const cfg = { ...TINY, n_embd: 30 };
    const other = join(dir, 'other-dirs.safetensors');
    const layout = paramLayout(cfg);
    const z = new Float32Array(layout.totalFloats).fill(0.01);
    writeFileSync(other, directionsToSafetensors(layout, { d1: z, d2: z, metadata: {} }));
    expectUsageError(runCli(['grid', '--model', MODEL, '--directions', other, '--tokens', TOKENS, '--res', '5', '--out', out()]),
      'other-dirs.safetensors', 'd1.transformer.wte.weight', '[37, 48]');
  });

  it('a tokens file with ids past the vocabulary', () => {
    const bad = join(dir, 'bad-tokens.safetensors');
    writeFileSync(bad, tokensToSafetensors(new Int32Array([1, 2, 37, 3]), 1, 4));
    expectUsageError(runCli(['grid', '--model', MODEL, '--directions', DIRS, '--tokens', bad, '--res', '5', '--out', out()]), 'bad-tokens.safetensors', '37');
  });

  it('a shard index out of range and positions past the sequence', () => {
    expectUsageError(runCli([...base, '--res', '5', '--shard', '3/3', '--out', out()]), '--shard', '"3/3"');
    expectUsageError(runCli([...base, '--res', '5', '--positions', '13', '--out', out()]), '--positions', 'outside 0..12');
  });
});
