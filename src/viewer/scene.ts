/**
 * What the terrain and the path pipelines share: bind group 0 (the view
 * uniforms, the heights, their statistics, the colour map), the WGSL that
 * turns a raw height into a point on the drawn surface, and the statistics
 * kernel that finds the height range on the GPU.
 *
 * Group 0, visible to both render pipelines:
 *   0 view      uniform View          (one buffer per viewport: main 3D view, minimap)
 *   1 heights   read-only storage f32 [frames][ny][nx]   (the HeightField's buffer, bound whole)
 *   2 stats     read-only storage Stats                   (written by the statistics kernel)
 *   3 colormap  texture_2d<f32> 256x1 RGBA
 *   4 cmapSampler  linear, clamp-to-edge
 */
import type { GpuContext } from '../gpu/context.ts';
import { readFloats, storageBuffer, uniformBuffer, writeBuffer } from '../gpu/buffers.ts';
import { compileKernel, type Kernel } from '../gpu/kernel.ts';
import { colormapTable, type ColormapName } from '../export/colormaps.ts';
import type { EvalProgress, HeightField } from './source.ts';

/** World height of the top of the range at exaggeration 1; the footprint is [-1, 1]^2. */
export const RELIEF = 1.0;
export const COLORMAP_SIZE = 256;

