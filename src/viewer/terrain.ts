/**
 * The terrain: one vertex per grid point, drawn from an index buffer alone.
 * The vertex shader takes (i, j) from the vertex index and the height from
 * the HeightField's storage buffer, and the normal from the neighbouring
 * heights; the fragment shader colours by the colour map, lights (Lambert +
 * a little Blinn-Phong), draws anti-aliased contour lines and marks
 * non-finite heights in magenta. The same pipeline draws the minimap
 * (View.mode = 1: flat, unlit). A line-list pipeline draws the wireframe.
 */
import { NONFINITE_RGB } from '../export/colormaps.ts';
import type { GpuContext } from '../gpu/context.ts';
import { FIELD_WGSL, type Scene } from './scene.ts';


const TERRAIN_WGSL = FIELD_WGSL + /* wgsl */ `
// Non-finite heights: the exports' magenta, which no colour map produces.
const NON_FINITE = vec3f(${NONFINITE_RGB.map((c) => (c / 255).toFixed(4)).join(', ')});

// Pulls the wireframe towards the camera so that it wins the depth test
// against the surface it lies on (depthBias does not apply to lines).
override DEPTH_PULL: f32 = 0.0;

struct VOut {
  @builtin(position) pos: vec4f,
  @location(0) t: f32,
  @location(1) bad: f32,
  @location(2) normal: vec3f,
  @location(3) world: vec3f,
}

fn vertexAt(i: u32, j: u32) -> vec3f { return worldAt(f32(i), f32(j), unitAt(i, j).x); }

@vertex
fn vs(@builtin(vertex_index) vid: u32) -> VOut {
  let i = vid % view.nx;
  let j = vid / view.nx;
  let h = unitAt(i, j);
  let p = worldAt(f32(i), f32(j), h.x);
  // Central differences (one-sided at the edges) of the drawn surface.
  let left = vertexAt(select(i - 1u, i, i == 0u), j);
  let right = vertexAt(min(i + 1u, view.nx - 1u), j);
  let back = vertexAt(i, select(j - 1u, j, j == 0u));
  let front = vertexAt(i, min(j + 1u, view.ny - 1u));
  var out: VOut;
  out.pos = project(p);
  out.pos.z -= DEPTH_PULL * out.pos.w;
  out.t = h.x;
  out.bad = h.y;
  out.normal = normalize(cross(right - left, front - back));
  out.world = p;
  return out;
}

@fragment
fn fsFill(in: VOut) -> @location(0) vec4f {
  // Derivatives first, in uniform control flow: contour lines one pixel wide.
  let level = in.t * view.contours;
  let levelPerPixel = fwidth(level);
  var c = textureSampleLevel(colormap, cmapSampler, vec2f(in.t, 0.5), 0.0).rgb;
  if (view.mode == 0u) {
    let n = normalize(in.normal);
    let l = normalize(view.lightDir);
    let v = normalize(view.eye - in.world);
    let lambert = abs(dot(n, l));
    let specular = pow(max(dot(n, normalize(l + v)), 0.0), 48.0) * 0.25;
    c = c * (0.25 + 0.75 * lambert) + vec3f(specular);
  }
  // Contours only where the height varies inside the range: a flat clamped
  // top (t = 1 up to rounding) is not a level line.
  if (view.contours > 0.0 && in.t > 1e-4 && in.t < 1.0 - 1e-4 && levelPerPixel > 1e-5) {
    let distPx = abs(fract(level + 0.5) - 0.5) / max(levelPerPixel, 1e-6);
    let line = 1.0 - smoothstep(0.5, 1.5, distPx);
    c = mix(c, c * 0.3, line * 0.85);
  }
  if (in.bad > 0.5) { c = NON_FINITE; }
  return vec4f(c, 1.0);
}

@fragment
fn fsWire(in: VOut) -> @location(0) vec4f {
  return vec4f(0.02, 0.02, 0.03, 0.45);
}
`;

export interface TargetFormat {
  color: GPUTextureFormat;
  depth: GPUTextureFormat;
  sampleCount: number;
}

