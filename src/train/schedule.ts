/**
 * The learning-rate schedule of nanoGPT's train.py (get_lr): linear warm-up
 * to `lr`, then cosine decay to `minLr` at `totalSteps`, flat after.
 */
export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLr: number;
}

/**
 * Learning rate of optimizer step `step` (counted from 0):
 *   step < warmup:        lr * (step + 1) / (warmup + 1)
 *   warmup <= step < total: minLr + 0.5 (1 + cos(pi r)) (lr - minLr), r = (step - warmup) / (total - warmup)
 *   step >= total:        minLr
 */
export function lrAt(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  if (step >= s.totalSteps) return s.minLr;
  const ratio = (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.lr - s.minLr);
}