/** WGSL shared by every pipeline that reads a HeightField (prepended to their sources). */
export const FIELD_WGSL = /* wgsl */ `
struct View {
  viewProj: mat4x4f,
  eye: vec3f,
  exaggeration: f32,
  lightDir: vec3f,
  clampMax: f32,          // 0 = no clamp
  viewportPx: vec2f,
  contours: f32,          // number of levels, 0 = none
  logScale: u32,
  nx: u32,
  ny: u32,
  stride: u32,            // lattice stride of the valid points (1 = all)
  frameA: u32,            // the two frames blended (wormhole playback)
  frameB: u32,
  frameMix: f32,
  mode: u32,              // 0 = perspective 3D view, 1 = top-down minimap
  pad: u32,
}

struct Stats { lo: f32, hi: f32, minPositive: f32, nonFinite: f32 }

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var<storage, read> heights: array<f32>;
@group(0) @binding(2) var<storage, read> stats: Stats;
@group(0) @binding(3) var colormap: texture_2d<f32>;
@group(0) @binding(4) var cmapSampler: sampler;

const RELIEF = ${RELIEF};

// NaN and Inf have all exponent bits set; compilers may fold isnan-style
// float comparisons away, bit tests they cannot.
fn isFinite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }

// A height mapped to [0, 1] over the displayed range (the minimum to the
// maximum or the clamp), in linear or log scale. x: unit height, y: 1 when
// the value is not finite (drawn at the top and marked).
fn toUnit(h: f32) -> vec2f {
  if (!isFinite(h)) { return vec2f(1.0, 1.0); }
  var top = stats.hi;
  if (view.clampMax > 0.0) { top = max(min(top, view.clampMax), stats.lo); }
  var lo = stats.lo;
  var v = h;
  if (view.logScale == 1u) {
    let floorV = stats.minPositive;
    lo = log(max(lo, floorV));
    top = log(max(top, floorV));
    v = log(max(h, floorV));
  }
  let span = top - lo;
  if (span <= 0.0) { return vec2f(0.0, 0.0); }
  return vec2f(clamp((v - lo) / span, 0.0, 1.0), 0.0);
}

fn rawAt(i: u32, j: u32) -> vec2f {
  let plane = view.nx * view.ny;
  let k = j * view.nx + i;
  let a = toUnit(heights[view.frameA * plane + k]);
  let b = toUnit(heights[view.frameB * plane + k]);
  return vec2f(mix(a.x, b.x, view.frameMix), max(a.y, b.y));
}

// The lattice cell around index i of an axis of n points at stride s:
// (i0, i1, weight of i1).
fn latticeCell(i: u32, n: u32, s: u32) -> vec3f {
  let i0 = (i / s) * s;
  let i1 = min(i0 + s, n - 1u);
  var w = 0.0;
  if (i1 > i0) { w = f32(i - i0) / f32(i1 - i0); }
  return vec3f(f32(i0), f32(i1), w);
}

// Unit height at grid vertex (i, j): the value itself when every point is
// valid, else bilinear between the valid lattice points around it.
fn unitAt(i: u32, j: u32) -> vec2f {
  if (view.stride <= 1u) { return rawAt(i, j); }
  let cx = latticeCell(i, view.nx, view.stride);
  let cy = latticeCell(j, view.ny, view.stride);
  let h00 = rawAt(u32(cx.x), u32(cy.x));
  let h10 = rawAt(u32(cx.y), u32(cy.x));
  let h01 = rawAt(u32(cx.x), u32(cy.y));
  let h11 = rawAt(u32(cx.y), u32(cy.y));
  let t = mix(mix(h00.x, h10.x, cx.z), mix(h01.x, h11.x, cx.z), cy.z);
  return vec2f(t, max(max(h00.y, h10.y), max(h01.y, h11.y)));
}

// World position of fractional grid coordinates (fi along alpha, fj along
// beta) at unit height t: x follows alpha, z follows -beta, so that from the
// default camera alpha runs right and beta away, as in a contour plot.
fn worldAt(fi: f32, fj: f32, t: f32) -> vec3f {
  let x = -1.0 + 2.0 * fi / f32(max(view.nx - 1u, 1u));
  let z = 1.0 - 2.0 * fj / f32(max(view.ny - 1u, 1u));
  var y = t * RELIEF * view.exaggeration;
  if (view.mode == 1u) { y = 0.0; }
  return vec3f(x, y, z);
}

// Clip position: the camera for the 3D view, a flat top-down square for the minimap.
fn project(p: vec3f) -> vec4f {
  if (view.mode == 1u) { return vec4f(p.x, -p.z, 0.5, 1.0); }
  return view.viewProj * vec4f(p, 1.0);
}

// Unit height on the drawn surface at fractional grid coordinates, with the
// mesh's own triangles (split along the (i+1, j)-(i, j+1) diagonal), so that
// what lies on the surface (the path) lies exactly on it.
fn surfaceAt(fi: f32, fj: f32) -> vec2f {
  let gi = clamp(fi, 0.0, f32(view.nx - 1u));
  let gj = clamp(fj, 0.0, f32(view.ny - 1u));
  let i0 = min(u32(gi), max(view.nx, 2u) - 2u);
  let j0 = min(u32(gj), max(view.ny, 2u) - 2u);
  let u = gi - f32(i0);
  let v = gj - f32(j0);
  let i1 = min(i0 + 1u, view.nx - 1u);
  let j1 = min(j0 + 1u, view.ny - 1u);
  let h10 = unitAt(i1, j0);
  let h01 = unitAt(i0, j1);
  var t: f32;
  var bad: f32;
  if (u + v <= 1.0) {
    let h00 = unitAt(i0, j0);
    t = h00.x + u * (h10.x - h00.x) + v * (h01.x - h00.x);
    bad = max(h00.y, max(h10.y, h01.y));
  } else {
    let h11 = unitAt(i1, j1);
    t = h11.x + (1.0 - u) * (h01.x - h11.x) + (1.0 - v) * (h10.x - h11.x);
    bad = max(h11.y, max(h10.y, h01.y));
  }
  return vec2f(t, bad);
}
`;

