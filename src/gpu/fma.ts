/**
 * The adapter's FMA ceiling (SPEC section 6): a register-only microkernel of
 * independent vec4 fma chains, timed on the device. It is the physical limit
 * that the benchmark compares the engine's achieved GFLOP/s with.
 */
import { type GpuContext, GpuError, checked, finish } from './context.ts';
import { BufferUsage, readBytes, readFloats, storageBuffer, uniformBuffer } from './buffers.ts';
import { compileKernel, type Dispatch, encodeDispatches, type Kernel } from './kernel.ts';

export const FMA_WORKGROUP_SIZE = 64;
/** Independent vec4 accumulators per invocation: enough chains to hide the FMA latency. */
export const FMA_ACCUMULATORS = 8;
/** Rounds of all accumulators per loop trip, so that the loop counter costs little. */
export const FMA_UNROLL = 4;
/** Scalar FMAs per invocation per loop trip. */
export const FMA_PER_TRIP = FMA_ACCUMULATORS * 4 * FMA_UNROLL;

function fmaShader(): string {
  const acc = Array.from({ length: FMA_ACCUMULATORS }, (_, j) => j);
  const round = acc.map((j) => `    a${j} = fma(a${j}, m, c);`).join('\n');
  return /* wgsl */ `
// FMA ceiling microkernel. Each invocation starts FMA_ACCUMULATORS vec4
// accumulators at a_j = vec4(i + 4j, i + 4j + 1, i + 4j + 2, i + 4j + 3)
// (i = global invocation index) and applies a_j = fma(a_j, m, c) to each,
// FMA_UNROLL times per loop trip, params.trips trips: registers only, no
// memory traffic in the loop. The sum of all lanes of all accumulators is
// stored once at the end so that the compiler cannot drop the chains.
// Bindings: params (uniform: trips, m, c), out (one f32 per invocation).
// Dispatch: (workgroups, 1, 1), workgroup size ${FMA_WORKGROUP_SIZE}.
struct Params { trips: u32, m: f32, c: f32, _pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${FMA_WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let base = vec4f(f32(i)) + vec4f(0.0, 1.0, 2.0, 3.0);
  let m = vec4f(params.m);
  let c = vec4f(params.c);
${acc.map((j) => `  var a${j} = base + vec4f(${4 * j}.0);`).join('\n')}
  for (var t = 0u; t < params.trips; t++) {
${Array.from({ length: FMA_UNROLL }, () => round).join('\n')}
  }
  let s = ${acc.map((j) => `a${j}`).join(' + ')};
  out[i] = s.x + s.y + s.z + s.w;
}
`;
}

export interface FmaCeiling {
  /** Achieved FMA throughput, 2 FLOPs per FMA lane. */
  gflops: number;
  invocations: number;
  /** Scalar FMAs each invocation performed. */
  fmaPerInvocation: number;
  /** Duration of the measured dispatch. */
  ms: number;
  /** How `ms` was taken: GPU timestamps, or wall clock around onSubmittedWorkDone. */
  timer: 'timestamp' | 'wall';
}

export interface FmaOptions {
  /** Target duration of all measured dispatches together (default 0.4 s). */
  seconds?: number;
  /** Measured dispatches of seconds/repeats each; the fastest counts, as a ceiling should (default 3). */
  repeats?: number;
}

/** A compiled microkernel with its buffers, for runs of any size up to `maxInvocations`. */
export interface FmaRunner {
  kernel: Kernel;
  /** Runs `workgroups` x FMA_WORKGROUP_SIZE invocations of `trips` loop trips; returns the duration. */
  run(workgroups: number, trips: number, m: number, c: number): Promise<{ ms: number; timer: FmaCeiling['timer'] }>;
  /** Reads the per-invocation sums of the last run. */
  read(invocations: number): Promise<Float32Array>;
  destroy(): void;
}

const QUERY_RESOLVE = 0x200; // GPUBufferUsage.QUERY_RESOLVE

