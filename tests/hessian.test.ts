/**
 * Hessian directions against a dense Hessian: on a tiny model (odd sizes),
 * the Hessian over the selected coordinates is built column by column from
 * central differences of the reference gradient, symmetrised, and
 * diagonalised by Jacobi; Lanczos over Hessian-vector products must find its
 * top two eigenpairs.
 */
import { describe, expect, it } from 'vitest';
import { type GPTConfig } from '../src/model/config.ts';
import { initParams, paramLayout } from '../src/model/params.ts';
import { GPU_RELATIVE_STEP, gpuGradientFunction, hessianDirections, referenceGradient, selectionIndices } from '../src/landscape/hessian.ts';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { parseMask } from '../src/landscape/directions.ts';
import { symmetricEigen } from '../src/landscape/linalg.ts';
import { Rng } from '../src/util/rng.ts';

const cfg: GPTConfig = { vocab_size: 7, block_size: 5, n_layer: 1, n_head: 3, n_embd: 6, bias: true, activation: 'gelu', tie_embeddings: true };
const layout = paramLayout(cfg);
const B = 2;
const T = 5;

/** Weights `scale` times nanoGPT's initialisation: larger ones give a sharper, better separated spectrum. */
function setup(scale = 10) {
  const rng = new Rng(11);
  const theta = initParams(layout, 4).map((w) => w * scale);
  const idx = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { theta, batch: { B, T, idx, targets, mask: null } };
}

/** The dense Hessian over `support` by central differences of the gradient (step h), symmetrised. */
async function denseHessian(theta: Float32Array, gradient: ReturnType<typeof referenceGradient>, support: Int32Array, h: number) {
  const n = support.length;
  const H = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const plus = Float64Array.from(theta);
    const minus = Float64Array.from(theta);
    plus[support[c]!]! += h;
    minus[support[c]!]! -= h;
    const gp = await gradient(plus);
    const gm = await gradient(minus);
    for (let r = 0; r < n; r++) H[r * n + c] = (gp[support[r]!]! - gm[support[r]!]!) / (2 * h);
  }
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < r; c++) {
      const s = (H[r * n + c]! + H[c * n + r]!) / 2;
      H[r * n + c] = s;
      H[c * n + r] = s;
    }
  }
  return symmetricEigen(H, n);
}

function absCosineOnSupport(d: Float32Array, v: Float64Array, support: Int32Array): number {
  let dv = 0;
  let dd = 0;
  let vv = 0;
  support.forEach((p, s) => {
    dv += d[p]! * v[s]!;
    dd += d[p]! * d[p]!;
    vv += v[s]! * v[s]!;
  });
  return Math.abs(dv) / Math.sqrt(dd * vv);
}

describe('hessian directions', () => {
  it('match the top-2 eigenpairs of the dense Hessian over the attention block (mask, no vectors)', async () => {
    const { theta, batch } = setup();
    const gradient = referenceGradient(layout, batch);
    const mask = parseMask('tensor:transformer.h.0.attn.*;embeddings', layout);
    const support = selectionIndices(layout, false, mask);
    // c_attn.weight 18x6, c_proj.weight 6x6, wte 7x6, wpe 5x6; biases excluded
    expect(support.length).toBe(108 + 36 + 42 + 30);
    const dense = await denseHessian(theta, gradient, support, 1e-5);
    const [l1, l2, l3] = [dense.values[0]!, dense.values[1]!, dense.values[2]!];
    // the test needs separated eigenvalues for the eigenvectors to be defined
    expect((l2 - l3) / l1).toBeGreaterThan(0.02);

    const h = await hessianDirections(layout, theta, gradient, { mask, iterations: 80 });
    expect(Math.abs(h.eigenvalues[0] - l1) / l1).toBeLessThan(1e-4);
    expect(Math.abs(h.eigenvalues[1] - l2) / l1).toBeLessThan(1e-4);
    expect(absCosineOnSupport(h.d1, dense.vectors[0]!, support)).toBeGreaterThan(0.9999);
    expect(absCosineOnSupport(h.d2, dense.vectors[1]!, support)).toBeGreaterThan(0.999);
    // unit vectors, zero outside the selection (biases, LayerNorm, MLP, padding)
    const inSupport = new Set(support);
    let sq = 0;
    h.d1.forEach((x, i) => {
      if (!inSupport.has(i)) expect(x).toBe(0);
      sq += x * x;
    });
    expect(Math.abs(Math.sqrt(sq) - 1)).toBeLessThan(1e-6);
  });

  it('include 1-D tensors when asked: LayerNorm and bias coordinates get a share of the eigenvectors', async () => {
    const { theta, batch } = setup();
    const gradient = referenceGradient(layout, batch);
    const mask = parseMask('tensor:transformer.h.0.ln_*;tensor:transformer.h.0.attn.c_proj.*', layout);
    const support = selectionIndices(layout, true, mask);
    expect(support.length).toBe(4 * 6 + 36 + 6);
    const dense = await denseHessian(theta, gradient, support, 1e-5);
    const h = await hessianDirections(layout, theta, gradient, { mask, includeVectors: true, iterations: 66 });
    const l1 = dense.values[0]!;
    expect(Math.abs(h.eigenvalues[0] - l1) / l1).toBeLessThan(1e-4);
    expect(Math.abs(h.eigenvalues[1] - dense.values[1]!) / l1).toBeLessThan(1e-4);
    expect(absCosineOnSupport(h.d1, dense.vectors[0]!, support)).toBeGreaterThan(0.9999);
    const ln1 = layout.byName.get('transformer.h.0.ln_1.weight')!;
    expect(h.d1.subarray(ln1.offset, ln1.offset + ln1.size).some((x) => x !== 0)).toBe(true);
  });

  it('with the GPU gradient (float32) as well, to the accuracy of its finite differences', async () => {
    // float32 needs a larger step, whose O(eps^2) error grows with the third derivative: a milder model
    const { theta, batch } = setup(2);
    const mask = parseMask('tensor:transformer.h.0.attn.*;embeddings', layout);
    const support = selectionIndices(layout, false, mask);
    const dense = await denseHessian(theta, referenceGradient(layout, batch), support, 1e-5);
    expect((dense.values[1]! - dense.values[2]!) / dense.values[0]!).toBeGreaterThan(0.02);
    const ctx = await nodeGpu();
    const gpu = await gpuGradientFunction(ctx, new KernelCache(ctx), layout, batch);
    const h = await hessianDirections(layout, theta, gpu.gradient, { mask, iterations: 20, relativeStep: GPU_RELATIVE_STEP });
    gpu.destroy();
    const l1 = dense.values[0]!;
    expect(Math.abs(h.eigenvalues[0] - l1) / l1).toBeLessThan(2e-3);
    expect(Math.abs(h.eigenvalues[1] - dense.values[1]!) / l1).toBeLessThan(2e-3);
    expect(absCosineOnSupport(h.d1, dense.vectors[0]!, support)).toBeGreaterThan(0.999);
  });
});