// Reduces the valid part of a height field (the lattice points of the ready
// frames) to Stats {lo, hi, minPositive, nonFinite}. Bindings: heights (read),
// stats (read_write), params (uniform). Dispatch: exactly one workgroup.
const STATS_WGSL = /* wgsl */ `
struct Params { nx: u32, ny: u32, stride: u32, frames: u32 }
struct Stats { lo: f32, hi: f32, minPositive: f32, nonFinite: f32 }
@group(0) @binding(0) var<storage, read> heights: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: Stats;
@group(0) @binding(2) var<uniform> params: Params;

const WG = 256u;
const BIG = 3.0e38;
var<workgroup> wLo: array<f32, WG>;
var<workgroup> wHi: array<f32, WG>;
var<workgroup> wPos: array<f32, WG>;
var<workgroup> wBad: array<f32, WG>;

fn isFinite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32) {
  let s = params.stride;
  let lx = (params.nx - 1u + s - 1u) / s + 1u;
  let ly = (params.ny - 1u + s - 1u) / s + 1u;
  let total = lx * ly * params.frames;
  var lo = BIG;
  var hi = -BIG;
  var pos = BIG;
  var bad = 0.0;
  for (var k = t; k < total; k += WG) {
    let i = min((k % lx) * s, params.nx - 1u);
    let j = min(((k / lx) % ly) * s, params.ny - 1u);
    let f = k / (lx * ly);
    let v = heights[(f * params.ny + j) * params.nx + i];
    if (!isFinite(v)) { bad += 1.0; continue; }
    lo = min(lo, v);
    hi = max(hi, v);
    if (v > 0.0) { pos = min(pos, v); }
  }
  wLo[t] = lo; wHi[t] = hi; wPos[t] = pos; wBad[t] = bad;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (t < half) {
      wLo[t] = min(wLo[t], wLo[t + half]);
      wHi[t] = max(wHi[t], wHi[t + half]);
      wPos[t] = min(wPos[t], wPos[t + half]);
      wBad[t] = wBad[t] + wBad[t + half];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    // No finite value at all: a unit range, so that everything maps somewhere.
    if (wLo[0] > wHi[0]) { wLo[0] = 0.0; wHi[0] = 1.0; }
    if (wPos[0] == BIG) { wPos[0] = max(wHi[0], 1e-30); }
    stats = Stats(wLo[0], wHi[0], wPos[0], wBad[0]);
  }
}
`;

export interface FieldStats {
  lo: number;
  hi: number;
  minPositive: number;
  nonFinite: number;
}

/** Everything the view uniforms hold, in the units of the View struct. */
export interface ViewParams {
  viewProj: Float32Array;
  eye: ArrayLike<number>;
  lightDir: ArrayLike<number>;
  exaggeration: number;
  clampMax: number;
  viewportPx: [number, number];
  contours: number;
  logScale: boolean;
  frameA: number;
  frameB: number;
  frameMix: number;
  mode: 'view' | 'map';
}

const VIEW_BYTES = 144;
const STATS_BYTES = 16;

export class Scene {
  readonly layout: GPUBindGroupLayout;
  readonly viewBuffers: { view: GPUBuffer; map: GPUBuffer };
  readonly statsBuffer: GPUBuffer;
  private readonly colormapTexture: GPUTexture;
  private readonly sampler: GPUSampler;
  private readonly statsParams: GPUBuffer;
  private field: HeightField | null = null;
  private progress: EvalProgress | null = null;
  private groups: { view: GPUBindGroup; map: GPUBindGroup } | null = null;
  private statsGroup: GPUBindGroup | null = null;

  private constructor(private readonly ctx: GpuContext, private readonly statsKernel: Kernel) {
    const { device } = ctx;
    const VERTEX = 1, FRAGMENT = 2; // GPUShaderStage
    this.layout = device.createBindGroupLayout({
      label: 'field',
      entries: [
        { binding: 0, visibility: VERTEX | FRAGMENT, buffer: { type: 'uniform' } },
        { binding: 1, visibility: VERTEX, buffer: { type: 'read-only-storage' } },
        { binding: 2, visibility: VERTEX | FRAGMENT, buffer: { type: 'read-only-storage' } },
        { binding: 3, visibility: FRAGMENT, texture: { sampleType: 'float' } },
        { binding: 4, visibility: FRAGMENT, sampler: { type: 'filtering' } },
      ],
    });
    const UNIFORM = 0x40, COPY_DST = 0x08;
    this.viewBuffers = {
      view: device.createBuffer({ label: 'view uniforms', size: VIEW_BYTES, usage: UNIFORM | COPY_DST }),
      map: device.createBuffer({ label: 'minimap uniforms', size: VIEW_BYTES, usage: UNIFORM | COPY_DST }),
    };
    this.statsBuffer = storageBuffer(ctx, 'height stats', STATS_BYTES);
    this.statsParams = uniformBuffer(ctx, 'height stats params', new Uint32Array(4));
    this.colormapTexture = device.createTexture({
      label: 'colormap',
      size: [COLORMAP_SIZE, 1],
      format: 'rgba8unorm',
      usage: 0x04 | 0x02, // TEXTURE_BINDING | COPY_DST
    });
    this.sampler = device.createSampler({ label: 'colormap', magFilter: 'linear', minFilter: 'linear' });
  }