export async function createFmaRunner(ctx: GpuContext, maxWorkgroups: number): Promise<FmaRunner> {
  const kernel = await compileKernel(ctx, {
    name: 'fma_ceiling',
    code: fmaShader(),
    bindings: [{ name: 'params', kind: 'uniform' }, { name: 'out', kind: 'readwrite' }],
  });
  const { device } = ctx;
  const out = storageBuffer(ctx, 'fma_ceiling out', maxWorkgroups * FMA_WORKGROUP_SIZE * 4);
  const querySet = ctx.hasTimestamps ? device.createQuerySet({ label: 'fma_ceiling timestamps', type: 'timestamp', count: 2 }) : null;
  const resolve = querySet
    ? device.createBuffer({ label: 'fma_ceiling timestamps', size: 16, usage: QUERY_RESOLVE | BufferUsage.COPY_SRC })
    : null;

  async function run(workgroups: number, trips: number, m: number, c: number): Promise<{ ms: number; timer: FmaCeiling['timer'] }> {
    if (workgroups > maxWorkgroups) throw new GpuError(`fma_ceiling: ${workgroups} workgroups exceed the ${maxWorkgroups} allocated`);
    const words = new ArrayBuffer(16);
    new Uint32Array(words, 0, 1)[0] = trips;
    new Float32Array(words, 4, 2).set([m, c]);
    const params = uniformBuffer(ctx, 'fma_ceiling params', new Uint32Array(words));
    const dispatch: Dispatch = { kernel, bindGroup: kernel.bind({ params, out }), workgroups: [workgroups, 1, 1] };
    const start = performance.now();
    await checked(ctx, 'fma_ceiling', () => {
      const encoder = device.createCommandEncoder({ label: 'fma_ceiling' });
      const timestampWrites = querySet ? { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } : undefined;
      encodeDispatches(encoder, [dispatch], 'fma_ceiling', timestampWrites);
      if (querySet && resolve) encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      device.queue.submit([encoder.finish()]);
    });
    await finish(ctx);
    const wallMs = performance.now() - start;
    params.destroy();
    if (resolve) {
      const [begin, end] = new BigUint64Array(await readBytes(ctx, resolve, 0, 16));
      const gpuMs = Number(end! - begin!) / 1e6;
      // Some implementations return zeros or quantised ticks: trust them only when they are plausible.
      if (end! > begin! && gpuMs <= wallMs * 1.01) return { ms: gpuMs, timer: 'timestamp' };
    }
    return { ms: wallMs, timer: 'wall' };
  }

  return {
    kernel,
    run,
    read: (invocations) => readFloats(ctx, out, 0, invocations),
    destroy() {
      out.destroy();
      resolve?.destroy();
      querySet?.destroy();
    },
  };
}

/** Multiplier and addend of the measured chains: a*0.5 is exact, so fused and unfused FMA agree bit for bit. */
export const FMA_M = 0.5;
export const FMA_C = 1.0;

/** Below this a run is too short to time; calibration grows the dispatch until it takes this long. */
const CALIBRATION_MS = 20;
/** 2^14 workgroups of 64 = 1M invocations: enough to fill the largest GPUs several times over. */
const MAX_WORKGROUPS = 1 << 14;

/**
 * Measures the FMA ceiling. A short calibration first grows the grid of
 * workgroups (up to MAX_WORKGROUPS, to fill a large GPU) and then the loop
 * trips until a run takes CALIBRATION_MS; the measured run is that one scaled
 * to seconds/repeats (the calibration run itself when that is shorter), and
 * the fastest of `repeats` such runs is reported: noise only slows a run.
 * FLOPs = 2 x invocations x fmaPerInvocation (one FMA lane = 2 FLOPs).
 */
export async function measureFmaCeiling(ctx: GpuContext, options: FmaOptions = {}): Promise<FmaCeiling> {
  const repeats = options.repeats ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1) throw new GpuError(`fma_ceiling: repeats must be a positive integer, got ${repeats}`);
  const targetMs = ((options.seconds ?? 0.4) * 1000) / repeats;
  if (!(targetMs > 0)) throw new GpuError(`fma_ceiling: seconds must be positive, got ${options.seconds}`);
  const maxWorkgroups = Math.min(MAX_WORKGROUPS, ctx.adapter.limits.maxComputeWorkgroupsPerDimension ?? 65535);
  const runner = await createFmaRunner(ctx, maxWorkgroups);
  try {
    let workgroups = 16;
    let trips = 16;
    await runner.run(workgroups, trips, FMA_M, FMA_C); // warm-up: pipeline creation and first-use costs
    let measured = await runner.run(workgroups, trips, FMA_M, FMA_C);
    while (measured.ms < CALIBRATION_MS) {
      const grow = Math.min(16, Math.max(2, Math.ceil(CALIBRATION_MS / Math.max(measured.ms, 0.05))));
      if (workgroups < maxWorkgroups) workgroups = Math.min(maxWorkgroups, workgroups * grow);
      else trips *= grow;
      measured = await runner.run(workgroups, trips, FMA_M, FMA_C);
    }
    // Scale to the target; rescale (at most three times) while a run is under half of it,
    // as when the calibration run was slowed by first-use costs.
    for (let attempt = 0; attempt < 3 && measured.ms < targetMs / 2; attempt++) {
      trips = Math.max(1, Math.round(trips * targetMs / measured.ms));
      measured = await runner.run(workgroups, trips, FMA_M, FMA_C);
    }
    for (let r = 1; r < repeats; r++) {
      const again = await runner.run(workgroups, trips, FMA_M, FMA_C);
      if (again.ms < measured.ms) measured = again;
    }
    const invocations = workgroups * FMA_WORKGROUP_SIZE;
    const fmaPerInvocation = trips * FMA_PER_TRIP;
    return {
      gflops: (2 * invocations * fmaPerInvocation) / (measured.ms * 1e6),
      invocations,
      fmaPerInvocation,
      ms: measured.ms,
      timer: measured.timer,
    };
  } finally {
    runner.destroy();
  }
}
