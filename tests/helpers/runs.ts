/** Synthetic models, token files and run directories (SPEC section 3 is the contract) for the landscape CLI tests. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GPTConfig } from '../../src/model/config.ts';
import { type ParamLayout, initParams, paramLayout } from '../../src/model/params.ts';
import { paramsToSafetensors, tokensToSafetensors } from '../../src/io/formats.ts';
import { Rng } from '../../src/util/rng.ts';
import { type CliResult, ROOT } from './cli.ts';

/** runCli with extra environment variables (e.g. the test hook LOSSCAPE_TEST_STOP_AFTER_CHUNKS). */
export function runCliWithEnv(args: string[], env: Record<string, string>, timeoutMs = 120_000): CliResult {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/losscape.mjs'), ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The odd sizes of the house rules: n_embd 48, 3 heads, vocab 37, T 13. */
export const TINY: GPTConfig = { vocab_size: 37, block_size: 13, n_layer: 1, n_head: 3, n_embd: 48, bias: true, activation: 'gelu', tie_embeddings: true };
export const tinyLayout: ParamLayout = paramLayout(TINY);

export function writeModel(dir: string, params: Float32Array, cfg: GPTConfig = TINY): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  writeFileSync(join(dir, 'model.safetensors'), paramsToSafetensors(paramLayout(cfg), params));
  return dir;
}

/** B sequences of T+1 seeded random ids; returns the inputs/targets split too. */
export function writeTokens(path: string, B: number, T: number, seed: number, vocab = TINY.vocab_size) {
  const rng = new Rng(seed);
  const tokens = Int32Array.from({ length: B * (T + 1) }, () => rng.int(vocab));
  writeFileSync(path, tokensToSafetensors(tokens, B, T + 1));
  const idx = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    idx.set(tokens.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(tokens.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  return { path, B, T, idx, targets };
}

/** A run directory: config.json, train.json, ckpt-STEP.safetensors for each given step, eval.safetensors. */
export function writeRun(dir: string, checkpoints: Array<{ step: number; params: Float32Array }>, evalSeed = 7, B = 2, T = TINY.block_size) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
  writeFileSync(join(dir, 'train.json'), JSON.stringify({ dataset: 'synthetic', seed: 0, steps: checkpoints.at(-1)!.step }));
  for (const c of checkpoints) writeFileSync(join(dir, `ckpt-${c.step}.safetensors`), paramsToSafetensors(tinyLayout, c.params));
  return { dir, tokens: writeTokens(join(dir, 'eval.safetensors'), B, T, evalSeed) };
}

/**
 * Seeded N(0, scale) directions on every real parameter (padding zero), distinct scales so a swap shows.
 * Given an Rng instead of a seed, draws from it (and leaves it advanced).
 */
export function randomPlane(
  seed: number | Rng, s1 = 0.05, s2 = 0.02, layout: ParamLayout = tinyLayout,
): { d1: Float32Array; d2: Float32Array } {
  const rng = typeof seed === 'number' ? new Rng(seed) : seed;
  const d1 = new Float32Array(layout.totalFloats);
  const d2 = new Float32Array(layout.totalFloats);
  for (const t of layout.tensors) {
    rng.fillNormal(d1, s1, t.offset, t.size);
    rng.fillNormal(d2, s2, t.offset, t.size);
  }
  return { d1, d2 };
}

export const centreParams = (): Float32Array => initParams(tinyLayout, 3);
