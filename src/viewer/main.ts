/**
 * The viewer's entry point and controller: it gets the GPU, builds the view
 * and the panel, and reacts to each settings change (re-evaluate, recolour,
 * redraw). The render loop draws when something changed and moves the
 * player; the page's state is reported in document.body.dataset.state.
 */
import { createContext, describeAdapter, type GpuContext } from '../gpu/context.ts';
import type { GPTConfig } from '../model/config.ts';
import { attachOrbitControls, defaultOrbit } from './camera.ts';
import { colormapTable } from '../export/colormaps.ts';
import { isAbort, type LandscapeEngine, type TrainedRun } from './engine.ts';
import { canvasPng, colormapBytes, download, heightmapBytes, readFrame, recordWebm } from './exports.ts';
import { attachDrop, openFiles, pickFiles, readFiles } from './files.ts';
import { Panel } from './gui.ts';
import { advance, checkpointLines, lastCheckpoint } from './path.ts';
import { type EvalProgress, type HeightField, heightFieldFromGrid } from './source.ts';
import { EngineRun, realEngine } from './real-engine.ts';
import { defaultSettings, EVAL_KEYS, type SettingKey, type Settings, settingsFromQuery } from './state.ts';
import { minimapRect, View } from './view.ts';

export type PageState = 'loading' | 'training' | 'evaluating' | 'ready' | 'error';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
};

