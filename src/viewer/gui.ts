/**
 * The lil-gui panel. It edits the one settings object and calls the
 * actions it is given; what a change means is decided by whoever listens to
 * `changed` (main.ts), not here.
 */
import GUI, { type Controller } from 'lil-gui';
import {
  COLORMAP_NAMES, DATASETS, DIRECTION_KINDS, METRICS, PRESETS, SCALES, type SettingKey, type Settings,
} from './state.ts';

export interface PanelActions {
  /** Train (or, while training, cancel). */
  train(): void;
  /** Evaluate (or, while evaluating, cancel). */
  evaluate(): void;
  openFile(): void;
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
    const buttons = { ...actions, playPause: (): void => { settings.playing = !settings.playing; this.play.updateDisplay(); changed('playing'); } };

    const model = gui.addFolder('Model');
    on(model.add(settings, 'dataset', [...DATASETS]), 'dataset');
    on(model.add(settings, 'preset', [...PRESETS]), 'preset');
    on(model.add(settings, 'trainSteps', 10, 5000, 10).name('train steps'), 'trainSteps');
    this.trainButton = model.add(buttons, 'train');

    const land = gui.addFolder('Landscape');
    on(land.add(settings, 'directions', [...DIRECTION_KINDS]).name('direction kind'), 'directions');
    on(land.add(settings, 'seed', 0, 9999, 1), 'seed');
    on(land.add(settings, 'range', 0.05, 5, 0.05).name('range ±'), 'range');
    on(land.add(settings, 'resolution', 5, 513, 1), 'resolution');
    on(land.add(settings, 'metric', [...METRICS]), 'metric');
    on(land.add(settings, 'wormhole'), 'wormhole');
    this.evaluateButton = land.add(buttons, 'evaluate');

    const look = gui.addFolder('View');
    on(look.add(settings, 'colormap', [...COLORMAP_NAMES]).name('colour map'), 'colormap');
    on(look.add(settings, 'scale', [...SCALES]), 'scale');
    on(look.add(settings, 'exaggeration', 0.1, 5, 0.05), 'exaggeration');
    on(look.add(settings, 'clampMax', 0, 100, 0.01).name('clamp above (0 = off)'), 'clampMax');
    on(look.add(settings, 'contours', 0, 60, 1), 'contours');
    on(look.add(settings, 'wireframe'), 'wireframe');
    on(look.add(settings, 'minimap'), 'minimap');

    const path = gui.addFolder('Path');
    on(path.add(settings, 'showPath').name('show path'), 'showPath');
    this.play = path.add(buttons, 'playPause').name(settings.playing ? 'pause' : 'play');
    on(path.add(settings, 'playSpeed', 0.5, 60, 0.5).name('play speed (ckpt/s)'), 'playSpeed');
    this.checkpoint = on(path.add(settings, 'checkpoint', 0, 1, 0.01), 'checkpoint').listen();

    const files = gui.addFolder('Files');
    files.add(buttons, 'openFile').name('open grid file…');
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
