/**
 * `losscape bench` end to end on the odd-sized smoke model (`--models odd`):
 * the JSON it writes holds positive finite speeds and ratios, the FLOP count
 * of the case, value checks that ran and passed, and a training figure.
 * No timing assertion.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorLine, runCli, tempDir } from './helpers/cli.ts';
import { compareLosses, gridPointFlops } from '../bench/report.ts';
import { parseGrids, valueFailures } from '../src/cli/bench.ts';

const dir = tempDir('losscape-bench-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const positiveFinite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;

describe('losscape bench', () => {
  it('runs --quick --no-torch --no-train --json on a tiny odd model and reports checked, positive ratios', () => {
    const out = join(dir, 'bench.json');
    const r = runCli(['bench', '--quick', '--no-torch', '--no-train', '--json', '--models', 'odd', '--grids', '5x3', '--naive-seconds', '0.5', '--gemm', 'tiled', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(report);
    expect(report.valuesAgree).toBe(true);
    expect(positiveFinite(report.fma.gflops)).toBe(true);
    expect(report.grid).toHaveLength(1);
    const c = report.grid[0];
    expect(c).toMatchObject({ name: 'odd 5x3', nx: 5, ny: 3, B: 2, T: 13, torchLoop: null, torchBatched: null });
    expect(c.config).toMatchObject({ n_embd: 48, n_head: 3, vocab_size: 37, tie_embeddings: false });
    expect(c.ratios.flopsPerPoint).toBe(gridPointFlops(c.config, 2, 13).total);
    for (const v of [c.engine, c.naive, c.ratios.engineGflops, c.ratios.ofCeiling, c.ratios.vsNaive, c.ratios.ceilingPointsPerSecond]) {
      expect(positiveFinite(v), JSON.stringify(c)).toBe(true);
    }
    expect(c.engineDetail.points).toBe(15);
    // --gemm: the GPUs' tiled GEMM on SwiftShader, untuned; the naive loop on the same, agreeing with it below
    expect(c.engineDetail).toMatchObject({ strategy: 'tiled', tunedGemms: null });
    // The naive loop's sample is spread over the grid (first and last point included) and agrees with the engine there.
    expect(c.naiveDetail.indices[0]).toBe(0);
    expect(c.naiveDetail.indices.at(-1)).toBe(14);
    expect(c.checks.naive).toMatchObject({ points: c.naiveDetail.indices.length, mismatches: [], ok: true });
    expect(c.checks.torchLoop).toBeNull();
  });

  it('measures the trainer\'s tokens/s on the odd model\'s shape with the grammar vocabulary', () => {
    const r = runCli(['bench', '--quick', '--no-torch', '--json', '--models', 'odd', '--grids', '2x2', '--naive-seconds', '0.1']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.train).toHaveLength(1);
    const t = report.train[0];
    expect(t).toMatchObject({ model: 'odd', batch: 2, T: 13, torchTokensPerSecond: null });
    expect(t.config).toMatchObject({ n_embd: 48, n_head: 3, n_layer: 1 });
    expect(t.config.vocab_size).not.toBe(37);
    for (const v of [t.engineTokensPerSecond, t.ratios.engineGflops, t.ratios.flopsPerToken, t.engineDetail.seconds]) {
      expect(positiveFinite(v), JSON.stringify(t)).toBe(true);
    }
    expect(Number.isFinite(t.engineDetail.lossLast)).toBe(true);
    // timed on the GEMM of long runs, not the register tiles that a run of a few steps would take
    expect(t.engineDetail.strategy).toBe('subgroup');
  });

  it('--profile times every dispatch of a grid chunk and of a training step on the GPU, per kernel', () => {
    const r = runCli(['bench', '--profile', '--json', '--models', 'odd']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.profiles).toHaveLength(1);
    const p = report.profiles[0];
    expect(p.model).toBe('odd');
    for (const [plan, kernels] of [[p.grid, ['embedding/perturbed', 'attention-subgroup/hs16', 'layernorm-subgroup/c48/perturbed', 'token-loss/ce']],
      [p.train, ['adamw', 'attention-backward-query-subgroup/hs16', 'attention-backward-key-value-subgroup/hs16', 'cross-entropy-backward']]] as const) {
      expect(plan.gemm).toBe('subgroup');
      const names = plan.kernels.map((k: { kernel: string }) => k.kernel);
      for (const k of kernels) expect(names).toContain(k);
      expect(names.some((n: string) => n.startsWith('linear/subgroup/'))).toBe(true);
      expect(new Set(names).size).toBe(names.length);
      let ms = 0;
      let dispatches = 0;
      for (const k of plan.kernels) {
        expect(Number.isFinite(k.ms) && k.ms >= 0, JSON.stringify(k)).toBe(true);
        ms += k.ms;
        dispatches += k.dispatches;
      }
      expect(dispatches).toBe(plan.dispatches);
      expect(plan.totalMs).toBeCloseTo(ms, 9);
      expect(positiveFinite(plan.totalMs)).toBe(true);
      // the slowest kernel first
      expect(plan.kernels.map((k: { ms: number }) => k.ms)).toEqual([...plan.kernels.map((k: { ms: number }) => k.ms)].sort((a, b) => b - a));
    }
    // one layer: the embedding, ln_1, ln_2 and ln_f, attention, 4 Linear layers and the head, the loss and its mean
    expect(p.grid.dispatches).toBe(12);
    expect(p.grid.points).toBe(32);
    expect(p.grid.msPerPoint).toBeCloseTo(p.grid.totalMs / 32, 9);
    expect(p.train.dispatches).toBeGreaterThan(p.grid.dispatches);
  });

  it('rejects bad --grids, --models and --gemm with a one-line error and exit 2', () => {
    expect(parseGrids('33,17x9')).toEqual([{ nx: 33, ny: 33 }, { nx: 17, ny: 9 }]);
    const grids = runCli(['bench', '--grids', '0x5']);
    expect(grids.status).toBe(2);
    expect(errorLine(grids)).toMatch(/--grids: .*"0x5"/);
    const models = runCli(['bench', '--models', 'ref,huge']);
    expect(models.status).toBe(2);
    expect(errorLine(models)).toMatch(/--models: unknown model "huge"/);
    const profile = runCli(['bench', '--profile', '--quick']);
    expect(profile.status).toBe(2);
    expect(errorLine(profile)).toMatch(/--profile takes --models, --json and --out/);
    const gemm = runCli(['bench', '--gemm', 'fast']);
    expect(gemm.status).toBe(2);
    expect(errorLine(gemm)).toBe('losscape: --gemm: unknown GEMM "fast", expected one of register, slab, tiled, bcast, subgroup');
    expect(runCli(['bench', '--profile', '--gemm', 'tiled']).status).toBe(2);
  });

  it('turns every failed value check into a failure line (the bench then exits 1)', () => {
    const good = compareLosses([1, 2], [1, 2]);
    const bad = compareLosses([1, 2, 3], [1, 2.5, NaN]);
    const failures = valueFailures([
      { name: 'a 3x3', checks: { naive: good, torchLoop: null, torchBatched: good } },
      { name: 'b 5x5', checks: { naive: good, torchLoop: bad, torchBatched: null } },
    ]);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^b 5x5: engine vs PyTorch loop: 3 shared points DISAGREE at 2 point\(s\), first at point 1/);
    expect(valueFailures([{ name: 'a', checks: { naive: good, torchLoop: null, torchBatched: null } }])).toEqual([]);
  });
});

describe('the device scripts (scripts/device-bundle.sh, scripts/device-bench.sh)', () => {
  it('parse, and device-bench.sh refuses to run without the bundle, with one line and exit 2', () => {
    for (const f of ['scripts/device-bundle.sh', 'scripts/device-bench.sh']) {
      const r = spawnSync('bash', ['-n', f], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    // a tree of its own, without .device/
    const root = join(dir, 'device-tree');
    mkdirSync(join(root, 'scripts'), { recursive: true });
    copyFileSync('scripts/device-bench.sh', join(root, 'scripts', 'device-bench.sh'));
    const r = spawnSync('bash', [join(root, 'scripts', 'device-bench.sh')], { encoding: 'utf8', env: { ...process.env, OUT: join(root, 'out') } });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/device-bench: \.device\/losscape-node\.tar\.xz is missing: run bash scripts\/device-bundle\.sh/);
  });
});