  static async create(ctx: GpuContext): Promise<Scene> {
    const statsKernel = await compileKernel(ctx, {
      name: 'height stats',
      code: STATS_WGSL,
      bindings: [{ name: 'heights', kind: 'read' }, { name: 'stats', kind: 'readwrite' }, { name: 'params', kind: 'uniform' }],
    });
    return new Scene(ctx, statsKernel);
  }

  get current(): HeightField | null {
    return this.field;
  }

  get ready(): EvalProgress | null {
    return this.progress;
  }

  setColormap(name: ColormapName): void {
    // The same table the colour-mapped PNG export uses, so the screen and the file agree.
    const table = new Uint8Array(colormapTable(name, COLORMAP_SIZE));
    this.ctx.device.queue.writeTexture({ texture: this.colormapTexture }, table, { bytesPerRow: COLORMAP_SIZE * 4 }, [COLORMAP_SIZE, 1]);
  }

  /** Shows `field` with its valid part `progress`, and recomputes the height range on the GPU. */
  setField(field: HeightField, progress: EvalProgress): void {
    if (field !== this.field) {
      const { device } = this.ctx;
      const group = (buffer: GPUBuffer, label: string): GPUBindGroup => device.createBindGroup({
        label,
        layout: this.layout,
        entries: [
          { binding: 0, resource: { buffer } },
          { binding: 1, resource: { buffer: field.heights } },
          { binding: 2, resource: { buffer: this.statsBuffer } },
          { binding: 3, resource: this.colormapTexture.createView() },
          { binding: 4, resource: this.sampler },
        ],
      });
      this.groups = { view: group(this.viewBuffers.view, 'field (view)'), map: group(this.viewBuffers.map, 'field (minimap)') };
      this.statsGroup = this.statsKernel.bind({ heights: field.heights, stats: this.statsBuffer, params: this.statsParams });
      this.field = field;
    }
    this.progress = progress;
    writeBuffer(this.ctx, this.statsParams, new Uint32Array([field.nx, field.ny, progress.stride, Math.max(1, progress.framesReady)]));
    const encoder = this.ctx.device.createCommandEncoder({ label: 'height stats' });
    const pass = encoder.beginComputePass({ label: 'height stats' });
    pass.setPipeline(this.statsKernel.pipeline);
    pass.setBindGroup(0, this.statsGroup!);
    pass.dispatchWorkgroups(1);
    pass.end();
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** The range the stats kernel found last (for the legend and the overlay). */
  async readStats(): Promise<FieldStats> {
    const [lo, hi, minPositive, nonFinite] = await readFloats(this.ctx, this.statsBuffer, 0, 4);
    return { lo: lo!, hi: hi!, minPositive: minPositive!, nonFinite: nonFinite! };
  }

  bindGroup(which: 'view' | 'map'): GPUBindGroup | null {
    return this.groups ? this.groups[which] : null;
  }

  writeView(which: 'view' | 'map', p: ViewParams): void {
    const field = this.field;
    if (!field) return;
    const data = new ArrayBuffer(VIEW_BYTES);
    const f = new Float32Array(data);
    const u = new Uint32Array(data);
    f.set(p.viewProj, 0);
    f.set([p.eye[0]!, p.eye[1]!, p.eye[2]!, p.exaggeration], 16);
    f.set([p.lightDir[0]!, p.lightDir[1]!, p.lightDir[2]!, p.clampMax], 20);
    f.set([p.viewportPx[0], p.viewportPx[1], p.contours], 24);
    u[27] = p.logScale ? 1 : 0;
    u[28] = field.nx;
    u[29] = field.ny;
    u[30] = this.progress?.stride ?? 1;
    u[31] = p.frameA;
    u[32] = p.frameB;
    f[33] = p.frameMix;
    u[34] = p.mode === 'map' ? 1 : 0;
    writeBuffer(this.ctx, this.viewBuffers[which], f);
  }
}
