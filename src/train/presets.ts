/**
 * Model and training presets for `losscape train --preset`. The vocabulary
 * comes from the dataset; for modadd the sequence length is the dataset's
 * (T = 4) whatever the preset says. Measured figures are in
 * README.md ("Training", "Presets").
 */
import { type GPTConfig } from '../model/config.ts';
import { HYPER_DEFAULTS, type TrainHyper } from './trainer.ts';

export interface Preset {
  name: string;
  description: string;
  model: Omit<GPTConfig, 'vocab_size'>;
  train: { steps: number; batchSize: number; lr: number; warmupSteps: number; saveEvery: number };
}

export const PRESETS: Readonly<Record<'tiny' | 'small' | 'base', Preset>> = {
  tiny: {
    name: 'tiny',
    description: '28K parameters; on grammar, validation loss 1.11 in about 30 s on SwiftShader (2 CPU cores)',
    model: { n_layer: 2, n_head: 4, n_embd: 32, block_size: 32, bias: true, activation: 'gelu', tie_embeddings: true },
    train: { steps: 600, batchSize: 16, lr: 1e-2, warmupSteps: 30, saveEvery: 50 },
  },
  small: {
    name: 'small',
    description: '207K parameters; about 20 minutes on SwiftShader (3,500 tokens/s on 2 CPU cores)',
    model: { n_layer: 4, n_head: 4, n_embd: 64, block_size: 64, bias: true, activation: 'gelu', tie_embeddings: true },
    train: { steps: 2000, batchSize: 32, lr: 3e-3, warmupSteps: 100, saveEvery: 100 },
  },
  base: {
    name: 'base',
    description: '1.01M parameters: a model worth a GPU (about 700 tokens/s, 8 hours, on SwiftShader)',
    model: { n_layer: 5, n_head: 4, n_embd: 128, block_size: 128, bias: true, activation: 'gelu', tie_embeddings: true },
    train: { steps: 5000, batchSize: 32, lr: 1e-3, warmupSteps: 200, saveEvery: 250 },
  },
};

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** Flags that override a preset's training hyper-parameters (undefined: the preset's, or the rule below). */
export interface HyperOverrides {
  steps?: number;
  saveEvery?: number;
  batch?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  weightDecay?: number;
  gradClip?: number;
  valEvery?: number;
}

/**
 * A run's hyper-parameters from a preset and overrides: min lr lr/10, warm-up
 * at most a tenth of the steps, validation at every checkpoint.
 */
export function presetHyper(name: PresetName, seqLen: number, seed: number, o: HyperOverrides = {}): TrainHyper {
  const preset = PRESETS[name].train;
  const steps = o.steps ?? preset.steps;
  const saveEvery = o.saveEvery ?? Math.min(preset.saveEvery, steps);
  const lr = o.lr ?? preset.lr;
  return {
    ...HYPER_DEFAULTS,
    steps,
    batchSize: o.batch ?? preset.batchSize,
    seqLen,
    lr,
    minLr: o.minLr ?? lr / 10,
    warmupSteps: o.warmup ?? Math.min(preset.warmupSteps, Math.floor(steps / 10)),
    weightDecay: o.weightDecay ?? HYPER_DEFAULTS.weightDecay,
    gradClip: o.gradClip ?? HYPER_DEFAULTS.gradClip,
    seed,
    saveEvery,
    valEvery: o.valEvery ?? saveEvery,
  };
}
