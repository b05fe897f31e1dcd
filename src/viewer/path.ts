/**
 * The training path: a screen-space thick line lying on the surface (its
 * heights come from the same heights buffer, through the mesh's own
 * triangles), a marker at the current checkpoint, the player that moves the
 * marker, and the overlay text for the current checkpoint.
 *
 * Group 1 (path):
 *   0 points  read-only storage vec2f [checkpoints]  (fractional grid coordinates of each checkpoint)
 *   1 pathU   uniform PathU
 * Draws: (checkpoints - 1) * SUBDIVISIONS instances of 6 vertices (the line),
 * then one instance of 6 (the marker).
 */
import type { GpuContext } from '../gpu/context.ts';
import { storageBuffer, uniformBuffer, writeBuffer } from '../gpu/buffers.ts';
import { FIELD_WGSL, type Scene } from './scene.ts';
import type { HeightField, PathData } from './source.ts';
import type { Settings } from './state.ts';
import type { TargetFormat } from './terrain.ts';

/** Colour of the part of the path already travelled (sRGB bytes; the tests look for it). */
export const PATH_RGB = [255, 64, 48] as const;
const AHEAD_RGB = [235, 235, 235] as const;
const MARKER_RGB = [255, 255, 255] as const;
/** Each segment between checkpoints is drawn as this many pieces that follow the surface. */
const SUBDIVISIONS = 12;
const PATH_WIDTH_PX = 4;
const MARKER_RADIUS_PX = 7;

const rgba = (c: readonly number[]): string => `vec4f(${c.map((v) => (v / 255).toFixed(4)).join(', ')}, 1.0)`;

const PATH_WGSL = FIELD_WGSL + /* wgsl */ `
struct PathU {
  shift: vec2f,       // grid units subtracted from every point (wormhole: the current centre)
  current: f32,       // marker position in checkpoints
  widthPx: f32,
  count: u32,
  sub: u32,
  markerRadiusPx: f32,
  depthPull: f32,
}
@group(1) @binding(0) var<storage, read> points: array<vec2f>;
@group(1) @binding(1) var<uniform> pathU: PathU;

const PATH_COLOR = ${rgba(PATH_RGB)};
const AHEAD_COLOR = ${rgba(AHEAD_RGB)};
const MARKER_COLOR = ${rgba(MARKER_RGB)};

fn pathPoint(u: f32) -> vec2f {
  if (pathU.count < 2u) { return points[0] - pathU.shift; }
  let k = min(u32(max(floor(u), 0.0)), pathU.count - 2u);
  return mix(points[k], points[k + 1u], clamp(u - f32(k), 0.0, 1.0)) - pathU.shift;
}

fn onSurface(g: vec2f) -> vec4f {
  let p = worldAt(g.x, g.y, surfaceAt(g.x, g.y).x);
  return project(p);
}

// Offsets a clip position by a pixel vector, and pulls it towards the camera.
fn offsetPx(p: vec4f, px: vec2f) -> vec4f {
  var q = p;
  q.x += px.x / (0.5 * view.viewportPx.x) * p.w;
  q.y += px.y / (0.5 * view.viewportPx.y) * p.w;
  q.z -= pathU.depthPull * p.w;
  return q;
}

struct LineOut {
  @builtin(position) pos: vec4f,
  @location(0) u: f32,
}

@vertex
fn vsLine(@builtin(vertex_index) v: u32, @builtin(instance_index) piece: u32) -> LineOut {
  var ends = array<f32, 6>(0.0, 1.0, 0.0, 0.0, 1.0, 1.0);
  var sides = array<f32, 6>(-1.0, -1.0, 1.0, 1.0, -1.0, 1.0);
  let u0 = f32(piece) / f32(pathU.sub);
  let u1 = f32(piece + 1u) / f32(pathU.sub);
  let a = onSurface(pathPoint(u0));
  let b = onSurface(pathPoint(u1));
  let half = 0.5 * view.viewportPx;
  var dir = b.xy / b.w * half - a.xy / a.w * half;
  if (length(dir) < 1e-4) { dir = vec2f(1.0, 0.0); }
  dir = normalize(dir);
  let normal = vec2f(-dir.y, dir.x);
  let e = ends[v];
  let w = 0.5 * pathU.widthPx;
  // Each piece overlaps the next by half a width: no gaps at the joints.
  let px = normal * sides[v] * w + dir * w * (2.0 * e - 1.0);
  var out: LineOut;
  out.pos = offsetPx(select(a, b, e > 0.5), px);
  out.u = mix(u0, u1, e);
  return out;
}

@fragment
fn fsLine(in: LineOut) -> @location(0) vec4f {
  return select(AHEAD_COLOR, PATH_COLOR, in.u <= pathU.current + 1e-3);
}

struct MarkerOut {
  @builtin(position) pos: vec4f,
  @location(0) local: vec2f,
}

@vertex
fn vsMarker(@builtin(vertex_index) v: u32) -> MarkerOut {
  var corners = array<vec2f, 6>(vec2f(-1, -1), vec2f(1, -1), vec2f(-1, 1), vec2f(-1, 1), vec2f(1, -1), vec2f(1, 1));
  let c = corners[v];
  var out: MarkerOut;
  out.pos = offsetPx(onSurface(pathPoint(pathU.current)), c * pathU.markerRadiusPx);
  out.local = c;
  return out;
}

@fragment
fn fsMarker(in: MarkerOut) -> @location(0) vec4f {
  let r = length(in.local);
  if (r > 1.0) { discard; }
  if (r > 0.72) { return vec4f(0.05, 0.05, 0.08, 1.0); }
  return MARKER_COLOR;
}
`;

