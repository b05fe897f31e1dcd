/**
 * The viewer's one settings object. lil-gui edits it, the test hook edits
 * it, and everything else reads it: the renderers draw from it, the
 * controller in main.ts reacts to which key changed.
 */
import { COLORMAP_NAMES, type ColormapName } from '../export/colormaps.ts';

export const DATASETS = ['grammar', 'modadd'] as const;
export const PRESETS = ['tiny', 'small', 'base'] as const;
/**
 * 'pca': the run's top-2 principal components, filter-normalised (the
 * default: random directions are all but orthogonal to the training path,
 * which then projects onto the centre); 'hessian': the top-2 Hessian
 * eigenvectors, filter-normalised; 'file': an opened directions file.
 */
export const DIRECTION_KINDS = ['pca', 'filter', 'random', 'layer', 'model', 'hessian', 'file'] as const;
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

/** The default run and grid: chosen so that the whole default flow takes about a minute on SwiftShader (README.md, "The viewer"). */
export const DEFAULT_TRAIN_STEPS = 600;
export const DEFAULT_RESOLUTION = 33;

export function defaultSettings(): Settings {
  return {
    dataset: 'grammar',
    preset: 'tiny',
    trainSteps: DEFAULT_TRAIN_STEPS,
    directions: 'pca',
    seed: 1,
    range: 1,
    resolution: DEFAULT_RESOLUTION,
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

/** The numeric settings' ranges and slider steps (the panel's sliders, and the checks of URL parameters). */
export const NUMBER_RANGES = {
  trainSteps: { min: 10, max: 5000, step: 10, integer: true },
  seed: { min: 0, max: 9999, step: 1, integer: true },
  range: { min: 0.05, max: 5, step: 0.05, integer: false },
  resolution: { min: 5, max: 513, step: 1, integer: true },
  exaggeration: { min: 0.1, max: 5, step: 0.05, integer: false },
  clampMax: { min: 0, max: 100, step: 0.01, integer: false },
  contours: { min: 0, max: 60, step: 1, integer: true },
  playSpeed: { min: 0.5, max: 60, step: 0.5, integer: false },
} as const satisfies Partial<Record<SettingKey, { min: number; max: number; step: number; integer: boolean }>>;

/** URL query parameters and the settings they set (short names for the common ones). */
export const QUERY_KEYS: Readonly<Record<string, SettingKey>> = {
  dataset: 'dataset', preset: 'preset', steps: 'trainSteps',
  directions: 'directions', seed: 'seed', range: 'range', res: 'resolution', metric: 'metric', wormhole: 'wormhole',
  colormap: 'colormap', scale: 'scale', exaggeration: 'exaggeration', clamp: 'clampMax', contours: 'contours',
  wireframe: 'wireframe', minimap: 'minimap', path: 'showPath', speed: 'playSpeed',
};

const CHOICES: Partial<Record<SettingKey, readonly string[]>> = {
  dataset: DATASETS, preset: PRESETS, directions: DIRECTION_KINDS, metric: METRICS, colormap: COLORMAP_NAMES, scale: SCALES,
};

/**
 * The settings a URL query overrides (`?steps=40&res=17&directions=pca`);
 * an unknown parameter or a bad value throws an Error naming it and what
 * it accepts.
 */
export function settingsFromQuery(query: string): Partial<Settings> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(query)) {
    const key = QUERY_KEYS[name];
    if (!key) throw new Error(`?${name}: unknown URL parameter; known: ${Object.keys(QUERY_KEYS).join(', ')}`);
    const choices = CHOICES[key];
    const range = (NUMBER_RANGES as Partial<Record<SettingKey, { min: number; max: number; integer: boolean }>>)[key];
    if (choices) {
      if (!choices.includes(value)) throw new Error(`?${name}=${value}: expected one of ${choices.join(', ')}`);
      out[key] = value;
    } else if (range) {
      const v = Number(value);
      if (value.trim() === '' || !Number.isFinite(v) || v < range.min || v > range.max || (range.integer && !Number.isInteger(v))) {
        throw new Error(`?${name}=${value}: expected ${range.integer ? 'an integer' : 'a number'} from ${range.min} to ${range.max}`);
      }
      out[key] = v;
    } else {
      // The rest are the on/off settings.
      if (!['1', '0', 'true', 'false'].includes(value)) throw new Error(`?${name}=${value}: expected 1, 0, true or false`);
      out[key] = value === '1' || value === 'true';
    }
  }
  return out as Partial<Settings>;
}
