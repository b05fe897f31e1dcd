/**
 * What the viewer asks of a landscape engine (realEngine in real-engine.ts:
 * GPU training and batched grid evaluation on the viewer's GPUDevice, so
 * heights stay on the GPU).
 */
import type { Opened } from './files.ts';
import type { EvalProgress, HeightField } from './source.ts';
import type { Settings } from './state.ts';

export type TrainSettings = Pick<Settings, 'dataset' | 'preset' | 'trainSteps' | 'seed'>;
export type EvalSettings = Pick<Settings, 'directions' | 'seed' | 'range' | 'resolution' | 'metric' | 'wormhole'>;

export interface TrainProgress {
  step: number;
  steps: number;
  trainLoss: number;
}

/** A finished training run, or a model or run opened from files; engines keep what else they need (checkpoints) behind it. */
export interface TrainedRun {
  readonly label: string;
  /** The step of the last checkpoint (0 for a model without a run). */
  readonly steps: number;
  /** Train loss of every step done, [steps] (empty when unknown). */
  readonly trainLoss: Float32Array;
  /** The run carries directions from a file (direction kind "file"). */
  readonly hasDirections: boolean;
}

export interface LandscapeEngine {
  /**
   * Trains a model, calling onProgress now and then (at least once per
   * checkpoint). Rejects with an AbortError (DOMException name "AbortError")
   * once `signal` aborts.
   */
  train(settings: TrainSettings, onProgress: (p: TrainProgress) => void, signal: AbortSignal): Promise<TrainedRun>;
  /**
   * The run of opened model or run files, with their directions file if
   * any; a directions file alone applies to `current`.
   */
  open(files: Extract<Opened, { kind: 'model' }>, current: TrainedRun | null): Promise<TrainedRun>;
  /**
   * Evaluates the landscape around the run's final weights (or, with
   * settings.wormhole, one plane per checkpoint), with the run's path
   * projected onto the plane. Allocates the HeightField first, then calls
   * onChunk each time more of it is valid, coarse lattice first (see
   * EvalProgress), and resolves with the complete field. From the first
   * onChunk on the viewer owns the field (it destroys `heights` when it
   * replaces it): after an abort the engine writes no more into it and
   * rejects with an AbortError.
   */
  evaluate(
    run: TrainedRun,
    settings: EvalSettings,
    onChunk: (field: HeightField, progress: EvalProgress) => void,
    signal: AbortSignal,
  ): Promise<HeightField>;
}

export function abortError(): DOMException {
  return new DOMException('cancelled', 'AbortError');
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}
