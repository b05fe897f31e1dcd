/**
 * Draws one frame: the 3D view of the terrain and its path, then the
 * top-down minimap in a corner. It reads the settings and the camera and
 * owns nothing but the GPU objects it draws with.
 */
import type { GpuContext } from '../gpu/context.ts';
import { eyeOf, type Orbit, viewProjection } from './camera.ts';
import { PathRenderer } from './path.ts';
import { Scene, type ViewParams } from './scene.ts';
import type { EvalProgress, HeightField } from './source.ts';
import type { Settings } from './state.ts';
import { type TargetFormat, TerrainRenderer } from './terrain.ts';

const SAMPLE_COUNT = 4;
const DEPTH_FORMAT: GPUTextureFormat = 'depth24plus';
const CLEAR = { r: 0.07, g: 0.08, b: 0.1, a: 1 };
const LIGHT_DIR = [-0.6, 0.55, 0.35];
/** The minimap: a square in the bottom-left corner, in CSS pixels. */
const MINIMAP_MAX_PX = 170;
const MINIMAP_MARGIN_PX = 12;

export interface Rect { x: number; y: number; width: number; height: number }

/** The minimap's square in CSS pixels of a canvas `width` x `height`. */
export function minimapRect(width: number, height: number): Rect {
  const side = Math.round(Math.min(MINIMAP_MAX_PX, 0.3 * Math.min(width, height)));
  return { x: MINIMAP_MARGIN_PX, y: height - MINIMAP_MARGIN_PX - side, width: side, height: side };
}

/** The two frames to blend and their weight, for a marker at `checkpoint` (wormhole playback). */
export function framesAt(checkpoint: number, framesReady: number): { frameA: number; frameB: number; frameMix: number } {
  const last = Math.max(0, framesReady - 1);
  const c = Math.min(Math.max(checkpoint, 0), last);
  const frameA = Math.floor(c);
  const frameB = Math.min(frameA + 1, last);
  return { frameA, frameB, frameMix: frameB > frameA ? c - frameA : 0 };
}

export class View {
  readonly scene: Scene;
  private targets: { width: number; height: number; color: GPUTexture; depth: GPUTexture } | null = null;

  private constructor(
    private readonly ctx: GpuContext,
    readonly canvas: HTMLCanvasElement,
    private readonly context: GPUCanvasContext,
    private readonly format: TargetFormat,
    scene: Scene,
    private readonly terrain: TerrainRenderer,
    private readonly path: PathRenderer,
  ) {
    this.scene = scene;
  }

  static async create(ctx: GpuContext, canvas: HTMLCanvasElement): Promise<View> {
    const context = canvas.getContext('webgpu');
    if (!context) throw new Error('the canvas gave no WebGPU context');
    const color = navigator.gpu.getPreferredCanvasFormat();
    // COPY_SRC: screenshots and recordings read the canvas.
    context.configure({ device: ctx.device, format: color, alphaMode: 'opaque', usage: 0x10 | 0x01 /* RENDER_ATTACHMENT | COPY_SRC */ });
    const format: TargetFormat = { color, depth: DEPTH_FORMAT, sampleCount: SAMPLE_COUNT };
    const scene = await Scene.create(ctx);
    const [terrain, path] = await Promise.all([TerrainRenderer.create(ctx, scene, format), PathRenderer.create(ctx, scene, format)]);
    return new View(ctx, canvas, context, format, scene, terrain, path);
  }

  /** Shows `field` (valid as far as `progress` says); the previous field's buffer is destroyed. */
  show(field: HeightField, progress: EvalProgress): void {
    const previous = this.scene.current;
    this.scene.setField(field, progress);
    if (previous && previous !== field) previous.heights.destroy();
  }

  /** Draws one frame into the canvas's current texture; `coveredRightPx` (CSS px) is hidden behind the panel. */
  render(settings: Settings, orbit: Orbit, coveredRightPx = 0): void {
    const { device } = this.ctx;
    const width = this.canvas.width;
    const height = this.canvas.height;
    const targets = this.ensureTargets(width, height);
    const encoder = device.createCommandEncoder({ label: 'frame' });
    const pass = encoder.beginRenderPass({
      label: 'frame',
      colorAttachments: [{
        view: targets.color.createView(),
        resolveTarget: this.context.getCurrentTexture().createView(),
        clearValue: CLEAR,
        loadOp: 'clear',
        storeOp: 'discard',
      }],
      depthStencilAttachment: { view: targets.depth.createView(), depthClearValue: 1, depthLoadOp: 'clear', depthStoreOp: 'discard' },
    });
    const field = this.scene.current;
    const progress = this.scene.ready;
    const viewGroup = this.scene.bindGroup('view');
    const mapGroup = this.scene.bindGroup('map');
    if (field && progress && viewGroup && mapGroup) {
      const wormhole = settings.wormhole && field.frames > 1;
      const frames = wormhole ? framesAt(settings.checkpoint, progress.framesReady) : { frameA: 0, frameB: 0, frameMix: 0 };
      const common: Omit<ViewParams, 'viewProj' | 'viewportPx' | 'mode'> = {
        eye: eyeOf(orbit),
        lightDir: LIGHT_DIR,
        exaggeration: settings.exaggeration,
        clampMax: settings.clampMax,
        contours: settings.contours,
        logScale: settings.scale === 'log',
        ...frames,
      };
      this.scene.writeView('view', { ...common, viewProj: viewProjection(orbit, width / height, -coveredRightPx / Math.max(1, this.canvas.clientWidth)) as Float32Array, viewportPx: [width, height], mode: 'view' });
      this.path.update(field, settings);
      // The 3D view keeps depths in [0.001, 1]; the minimap, drawn after it in
      // [0, 0.0005], wins every depth test inside its square.
      pass.setViewport(0, 0, width, height, 0.001, 1);
      this.terrain.draw(pass, viewGroup, field.nx, field.ny, settings.wireframe);
      this.path.draw(pass, viewGroup, field, settings.showPath);
      if (settings.minimap) {
        const dpr = width / Math.max(1, this.canvas.clientWidth);
        const r = minimapRect(this.canvas.clientWidth, this.canvas.clientHeight);
        const [x, y, side] = [Math.round(r.x * dpr), Math.round(r.y * dpr), Math.round(r.width * dpr)];
        if (side > 0 && x + side <= width && y + side <= height) {
          this.scene.writeView('map', { ...common, viewProj: new Float32Array(16), viewportPx: [side, side], mode: 'map' });
          pass.setViewport(x, y, side, side, 0, 0.0005);
          pass.setScissorRect(x, y, side, side);
          this.terrain.draw(pass, mapGroup, field.nx, field.ny, false);
          this.path.draw(pass, mapGroup, field, settings.showPath);
        }
      }
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
  }

  private ensureTargets(width: number, height: number): NonNullable<View['targets']> {
    if (this.targets && this.targets.width === width && this.targets.height === height) return this.targets;
    this.targets?.color.destroy();
    this.targets?.depth.destroy();
    const { device } = this.ctx;
    const RENDER_ATTACHMENT = 0x10;
    const size = [width, height];
    this.targets = {
      width,
      height,
      color: device.createTexture({ label: 'msaa colour', size, format: this.format.color, sampleCount: SAMPLE_COUNT, usage: RENDER_ATTACHMENT }),
      depth: device.createTexture({ label: 'depth', size, format: DEPTH_FORMAT, sampleCount: SAMPLE_COUNT, usage: RENDER_ATTACHMENT }),
    };
    return this.targets;
  }
}