function setState(state: PageState, message?: string): void {
  document.body.dataset.state = state;
  if (state === 'error') document.body.dataset.error = message ?? 'unknown error';
  else delete document.body.dataset.error;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Re-evaluation waits this long after the last change, so a dragged slider evaluates once. */
const EVALUATE_DEBOUNCE_MS = 150;

class App {
  readonly orbit = defaultOrbit();
  readonly panel: Panel;
  run: TrainedRun | null = null;
  private job: { kind: 'train' | 'evaluate' | 'open'; controller: AbortController } | null = null;
  private evaluateTimer: ReturnType<typeof setTimeout> | null = null;
  /** A field from a dropped file is not the engine's: toggling the wormhole only changes how it is shown. */
  private fieldFromFile = false;
  private dirty = true;
  private lastFrameMs = 0;
  /** While recording, the view fills the whole canvas (the panel is not in the video). */
  private recording = false;
  private renderWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private lapWaiters: Array<() => void> = [];

  constructor(readonly ctx: GpuContext, readonly view: View, readonly engine: LandscapeEngine, readonly settings: Settings) {
    this.panel = new Panel(this.settings, {
      train: () => (this.job?.kind === 'train' ? this.cancel() : void this.train()),
      evaluate: () => (this.job?.kind === 'evaluate' ? this.cancel() : void this.evaluate()),
      openFiles: () => pickFiles(false, (files) => void this.openFiles(files)),
      openFolder: () => pickFiles(true, (files) => void this.openFiles(files)),
      exportHeightmap: () => void this.exportPng('heightmap'),
      exportColormap: () => void this.exportPng('colormap'),
      screenshot: () => void this.screenshot(),
      record: () => void this.record(),
    }, (key) => this.changed(key), () => { this.dirty = true; });
    view.scene.setColormap(this.settings.colormap);
    this.drawLegendBar();
    attachOrbitControls(view.canvas, this.orbit, () => { this.dirty = true; });
    attachDrop(document.body, (files) => void this.openFiles(files), (e) => this.fail(errorText(e)));
    new ResizeObserver(() => this.resize()).observe(view.canvas);
    this.resize();
    void ctx.device.lost.then((info) => this.fail(`the GPU device was lost (${info.reason}): ${info.message}`));
    requestAnimationFrame((t) => this.frame(t));
  }

  get field(): HeightField | null {
    return this.view.scene.current;
  }

  /** Reacts to one changed setting, whoever changed it (the panel or the test hook). */
  changed(key: SettingKey): void {
    const s = this.settings;
    if (key === 'colormap') {
      this.view.scene.setColormap(s.colormap);
      this.drawLegendBar();
    }
    if (key === 'scale' || key === 'clampMax') void this.updateLegend();
    if (key === 'playing') this.panel.refresh(s);
    if (key === 'wormhole' && this.field) this.panel.setCheckpointRange(this.lastCheckpoint(this.field));
    if (EVAL_KEYS.includes(key) && !(key === 'wormhole' && this.fieldFromFile) && this.run && this.job?.kind !== 'train') {
      this.scheduleEvaluate();
    }
    this.updateInfo();
    this.dirty = true;
  }

  /** Sets several settings as the panel would, then waits for the work they start and a drawn frame. */
  async set(partial: Partial<Settings>): Promise<void> {
    Object.assign(this.settings, partial);
    this.panel.refresh(this.settings);
    for (const key of Object.keys(partial) as SettingKey[]) this.changed(key);
    await this.idle();
    await this.rendered();
  }

  /** Resolves when no training, evaluation or file load is running or scheduled. */
  idle(): Promise<void> {
    if (!this.job && !this.evaluateTimer) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves once a frame drawn after this call has reached the screen. */
  rendered(): Promise<void> {
    this.dirty = true;
    return new Promise((resolve) => this.renderWaiters.push(resolve));
  }

  train(): Promise<void> {
    return this.startJob('train', async (signal) => {
      setState('training');
      this.status('training…');
      const run = await this.engine.train(this.settings, (p) => {
        this.panel.setBusy({ kind: 'train', fraction: p.step / p.steps });
        this.status(`training: step ${p.step}/${p.steps} · loss ${p.trainLoss.toFixed(4)}`);
      }, signal);
      if (signal.aborted) return;
      this.useRun(run, false);
      void this.evaluate();
    });
  }

  /** Makes `run` the one evaluated; "file" directions stay only with the run that has them. */
  private useRun(run: TrainedRun, openedDirections: boolean): void {
    this.run = run;
    if (openedDirections) this.settings.directions = 'file';
    else if (this.settings.directions === 'file' && !run.hasDirections) this.settings.directions = defaultSettings().directions;
    this.panel.refresh(this.settings);
  }

  evaluate(): Promise<void> {
    const run = this.run;
    if (!run) return this.train();
    return this.startJob('evaluate', async (signal) => {
      setState('evaluating');
      const snapshot = { ...this.settings };
      this.status(`evaluating: ${snapshot.directions} directions…`);
      let first = true;
      await this.engine.evaluate(run, snapshot, (field, progress) => {
        if (signal.aborted) return;
        this.fieldFromFile = false;
        this.showField(field, progress, first);
        first = false;
        const fraction = progress.pointsDone / progress.pointsTotal;
        this.panel.setBusy({ kind: 'evaluate', fraction });
        this.status(`evaluating: ${progress.pointsDone}/${progress.pointsTotal} points${progress.stride > 1 ? ` (every ${progress.stride}th, refining)` : ''}`);
      }, signal);
      if (signal.aborted) return;
      setState('ready');
      this.status(this.field?.label ?? '');
    });
  }

  /** Opens dropped or picked files: a grid is shown as it is; a model, a run or directions are evaluated. */
  async openFiles(files: File[]): Promise<void> {
    await this.startJob('open', async (signal) => {
      setState('loading');
      this.status(`opening ${files.length > 3 ? `${files.length} files` : files.map((f) => f.name).join(', ')}…`);
      const opened = openFiles(await readFiles(files));
      if (signal.aborted) return;
      this.settings.playing = false;
      if (opened.kind === 'grid') {
        const { grid, name } = opened;
        const field = heightFieldFromGrid(this.ctx, grid, name);
        const points = grid.frames * grid.nx * grid.ny;
        this.fieldFromFile = true;
        this.settings.wormhole = grid.animated && grid.frames > 1;
        this.panel.refresh(this.settings);
        this.showField(field, { stride: 1, framesReady: grid.frames, pointsDone: points, pointsTotal: points }, true);
        setState('ready');
        this.status(`${name}: ${grid.nx}x${grid.ny}${grid.frames > 1 ? ` x ${grid.frames} frames` : ''}${grid.metadata.metric ? ` · ${grid.metadata.metric}` : ''}`);
        return;
      }
      const run = await this.engine.open(opened, this.run);
      if (signal.aborted) return;
      this.useRun(run, opened.directions !== null);
      void this.evaluate();
    });
  }

  private cancel(): void {
    this.job?.controller.abort();
    this.job = null;
    this.panel.setBusy(null);
    setState('ready');
    this.status('cancelled');
    this.notifyIdle();
  }

  private startJob(kind: 'train' | 'evaluate' | 'open', work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    this.job?.controller.abort();
    if (this.evaluateTimer) clearTimeout(this.evaluateTimer);
    this.evaluateTimer = null;
    const controller = new AbortController();
    this.job = { kind, controller };
    this.panel.setBusy(kind === 'open' ? null : { kind, fraction: 0 });
    return (async () => {
      try {
        await work(controller.signal);
      } catch (e) {
        if (!isAbort(e) && !controller.signal.aborted) this.fail(errorText(e));
      } finally {
        if (this.job?.controller === controller) {
          this.job = null;
          this.panel.setBusy(null);
        }
        this.notifyIdle();
      }
    })();
  }

  private scheduleEvaluate(): void {
    if (this.job?.kind === 'evaluate') this.job.controller.abort();
    setState('evaluating');
    if (this.evaluateTimer) clearTimeout(this.evaluateTimer);
    this.evaluateTimer = setTimeout(() => {
      this.evaluateTimer = null;
      void this.evaluate();
    }, EVALUATE_DEBOUNCE_MS);
  }

  private notifyIdle(): void {
    if (this.job || this.evaluateTimer) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private lastCheckpoint(field: HeightField): number {
    const frames = this.settings.wormhole && field.frames > 1 ? field.frames : null;
    return lastCheckpoint(field, frames);
  }

  private showField(field: HeightField, progress: EvalProgress, isNew: boolean): void {
    this.view.show(field, progress);
    const wormhole = this.settings.wormhole && field.frames > 1;
    if (isNew) this.panel.setCheckpointRange(this.lastCheckpoint(field));
    // Still grids: the marker waits at the end of training. The wormhole: it follows the newest frame.
    if (!this.settings.playing && (isNew || wormhole)) {
      this.settings.checkpoint = wormhole ? progress.framesReady - 1 : this.lastCheckpoint(field);
    }
    void this.updateLegend();
    this.updateInfo();
    this.dirty = true;
  }

  private frame(timeMs: number): void {
    const dt = this.lastFrameMs ? (timeMs - this.lastFrameMs) / 1000 : 0;
    this.lastFrameMs = timeMs;
    const field = this.field;
    if (this.settings.playing && field) {
      const last = Math.min(this.lastCheckpoint(field), this.settings.wormhole && field.frames > 1 ? (this.view.scene.ready?.framesReady ?? 1) - 1 : Infinity);
      const next = advance(this.settings.checkpoint, dt, this.settings.playSpeed, last);
      if (next < this.settings.checkpoint) for (const resolve of this.lapWaiters.splice(0)) resolve();
      this.settings.checkpoint = next;
      this.updateInfo();
      this.dirty = true;
    }
    if (this.dirty) {
      this.dirty = false;
      this.view.render(this.settings, this.orbit, this.recording ? 0 : this.panel.coveredWidthPx());
      const waiters = this.renderWaiters.splice(0);
      if (waiters.length > 0) {
        void this.ctx.device.queue.onSubmittedWorkDone().then(() => {
          // One more frame so that the compositor has shown what was drawn.
          requestAnimationFrame(() => { for (const resolve of waiters) resolve(); });
        });
      }
    }
    requestAnimationFrame((t) => this.frame(t));
  }

  private resize(): void {
    const canvas = this.view.canvas;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr));
    const r = minimapRect(canvas.clientWidth, canvas.clientHeight);
    Object.assign($('minimap-frame').style, { left: `${r.x}px`, top: `${r.y}px`, width: `${r.width}px`, height: `${r.height}px` });
    this.dirty = true;
  }

  fail(message: string): void {
    setState('error', message);
    this.status(message, true);
  }

  status(text: string, isError = false): void {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', isError);
  }

  private updateInfo(): void {
    const field = this.field;
    const el = $('info');
    $('minimap-frame').hidden = !this.settings.minimap || !field;
    if (!field) {
      el.textContent = '';
      return;
    }
    const lines = field.path ? checkpointLines(field.path, this.settings.checkpoint) : [];
    if (this.settings.wormhole && field.frames > 1) {
      lines.unshift(`wormhole frame ${Math.round(this.settings.checkpoint) + 1}/${field.frames}: the plane centred on this checkpoint`);
    }
    el.textContent = lines.join('\n');
  }

  private drawLegendBar(): void {
    const canvas = $<HTMLCanvasElement>('legend-bar');
    const g = canvas.getContext('2d');
    if (!g) return;
    const table = colormapTable(this.settings.colormap, canvas.width);
    const image = g.createImageData(canvas.width, canvas.height);
    for (let y = 0; y < canvas.height; y++) image.data.set(table, y * canvas.width * 4);
    g.putImageData(image, 0, 0);
  }

  private async updateLegend(): Promise<void> {
    if (!this.field) return;
    const stats = await this.view.scene.readStats();
    const s = this.settings;
    const top = s.clampMax > 0 ? Math.max(Math.min(stats.hi, s.clampMax), stats.lo) : stats.hi;
    $('legend-lo').textContent = stats.lo.toPrecision(4);
    $('legend-hi').textContent = `${top.toPrecision(4)}${s.scale === 'log' ? ' (log)' : ''}`;
    $('legend-bad').textContent = stats.nonFinite > 0 ? `${stats.nonFinite} non-finite (magenta)` : '';
    $('legend').hidden = false;
  }

  currentFrame(): number {
    const field = this.field;
    return field && this.settings.wormhole && field.frames > 1 ? Math.round(this.settings.checkpoint) : 0;
  }

  /** The PNG bytes of the current frame, as `losscape export` writes them. */
  async pngBytes(kind: 'heightmap' | 'colormap'): Promise<Uint8Array> {
    const field = this.field;
    if (!field) throw new Error('nothing to export yet: no landscape is shown');
    const encode = kind === 'heightmap' ? heightmapBytes : colormapBytes;
    return encode(this.ctx, field, this.currentFrame(), this.settings);
  }

  private async exportPng(kind: 'heightmap' | 'colormap'): Promise<void> {
    try {
      download(await this.pngBytes(kind), `losscape-${kind}.png`);
    } catch (e) {
      this.fail(errorText(e));
    }
  }

  private async screenshot(): Promise<void> {
    try {
      // The file has the canvas alone, so the view is centred in all of it.
      download(await canvasPng(this.view.canvas, () => this.view.render(this.settings, this.orbit, 0)), 'losscape-view.png');
      this.dirty = true;
    } catch (e) {
      this.fail(errorText(e));
    }
  }

  /** Records one lap of the player (the path, or the wormhole's frames) from the start. */
  private async record(): Promise<void> {
    this.recording = true;
    try {
      const video = await recordWebm(this.view.canvas, () => {
        this.settings.checkpoint = 0;
        this.settings.playing = true;
        this.changed('playing');
        return new Promise<void>((resolve) => this.lapWaiters.push(resolve)).then(() => {
          this.settings.playing = false;
          this.changed('playing');
        });
      });
      download(video, 'losscape.webm');
    } catch (e) {
      this.fail(errorText(e));
    } finally {
      this.recording = false;
      this.dirty = true;
    }
  }
}

function noWebGpu(reason: string): void {
  const message = `${reason}. The losscape viewer draws with WebGPU. Open it in a browser that has WebGPU `
    + '(Chrome or Edge 113+, Safari 26+, or Firefox 141+ on Windows; on Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu) '
    + 'from http://localhost or https, with hardware acceleration on. On Linux without a GPU, Chromium can use its '
    + 'software GPU: start it with --enable-unsafe-webgpu '
    + '--enable-features=Vulkan --use-vulkan=swiftshader --use-angle=swiftshader --enable-unsafe-swiftshader. '
    + 'Without a browser, the command line computes the same landscapes: npx losscape grid … then npx losscape export ….';
  const el = $('fallback');
  el.textContent = message;
  el.hidden = false;
  setState('error', message);
}

/** What the end-to-end tests (and the curious) can reach from the console. */
export interface TestHook {
  settings: Settings;
  set(partial: Partial<Settings>): Promise<void>;
  idle(): Promise<void>;
  rendered(): Promise<void>;
  field(): { nx: number; ny: number; frames: number; label: string; checkpoints: number } | null;
  /** The minimap's square in CSS pixels of the page. */
  minimapRect(): { x: number; y: number; width: number; height: number };
  /** The 16-bit heightmap PNG of the shown frame, base64. */
  exportHeightmap(): Promise<string>;
  /** The shown frame's heights, read back from the GPU buffer ([ny][nx]; NaN and Inf as null, as JSON has them). */
  heights(): Promise<Array<number | null>>;
  /** What the landscape was evaluated from: the model, its final weights and the evaluation batch. */
  run(): RunSummary | null;
  openFiles(files: File[]): Promise<void>;
}

export interface RunSummary {
  config: GPTConfig;
  checkpoints: number;
  final: number[];
  batch: { B: number; T: number; idx: number[]; targets: number[]; mask: number[] | null };
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function main(): Promise<void> {
  setState('loading');
  const settings = { ...defaultSettings(), ...settingsFromQuery(location.search) };
  if (!('gpu' in navigator) || !navigator.gpu) {
    noWebGpu('This browser has no WebGPU (navigator.gpu is missing)');
    return;
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) {
    noWebGpu('WebGPU is present but found no adapter (no usable GPU, or it is blocked)');
    return;
  }
  const ctx = await createContext(adapter);
  const view = await View.create(ctx, $<HTMLCanvasElement>('view'));
  const app = new App(ctx, view, realEngine(ctx), settings);
  $('adapter').textContent = describeAdapter(ctx.adapter);
  const hook: TestHook = {
    settings: app.settings,
    set: (partial) => app.set(partial),
    idle: () => app.idle(),
    rendered: () => app.rendered(),
    field: () => {
      const f = app.field;
      return f ? { nx: f.nx, ny: f.ny, frames: f.frames, label: f.label ?? '', checkpoints: f.path?.a.length ?? 0 } : null;
    },
    minimapRect: () => {
      const box = view.canvas.getBoundingClientRect();
      const r = minimapRect(view.canvas.clientWidth, view.canvas.clientHeight);
      return { x: box.left + r.x, y: box.top + r.y, width: r.width, height: r.height };
    },
    exportHeightmap: async () => base64(await app.pngBytes('heightmap')),
    heights: async () => {
      const f = app.field;
      if (!f) throw new Error('no landscape is shown');
      return Array.from(await readFrame(ctx, f, app.currentFrame()), (v) => (Number.isFinite(v) ? v : null));
    },
    run: () => {
      const r = app.run;
      if (!(r instanceof EngineRun)) return null;
      const b = r.evalBatch;
      return {
        config: r.layout.config, checkpoints: r.checkpoints.length, final: Array.from(r.final.params),
        batch: { B: b.B, T: b.T, idx: Array.from(b.idx), targets: Array.from(b.targets), mask: b.mask && Array.from(b.mask) },
      };
    },
    openFiles: (files) => app.openFiles(files),
  };
  (window as unknown as { losscape: TestHook }).losscape = hook;
  await app.train();
}

main().catch((e: unknown) => {
  const message = errorText(e);
  setState('error', message);
  const el = document.getElementById('status');
  if (el) el.textContent = message;
});