const PATH_U_BYTES = 32;

/** Fractional grid coordinates (i, j) of plane coordinates (a, b), interleaved. */
export function planeToGrid(field: HeightField, a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  const out = new Float32Array(a.length * 2);
  const { alpha, beta, nx, ny } = field;
  const da = alpha[nx - 1]! - alpha[0]!;
  const db = beta[ny - 1]! - beta[0]!;
  for (let t = 0; t < a.length; t++) {
    out[2 * t] = da !== 0 ? ((a[t]! - alpha[0]!) / da) * (nx - 1) : 0;
    out[2 * t + 1] = db !== 0 ? ((b[t]! - beta[0]!) / db) * (ny - 1) : 0;
  }
  return out;
}

export class PathRenderer {
  private points: { field: HeightField; buffer: GPUBuffer; group: GPUBindGroup; coords: Float32Array } | null = null;
  private readonly uniforms: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly groupLayout: GPUBindGroupLayout,
    private readonly line: GPURenderPipeline,
    private readonly marker: GPURenderPipeline,
  ) {
    this.uniforms = uniformBuffer(ctx, 'path uniforms', new Float32Array(PATH_U_BYTES / 4));
  }

  static async create(ctx: GpuContext, scene: Scene, target: TargetFormat): Promise<PathRenderer> {
    const { device } = ctx;
    const groupLayout = device.createBindGroupLayout({
      label: 'path',
      entries: [
        { binding: 0, visibility: 1 /* VERTEX */, buffer: { type: 'read-only-storage' } },
        { binding: 1, visibility: 1 | 2 /* VERTEX | FRAGMENT */, buffer: { type: 'uniform' } },
      ],
    });
    const module = device.createShaderModule({ label: 'path', code: PATH_WGSL });
    const layout = device.createPipelineLayout({ label: 'path', bindGroupLayouts: [scene.layout, groupLayout] });
    const pipeline = (label: string, vs: string, fs: string, depthCompare: GPUCompareFunction): Promise<GPURenderPipeline> =>
      device.createRenderPipelineAsync({
        label,
        layout,
        vertex: { module, entryPoint: vs },
        fragment: { module, entryPoint: fs, targets: [{ format: target.color }] },
        primitive: { topology: 'triangle-list', cullMode: 'none' },
        depthStencil: { format: target.depth, depthWriteEnabled: true, depthCompare },
        multisample: { count: target.sampleCount },
      });
    // The marker is never hidden behind a hill; the line is, where the terrain is in front of it.
    const [line, marker] = await Promise.all([
      pipeline('path line', 'vsLine', 'fsLine', 'less'),
      pipeline('path marker', 'vsMarker', 'fsMarker', 'always'),
    ]);
    return new PathRenderer(ctx, groupLayout, line, marker);
  }

  /** The checkpoints of `field`'s path in grid coordinates; a field without a path gets its plane's centre. */
  private pointsFor(field: HeightField): NonNullable<PathRenderer['points']> {
    if (this.points?.field === field) return this.points;
    this.points?.buffer.destroy();
    const path = field.path;
    const coords = path ? planeToGrid(field, path.a, path.b) : planeToGrid(field, [0], [0]);
    const buffer = storageBuffer(this.ctx, 'path points', coords);
    const group = this.ctx.device.createBindGroup({
      label: 'path',
      layout: this.groupLayout,
      entries: [{ binding: 0, resource: { buffer } }, { binding: 1, resource: { buffer: this.uniforms } }],
    });
    this.points = { field, buffer, group, coords };
    return this.points;
  }

  /**
   * Writes the uniforms for this frame: the marker at `checkpoint`; in
   * wormhole mode every point shifted so that the current checkpoint sits
   * at the plane's centre (frame t is the plane centred on checkpoint t).
   */
  update(field: HeightField, settings: Settings): void {
    const { coords } = this.pointsFor(field);
    const count = coords.length / 2;
    const current = Math.min(Math.max(settings.checkpoint, 0), count - 1);
    const shift = [0, 0];
    if (settings.wormhole && field.frames > 1 && field.path) {
      const [ci, cj] = pointAt(coords, current);
      const [oi, oj] = planeToGrid(field, [0], [0]);
      shift[0] = ci - oi!;
      shift[1] = cj - oj!;
    }
    const data = new ArrayBuffer(PATH_U_BYTES);
    const f = new Float32Array(data);
    const u = new Uint32Array(data);
    f.set([shift[0]!, shift[1]!, current, PATH_WIDTH_PX], 0);
    u[4] = count;
    u[5] = SUBDIVISIONS;
    f[6] = MARKER_RADIUS_PX;
    f[7] = 2e-3;
    writeBuffer(this.ctx, this.uniforms, f);
  }

  /** Draws the line (when `showLine`) and the marker with the bound group 0 (call update first). */
  draw(pass: GPURenderPassEncoder, group0: GPUBindGroup, field: HeightField, showLine: boolean): void {
    const { group, coords } = this.pointsFor(field);
    const count = coords.length / 2;
    pass.setBindGroup(0, group0);
    pass.setBindGroup(1, group);
    if (showLine && count >= 2) {
      pass.setPipeline(this.line);
      pass.draw(6, (count - 1) * SUBDIVISIONS);
    }
    pass.setPipeline(this.marker);
    pass.draw(6, 1);
  }
}

