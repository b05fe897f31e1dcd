/**
 * Benchmark arithmetic and reporting (SPEC section 6, issue 6): FLOPs of one
 * grid point and of one training token, the ratios the issue sets targets
 * for, the check that the engine's values equal a baseline's, and the table
 * and JSON the bench prints.
 */
import { type GPTConfig } from '../src/model/config.ts';

/**
 * Model FLOPs of one grid point: one forward of B sequences of T tokens
 * (N = B*T), counting 2 FLOPs per multiply-add:
 *   matmul    = 2 * N * L * 12 C^2           (c_attn 3C^2 + attn c_proj C^2 + c_fc 4C^2 + mlp c_proj 4C^2 weights)
 *   attention = L * 2 * 2 * B * T(T+1)/2 * C (q k^T and att v, each hs MACs per (query, key) pair and head,
 *                                             nh heads x hs = C; causal: only the T(T+1)/2 pairs with key <= query)
 *   lmHead    = 2 * N * V * C                (logits; tied or not)
 * Not counted: biases, LayerNorm, GELU, softmax, cross-entropy, embeddings
 * and residual adds (O(N C) each), and forming theta + a d1 + b d2 (4 FLOPs
 * per parameter per point, a cost of the method, not of the model).
 */
export interface PointFlops {
  matmul: number;
  attention: number;
  lmHead: number;
  total: number;
}

export function gridPointFlops(cfg: GPTConfig, B: number, T: number): PointFlops {
  const C = cfg.n_embd;
  const N = B * T;
  const matmul = 2 * N * cfg.n_layer * 12 * C * C;
  const attention = cfg.n_layer * 2 * 2 * B * ((T * (T + 1)) / 2) * C;
  const lmHead = 2 * N * cfg.vocab_size * C;
  return { matmul, attention, lmHead, total: matmul + attention + lmHead };
}

/** Training FLOPs per token: forward + backward ~= 3 x forward (the backward computes two products per forward one). */
export function trainFlopsPerToken(cfg: GPTConfig, T: number): number {
  return (3 * gridPointFlops(cfg, 1, T).total) / T;
}

/** The targets of issue 6, per kind of adapter. */
export interface GridTargets {
  /** engine GFLOP/s / FMA ceiling */
  ofCeiling: number;
  vsNaive: number | null;
  vsTorchLoop: number;
  vsTorchBatched: number | null;
}

export const TARGETS: { software: GridTargets; gpu: GridTargets } = {
  software: { ofCeiling: 0.5, vsNaive: 20, vsTorchLoop: 1.5, vsTorchBatched: null },
  gpu: { ofCeiling: 0.4, vsNaive: null, vsTorchLoop: 10, vsTorchBatched: 1.5 },
};

/** Points/s of each method on one case; a missing baseline is null. */
export interface GridCase {
  /** e.g. "C64 L2 H4 V64, 16x32 tokens, 33x33" */
  name: string;
  config: GPTConfig;
  params: number;
  B: number;
  T: number;
  nx: number;
  ny: number;
  engine: number;
  naive: number | null;
  torchLoop: number | null;
  torchBatched: number | null;
  /** The adapter's FMA ceiling, GFLOP/s, measured in the same run. */
  ceilingGflops: number;
}

export interface GridRatios {
  flopsPerPoint: number;
  engineGflops: number;
  /** Points/s the FMA ceiling would allow at the model FLOPs of a point. */
  ceilingPointsPerSecond: number;
  ofCeiling: number;
  vsNaive: number | null;
  vsTorchLoop: number | null;
  vsTorchBatched: number | null;
}

const ratio = (engine: number, base: number | null): number | null => (base === null ? null : engine / base);

export function gridRatios(c: GridCase): GridRatios {
  const flopsPerPoint = gridPointFlops(c.config, c.B, c.T).total;
  const engineGflops = (c.engine * flopsPerPoint) / 1e9;
  return {
    flopsPerPoint,
    engineGflops,
    ceilingPointsPerSecond: (c.ceilingGflops * 1e9) / flopsPerPoint,
    ofCeiling: engineGflops / c.ceilingGflops,
    vsNaive: ratio(c.engine, c.naive),
    vsTorchLoop: ratio(c.engine, c.torchLoop),
    vsTorchBatched: ratio(c.engine, c.torchBatched),
  };
}

/** Which targets a case meets; null where the issue sets none or the baseline is missing. */
export function meetsTargets(r: GridRatios, t: GridTargets): Record<keyof GridTargets, boolean | null> {
  const meets = (v: number | null, min: number | null): boolean | null => (v === null || min === null ? null : v >= min);
  return {
    ofCeiling: meets(r.ofCeiling, t.ofCeiling),
    vsNaive: meets(r.vsNaive, t.vsNaive),
    vsTorchLoop: meets(r.vsTorchLoop, t.vsTorchLoop),
    vsTorchBatched: meets(r.vsTorchBatched, t.vsTorchBatched),
  };
}

export interface TrainCase {
  name: string;
  config: GPTConfig;
  params: number;
  batch: number;
  T: number;
  engineTokensPerSecond: number;
  torchTokensPerSecond: number | null;
  ceilingGflops: number;
}

export interface TrainRatios {
  flopsPerToken: number;
  engineGflops: number;
  ofCeiling: number;
  vsTorch: number | null;
}

