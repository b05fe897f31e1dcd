import { describe, expect, it } from 'vitest';
import { createFmaRunner, FMA_ACCUMULATORS, FMA_UNROLL, FMA_WORKGROUP_SIZE, measureFmaCeiling } from '../src/gpu/fma.ts';
import { nodeGpu } from '../src/node/gpu.ts';

/**
 * The chain of the microkernel recomputed in float64: invocation i starts lane
 * l of accumulator j at i + 4j + l and applies a <- a*m + c trips*FMA_UNROLL
 * times; the output is the sum of all lanes. With m a power of two, small
 * starting integers and few steps, every intermediate value is exact in f32,
 * so the GPU must match to the bit whatever its order of summation.
 */
function expectedSum(i: number, trips: number, m: number, c: number): number {
  let sum = 0;
  for (let j = 0; j < FMA_ACCUMULATORS; j++) {
    for (let l = 0; l < 4; l++) {
      let a = i + 4 * j + l;
      for (let s = 0; s < trips * FMA_UNROLL; s++) a = a * m + c;
      sum += a;
    }
  }
  return sum;
}

describe('FMA ceiling microkernel', () => {
  it('computes the fma chains exactly for a small dispatch', async () => {
    const ctx = await nodeGpu();
    const workgroups = 3;
    const invocations = workgroups * FMA_WORKGROUP_SIZE;
    const runner = await createFmaRunner(ctx, workgroups);
    try {
      for (const [trips, m, c] of [[2, 0.5, 1], [1, 0.25, -0.75], [0, 0.5, 1]] as const) {
        await runner.run(workgroups, trips, m, c);
        const out = await runner.read(invocations);
        const expected = Float32Array.from({ length: invocations }, (_, i) => expectedSum(i, trips, m, c));
        expect(out).toEqual(expected);
      }
    } finally {
      runner.destroy();
    }
  });

  it('measures a positive, finite throughput consistent with its FLOP count', async () => {
    const ctx = await nodeGpu();
    const r = await measureFmaCeiling(ctx, { seconds: 0.05 });
    expect(Number.isFinite(r.gflops)).toBe(true);
    expect(r.gflops).toBeGreaterThan(0);
    expect(r.ms).toBeGreaterThan(0);
    expect(r.fmaPerInvocation % (FMA_ACCUMULATORS * 4 * FMA_UNROLL)).toBe(0);
    expect(r.gflops).toBeCloseTo((2 * r.invocations * r.fmaPerInvocation) / (r.ms * 1e6), 6);
  });
});
