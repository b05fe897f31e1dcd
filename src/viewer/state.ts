/**
 * The viewer's one settings object. lil-gui edits it, the test hook edits
 * it, and everything else reads it: the renderers draw from it, the
 * controller in main.ts reacts to which key changed.
 */
import { COLORMAP_NAMES, type ColormapName } from '../export/colormaps.ts';

export const DATASETS = ['grammar', 'modadd'] as const;
export const PRESETS = ['tiny', 'small', 'base'] as const;
export const DIRECTION_KINDS = ['filter', 'random', 'layer', 'model', 'pca', 'hessian'] as const;
export const METRICS = ['ce', 'acc', 'mse'] as const;
export const SCALES = ['linear', 'log'] as const;
export { COLORMAP_NAMES };

export interface Settings {
  // what to train
  dataset: (typeof DATASETS)[number];
  preset: (typeof PRESETS)[number];
  trainSteps: number;
  // which landscape to evaluate around the trained weights
  directions: (typeof DIRECTION_KINDS)[number];
  seed: number;
  /** alpha and beta both run over [-range, range]. */
  range: number;
  /** Grid points per side (nx = ny). */
  resolution: number;
  metric: (typeof METRICS)[number];
  /** Evaluate one re-centred plane per checkpoint (the wormhole) instead of one plane. */
  wormhole: boolean;
  // how to draw it
  colormap: ColormapName;
  scale: (typeof SCALES)[number];
  /** Multiplies the terrain's height (1 = the default relief). */
  exaggeration: number;
  /** Heights above this loss are flattened; 0 = no clamp. */
  clampMax: number;
  /** Number of contour levels, evenly spaced in the chosen scale; 0 = none. */
  contours: number;
  wireframe: boolean;
  minimap: boolean;
  // the training path and its player
  showPath: boolean;
  playing: boolean;
  /** Checkpoints (or wormhole frames) per second. */
  playSpeed: number;
  /** Position of the marker in checkpoints, fractional between two of them. */
  checkpoint: number;
}

export type SettingKey = keyof Settings;

export function defaultSettings(): Settings {
  return {
    dataset: 'grammar',
    preset: 'tiny',
    trainSteps: 300,
    directions: 'filter',
    seed: 1,
    range: 1,
    resolution: 65,
    metric: 'ce',
    wormhole: false,
    colormap: 'viridis',
    scale: 'linear',
    exaggeration: 1,
    clampMax: 0,
    contours: 12,
    wireframe: false,
    minimap: true,
    showPath: true,
    playing: false,
    playSpeed: 8,
    checkpoint: 0,
  };
}

/** Keys whose change invalidates the evaluated landscape (re-evaluate at once). */
export const EVAL_KEYS: readonly SettingKey[] = ['directions', 'seed', 'range', 'resolution', 'metric', 'wormhole'];