export function trainRatios(c: TrainCase): TrainRatios {
  const flopsPerToken = trainFlopsPerToken(c.config, c.T);
  const engineGflops = (c.engineTokensPerSecond * flopsPerToken) / 1e9;
  return { flopsPerToken, engineGflops, ofCeiling: engineGflops / c.ceilingGflops, vsTorch: ratio(c.engineTokensPerSecond, c.torchTokensPerSecond) };
}

export interface LossComparison {
  points: number;
  maxAbsDiff: number;
  /** Largest |a - b| / max(1, |b|). */
  maxRelDiff: number;
  /** Indices where the values differ beyond the tolerance (or only one is finite). */
  mismatches: number[];
  ok: boolean;
}

/**
 * Compares the engine's losses with a baseline's on the points they share
 * (the first min(len) points, in the same order). Two non-finite values
 * agree when they are the same (NaN with NaN, +Inf with +Inf): a region of
 * divergence must be reported alike by both. Tolerance is relative to
 * max(1, |baseline|): float32 forwards that sum in different orders differ
 * by ~1e-6 relative, more where perturbations drive activations far out.
 */
export function compareLosses(engine: ArrayLike<number>, baseline: ArrayLike<number>, relTol = 1e-4): LossComparison {
  const points = Math.min(engine.length, baseline.length);
  let maxAbsDiff = 0;
  let maxRelDiff = 0;
  const mismatches: number[] = [];
  for (let i = 0; i < points; i++) {
    const a = engine[i]!;
    const b = baseline[i]!;
    if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) continue;
    const diff = Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : Infinity;
    const rel = diff / Math.max(1, Math.abs(b));
    maxAbsDiff = Math.max(maxAbsDiff, diff);
    maxRelDiff = Math.max(maxRelDiff, rel);
    if (!(rel <= relTol)) mismatches.push(i);
  }
  return { points, maxAbsDiff, maxRelDiff, mismatches, ok: mismatches.length === 0 };
}

function fmt(v: number | null, digits = 2): string {
  if (v === null) return '-';
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(1);
  return v.toFixed(digits);
}

function mark(ok: boolean | null): string {
  return ok === null ? '' : ok ? ' ok' : ' !';
}

/** Left-aligned first column, right-aligned numbers, columns separated by two spaces. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * The grid table: points/s of each method, the engine's GFLOP/s, its share of
 * the FMA ceiling and its speed-ups; "ok" / "!" mark a target met or missed.
 */
export function gridTable(cases: readonly GridCase[], targets: GridTargets): string {
  const rows = cases.map((c) => {
    const r = gridRatios(c);
    const m = meetsTargets(r, targets);
    return [
      c.name, fmt(c.params / 1e3, 1), fmt(r.flopsPerPoint / 1e6, 1), fmt(c.engine, 1), fmt(c.naive, 1), fmt(c.torchLoop, 1),
      fmt(c.torchBatched, 1), fmt(r.engineGflops), fmt(c.ceilingGflops), fmt(r.ceilingPointsPerSecond, 1),
      `${fmt(100 * r.ofCeiling, 1)}%${mark(m.ofCeiling)}`, `${fmt(r.vsNaive, 1)}${mark(m.vsNaive)}`,
      `${fmt(r.vsTorchLoop)}${mark(m.vsTorchLoop)}`, `${fmt(r.vsTorchBatched)}${mark(m.vsTorchBatched)}`,
    ];
  });
  return formatTable(
    ['case', 'kparams', 'MFLOP/pt', 'engine pt/s', 'naive pt/s', 'torch loop pt/s', 'torch batch pt/s', 'engine GFLOP/s',
      'FMA GFLOP/s', 'ceiling pt/s', 'of ceiling', 'x naive', 'x torch loop', 'x torch batch'],
    rows,
  );
}

export function trainTable(cases: readonly TrainCase[]): string {
  const rows = cases.map((c) => {
    const r = trainRatios(c);
    return [c.name, fmt(c.params / 1e3, 1), `${c.batch}x${c.T}`, fmt(c.engineTokensPerSecond, 0), fmt(c.torchTokensPerSecond, 0),
      fmt(r.engineGflops), fmt(100 * r.ofCeiling, 1) + '%', fmt(r.vsTorch)];
  });
  return formatTable(['case', 'kparams', 'batch', 'engine tok/s', 'torch tok/s', 'engine GFLOP/s', 'of ceiling', 'x torch'], rows);
}

/** The JSON the bench writes: inputs, derived ratios and target checks, side by side. */
export function gridJson<C extends GridCase>(cases: readonly C[], targets: GridTargets): Array<C & { ratios: GridRatios; meets: Record<keyof GridTargets, boolean | null> }> {
  return cases.map((c) => {
    const ratios = gridRatios(c);
    return { ...c, ratios, meets: meetsTargets(ratios, targets) };
  });
}

export function trainJson<C extends TrainCase>(cases: readonly C[]): Array<C & { ratios: TrainRatios }> {
  return cases.map((c) => ({ ...c, ratios: trainRatios(c) }));
}

/** One plan's profile (bench/profile.ts): per kernel its dispatches, GPU ms and share, the slowest first, then the total. */
export function profileTable(p: { kernels: ReadonlyArray<{ kernel: string; dispatches: number; ms: number }>; totalMs: number; dispatches: number }): string {
  const rows = p.kernels.map((k) => [k.kernel, String(k.dispatches), k.ms.toFixed(3), `${((100 * k.ms) / p.totalMs).toFixed(1)}%`]);
  rows.push(['all', String(p.dispatches), p.totalMs.toFixed(3), '100.0%']);
  return formatTable(['kernel', 'dispatches', 'GPU ms', 'share'], rows);
}
