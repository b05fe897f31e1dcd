/**
 * The lil-gui panel. It edits the one settings object and calls the
 * actions it is given; what a change means is decided by whoever listens to
 * `changed` (main.ts), not here.
 */
import GUI, { type Controller } from 'lil-gui';
import {
  COLORMAP_NAMES, DATASETS, DIRECTION_KINDS, METRICS, NUMBER_RANGES, PRESETS, SCALES, type SettingKey, type Settings,
} from './state.ts';

export interface PanelActions {
  /** Train (or, while training, cancel). */
  train(): void;
  /** Evaluate (or, while evaluating, cancel). */
  evaluate(): void;
  openFiles(): void;
  openFolder(): void;
  exportHeightmap(): void;
  exportColormap(): void;
  screenshot(): void;
  record(): void;
}

export type Busy = { kind: 'train' | 'evaluate'; fraction: number } | null;

export class Panel {
  readonly gui: GUI;
  private readonly trainButton: Controller;
  private readonly evaluateButton: Controller;
  private readonly checkpoint: Controller;
  private readonly play: Controller;

  /** `changed` runs after the panel edits a setting, `layoutChanged` after it opens or closes. */
  constructor(settings: Settings, actions: PanelActions, changed: (key: SettingKey) => void, layoutChanged: () => void) {
    const gui = new GUI({ title: 'losscape' });
    this.gui = gui;
    gui.onOpenClose(() => layoutChanged());
    const on = (c: Controller, key: SettingKey): Controller => c.onChange(() => changed(key));
    const slider = (folder: GUI, key: keyof typeof NUMBER_RANGES): Controller => {
      const r = NUMBER_RANGES[key];
      return on(folder.add(settings, key, r.min, r.max, r.step), key);
    };
    const buttons = { ...actions, playPause: (): void => { settings.playing = !settings.playing; this.play.updateDisplay(); changed('playing'); } };

    const model = gui.addFolder('Model');
    on(model.add(settings, 'dataset', [...DATASETS]), 'dataset');
    on(model.add(settings, 'preset', [...PRESETS]), 'preset');
    slider(model, 'trainSteps').name('train steps');
    this.trainButton = model.add(buttons, 'train');

    const land = gui.addFolder('Landscape');
    on(land.add(settings, 'directions', [...DIRECTION_KINDS]).name('direction kind'), 'directions');
    slider(land, 'seed');
    slider(land, 'range').name('range ±');
    slider(land, 'resolution');
    on(land.add(settings, 'metric', [...METRICS]), 'metric');
    on(land.add(settings, 'wormhole'), 'wormhole');
    this.evaluateButton = land.add(buttons, 'evaluate');

    const look = gui.addFolder('View');
    on(look.add(settings, 'colormap', [...COLORMAP_NAMES]).name('colour map'), 'colormap');
    on(look.add(settings, 'scale', [...SCALES]), 'scale');
    slider(look, 'exaggeration');
    slider(look, 'clampMax').name('clamp above (0 = off)');
    slider(look, 'contours');
    on(look.add(settings, 'wireframe'), 'wireframe');
    on(look.add(settings, 'minimap'), 'minimap');

    const path = gui.addFolder('Path');
    on(path.add(settings, 'showPath').name('show path'), 'showPath');
    this.play = path.add(buttons, 'playPause').name(settings.playing ? 'pause' : 'play');
    slider(path, 'playSpeed').name('play speed (ckpt/s)');
    this.checkpoint = on(path.add(settings, 'checkpoint', 0, 1, 0.01), 'checkpoint').listen();

    const files = gui.addFolder('Files');
    files.add(buttons, 'openFiles').name('open files…');
    files.add(buttons, 'openFolder').name('open folder…');
    files.add(buttons, 'exportHeightmap').name('heightmap PNG (16-bit)');
    files.add(buttons, 'exportColormap').name('colour-mapped PNG');
    files.add(buttons, 'screenshot').name('screenshot PNG');
    files.add(buttons, 'record').name('record WebM');
  }

  /** Relabels the train and evaluate buttons as cancel buttons with progress while busy. */
  setBusy(busy: Busy): void {
    const pct = busy ? ` (${Math.round(busy.fraction * 100)}%)` : '';
    this.trainButton.name(busy?.kind === 'train' ? `cancel training${pct}` : 'train');
    this.evaluateButton.name(busy?.kind === 'evaluate' ? `cancel evaluation${pct}` : 'evaluate');
  }

  /** The scrub slider's range: 0 to the last checkpoint (or frame). */
  setCheckpointRange(last: number): void {
    this.checkpoint.max(Math.max(last, 0.01));
    this.checkpoint.updateDisplay();
  }

  /** Width of the canvas the open panel hides (the view centres itself in the rest). */
  coveredWidthPx(): number {
    return this.gui._closed ? 0 : this.gui.domElement.offsetWidth;
  }

  /** Shows values changed outside the panel (the test hook, a dropped file). */
  refresh(settings: Settings): void {
    this.play.name(settings.playing ? 'pause' : 'play');
    for (const c of this.gui.controllersRecursive()) c.updateDisplay();
  }
}
