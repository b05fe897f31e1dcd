/**
 * The `tiled` GEMM (shaders/linear.ts tiledLinearKernel), the GPU tuner's
 * candidates, against the float64 reference `linear` on odd shapes: rows
 * (26) not a multiple of any block, 37 and 48 output columns (partial
 * column blocks), in_features 48 and 192 (vec4 loads, 3 and 12 steps of
 * BK 16) and 30 (scalar loads, a zero-padded last step), perturbed weights
 * of 3 points, with bias, activation, saved pre-activation and residual.
 */
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../src/node/gpu.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { readFloats, storageBuffer, uniformBuffer } from '../src/gpu/buffers.ts';
import { geluExact, linear } from '../src/model/reference.ts';
import { type GemmTile, TILED_CANDIDATES, linearWorkgroups, tiledLinearKernel } from '../shaders/linear.ts';
import { Rng } from '../src/util/rng.ts';

const rows = 26;
const points = 3;
const coords = [0.5, -0.25, -1, 0.75, 0, 0];

interface Case { inDim: number; outDim: number; epilogue: boolean }

async function check(tile: GemmTile, c: Case, seed: number): Promise<void> {
  const ctx = await nodeGpu();
  const { inDim, outDim, epilogue } = c;
  const rng = new Rng(seed);
  const randn = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  // weights at an offset that is a multiple of 4 but not 0, the bias after them
  const wOff = 8;
  const bOff = wOff + outDim * inDim;
  const floats = bOff + outDim + 4;
  const [theta, d1, d2] = [randn(floats), randn(floats), randn(floats)];
  const inp = randn(points * rows * inDim);
  const resid = randn(points * rows * outDim);
  const lin = {
    mode: 'perturbed' as const, strategy: 'tiled' as const, inDim, tile, vec4: inDim % 4 === 0,
    bias: epilogue, act: epilogue ? ('gelu' as const) : null, resid: epilogue, savePre: epilogue,
  };
  const kernel = await new KernelCache(ctx).get(tiledLinearKernel(lin));
  const bufs: Record<string, GPUBuffer> = {
    u: uniformBuffer(ctx, 'u', new Uint32Array([rows, inDim, outDim, wOff, bOff, 0, 0])),
    theta: storageBuffer(ctx, 'theta', theta), d1: storageBuffer(ctx, 'd1', d1), d2: storageBuffer(ctx, 'd2', d2),
    coords: storageBuffer(ctx, 'coords', new Float32Array(coords)),
    inp: storageBuffer(ctx, 'inp', inp),
    out: storageBuffer(ctx, 'out', new Float32Array(points * rows * outDim).fill(-7)),
  };
  if (epilogue) {
    bufs.resid = storageBuffer(ctx, 'resid', resid);
    bufs.pre = storageBuffer(ctx, 'pre', new Float32Array(points * rows * outDim).fill(-7));
  }
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(kernel.pipeline);
  pass.setBindGroup(0, kernel.bind(bufs));
  const wg = linearWorkgroups(lin, rows, outDim, points);
  expect(wg).toEqual([Math.ceil(outDim / (tile.WX * tile.TN)), Math.ceil(rows / (tile.WY * tile.TM)), points]);
  pass.dispatchWorkgroups(...wg);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
  const out = await readFloats(ctx, bufs.out!);
  const pre = epilogue ? await readFloats(ctx, bufs.pre!) : null;
  for (const b of Object.values(bufs)) b.destroy();

  let maxErr = 0;
  let maxAbs = 0;
  for (let p = 0; p < points; p++) {
    const [a, b] = [coords[2 * p]!, coords[2 * p + 1]!];
    const w = Float64Array.from(theta, (t, i) => t + a * d1[i]! + b * d2[i]!);
    const x = Float64Array.from(inp.subarray(p * rows * inDim, (p + 1) * rows * inDim));
    const y = linear(x, rows, inDim, outDim, w, wOff, epilogue ? w : null, bOff);
    for (let i = 0; i < rows * outDim; i++) {
      const at = p * rows * outDim + i;
      if (pre) {
        maxErr = Math.max(maxErr, Math.abs(pre[at]! - y[i]!));
        const expected = geluExact(y[i]!) + resid[at]!;
        maxErr = Math.max(maxErr, Math.abs(out[at]! - expected));
      } else {
        maxErr = Math.max(maxErr, Math.abs(out[at]! - y[i]!));
      }
      maxAbs = Math.max(maxAbs, Math.abs(y[i]!));
    }
  }
  // the products are of order sqrt(inDim) * 2: an error of 1e-5 of the largest is float32 rounding
  expect(maxAbs).toBeGreaterThan(5);
  expect(maxErr / maxAbs).toBeLessThan(1e-5);
}

describe('tiled GEMM vs the reference', () => {
  // every candidate once, the two load paths and the epilogue in turn (the staging code does not depend on the tile)
  TILED_CANDIDATES.forEach((tile, t) => {
    const name = `${tile.TM}x${tile.TN} per invocation, ${tile.WX}x${tile.WY} invocations`;
    if (t % 2 === 0) it(`${name}: 48 -> 37 (vec4), bias, GELU, pre, residual`, () => check(tile, { inDim: 48, outDim: 37, epilogue: true }, 10 + t));
    else it(`${name}: 30 -> 48 (scalar loads, padded step), no epilogue`, () => check(tile, { inDim: 30, outDim: 48, epilogue: false }, 20 + t));
  });
  it('BK 8 and 32: 192 -> 37 (24 and 6 steps)', async () => {
    await check({ TM: 4, TN: 4, WX: 8, WY: 8, BK: 8 }, { inDim: 192, outDim: 37, epilogue: false }, 31);
    await check({ TM: 8, TN: 4, WX: 8, WY: 8, BK: 32 }, { inDim: 192, outDim: 37, epilogue: true }, 32);
  });
  it('refuses tiles that are not multiples of 4', () => {
    expect(() => tiledLinearKernel({
      mode: 'plain', strategy: 'tiled', inDim: 48, tile: { TM: 2, TN: 4, WX: 8, WY: 8 }, vec4: true, bias: false, act: null, resid: false, savePre: false,
    })).toThrow(/multiples of 4/);
  });
});