export class TerrainRenderer {
  private indices: { nx: number; ny: number; triangles: GPUBuffer; lines: GPUBuffer } | null = null;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly fill: GPURenderPipeline,
    private readonly wire: GPURenderPipeline,
  ) {}

  static async create(ctx: GpuContext, scene: Scene, target: TargetFormat): Promise<TerrainRenderer> {
    const { device } = ctx;
    const module = device.createShaderModule({ label: 'terrain', code: TERRAIN_WGSL });
    const layout = device.createPipelineLayout({ label: 'terrain', bindGroupLayouts: [scene.layout] });
    const multisample = { count: target.sampleCount };
    const [fill, wire] = await Promise.all([
      device.createRenderPipelineAsync({
        label: 'terrain fill',
        layout,
        vertex: { module, entryPoint: 'vs' },
        fragment: { module, entryPoint: 'fsFill', targets: [{ format: target.color }] },
        primitive: { topology: 'triangle-list', cullMode: 'none' },
        depthStencil: { format: target.depth, depthWriteEnabled: true, depthCompare: 'less' },
        multisample,
      }),
      device.createRenderPipelineAsync({
        label: 'terrain wireframe',
        layout,
        vertex: { module, entryPoint: 'vs', constants: { DEPTH_PULL: 4e-4 } },
        fragment: {
          module,
          entryPoint: 'fsWire',
          targets: [{
            format: target.color,
            blend: {
              color: { srcFactor: 'src-alpha', dstFactor: 'one-minus-src-alpha' },
              alpha: { srcFactor: 'one', dstFactor: 'one-minus-src-alpha' },
            },
          }],
        },
        primitive: { topology: 'line-list' },
        depthStencil: { format: target.depth, depthWriteEnabled: false, depthCompare: 'less-equal' },
        multisample,
      }),
    ]);
    return new TerrainRenderer(ctx, fill, wire);
  }

  /** Draws the surface (and the wireframe over it) of an nx x ny field with the bound group 0. */
  draw(pass: GPURenderPassEncoder, group: GPUBindGroup, nx: number, ny: number, wireframe: boolean): void {
    const idx = this.indexBuffers(nx, ny);
    pass.setBindGroup(0, group);
    pass.setPipeline(this.fill);
    pass.setIndexBuffer(idx.triangles, 'uint32');
    pass.drawIndexed((nx - 1) * (ny - 1) * 6);
    if (wireframe) {
      pass.setPipeline(this.wire);
      pass.setIndexBuffer(idx.lines, 'uint32');
      pass.drawIndexed(((nx - 1) * ny + nx * (ny - 1)) * 2);
    }
  }

  private indexBuffers(nx: number, ny: number): { triangles: GPUBuffer; lines: GPUBuffer } {
    if (this.indices && this.indices.nx === nx && this.indices.ny === ny) return this.indices;
    this.indices?.triangles.destroy();
    this.indices?.lines.destroy();
    const { triangles, lines } = gridIndices(nx, ny);
    const make = (label: string, data: Uint32Array): GPUBuffer => {
      const buffer = this.ctx.device.createBuffer({ label, size: data.byteLength, usage: 0x10 /* INDEX */, mappedAtCreation: true });
      new Uint32Array(buffer.getMappedRange()).set(data);
      buffer.unmap();
      return buffer;
    };
    this.indices = { nx, ny, triangles: make(`terrain ${nx}x${ny} triangles`, triangles), lines: make(`terrain ${nx}x${ny} lines`, lines) };
    return this.indices;
  }
}

/**
 * Index lists of an nx x ny vertex grid (vertex j * nx + i): two triangles
 * per cell split along the (i+1, j)-(i, j+1) diagonal (surfaceAt in the
 * shader relies on it), and the cell edges as a line list.
 */
export function gridIndices(nx: number, ny: number): { triangles: Uint32Array; lines: Uint32Array } {
  const triangles = new Uint32Array((nx - 1) * (ny - 1) * 6);
  const lines = new Uint32Array(((nx - 1) * ny + nx * (ny - 1)) * 2);
  let t = 0;
  let l = 0;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const v = j * nx + i;
      if (i + 1 < nx) { lines[l++] = v; lines[l++] = v + 1; }
      if (j + 1 < ny) { lines[l++] = v; lines[l++] = v + nx; }
      if (i + 1 < nx && j + 1 < ny) {
        triangles.set([v, v + 1, v + nx, v + 1, v + nx + 1, v + nx], t);
        t += 6;
      }
    }
  }
  return { triangles, lines };
}