function pointAt(coords: Float32Array, u: number): [number, number] {
  const count = coords.length / 2;
  if (count < 2) return [coords[0]!, coords[1]!];
  const k = Math.min(Math.floor(u), count - 2);
  const f = u - k;
  return [coords[2 * k]! * (1 - f) + coords[2 * k + 2]! * f, coords[2 * k + 1]! * (1 - f) + coords[2 * k + 3]! * f];
}

/** The last position the marker can take: checkpoints of the path, or frames in wormhole mode. */
export function lastCheckpoint(field: HeightField, wormholeFrames: number | null): number {
  if (wormholeFrames !== null) return Math.max(0, wormholeFrames - 1);
  return Math.max(0, (field.path?.a.length ?? 1) - 1);
}

/**
 * Advances the marker by `dtSeconds` at `playSpeed` checkpoints per second,
 * looping at the end. Returns the new position.
 */
export function advance(checkpoint: number, dtSeconds: number, playSpeed: number, last: number): number {
  if (last <= 0) return 0;
  const next = checkpoint + dtSeconds * playSpeed;
  return next > last ? 0 : next;
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(4) : '—');

/** The overlay lines for checkpoint round(`checkpoint`) of `path`. */
export function checkpointLines(path: PathData, checkpoint: number): string[] {
  const t = Math.min(Math.max(Math.round(checkpoint), 0), path.a.length - 1);
  const gap = path.trueLoss[t]! - path.planeLoss[t]!;
  return [
    `checkpoint ${t + 1}/${path.a.length} · step ${path.step[t]}`,
    `train loss ${fmt(path.trainLoss[t]!)}`,
    `true loss ${fmt(path.trueLoss[t]!)} · on plane ${fmt(path.planeLoss[t]!)}${Number.isFinite(gap) ? ` (off-plane ${gap >= 0 ? '+' : ''}${gap.toFixed(4)})` : ''}`,
    `(a, b) = (${path.a[t]!.toFixed(3)}, ${path.b[t]!.toFixed(3)})`,
  ];
}
