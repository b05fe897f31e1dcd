/**
 * A batch is always B sequences of T+1 tokens (`tokens` [B, T+1], the
 * tokens file of SPEC section 3): inputs are tokens[:, :-1], targets
 * tokens[:, 1:], and the optional mask [B, T] weighs each target position
 * (modadd: 1 on the answer only). This is the TokenBatch of
 * src/io/formats.ts plus the tokens it came from.
 */
import { InputError } from '../model/config.ts';

export interface Batch {
  B: number;
  T: number;
  /** [B*(T+1)] row-major: what eval.safetensors stores as `tokens`. */
  tokens: Int32Array;
  /** [B*T] tokens[:, :-1]. */
  idx: Int32Array;
  /** [B*T] tokens[:, 1:]. */
  targets: Int32Array;
  /** [B*T] loss weight of each target position, or null for all ones. */
  mask: Float32Array | null;
}

/** Splits rows of T+1 tokens into the batch views. */
export function batchFromTokens(tokens: Int32Array, B: number, T: number, mask: Float32Array | null): Batch {
  const idx = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      idx[b * T + t] = tokens[b * (T + 1) + t]!;
      targets[b * T + t] = tokens[b * (T + 1) + t + 1]!;
    }
  }
  return { B, T, tokens, idx, targets, mask };
}

/** Entropy in nats of the empirical distribution of `counts`. */
export function entropyOfCounts(counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0) h -= (c / total) * Math.log(c / total);
  }
  return h;
}

export function checkBatchShape(name: string, B: number, T: number): void {
  if (!Number.isInteger(B) || B <= 0) throw new InputError(`${name}: batch size must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T <= 0) throw new InputError(`${name}: sequence length must be a positive integer, got ${T}`);
}
