/**
 * The optimizer state a run saves next to its last checkpoint,
 * `optim.safetensors`, so that `--resume` continues exactly where it left
 * off: AdamW's first and second moments of every parameter under PyTorch's
 * state names (`exp_avg.<param name>`, `exp_avg_sq.<param name>`, F32, the
 * parameter's shape) and the number of optimizer steps taken in the
 * metadata (`step`). The mini-batches need no state: the batch of step s is
 * drawn from a generator seeded by (seed, s) (see trainer.ts).
 */
import { InputError } from '../model/config.ts';
import { type ParamLayout } from '../model/params.ts';
import { type SafetensorsFile, serializeSafetensors } from '../io/safetensors.ts';

export interface OptimState {
  /** Optimizer steps taken: the step of the checkpoint these moments belong to. */
  step: number;
  /** exp_avg and exp_avg_sq, flat in the canonical layout (padding zero). */
  m: Float32Array;
  v: Float32Array;
}

const MOMENTS = [['exp_avg', 'm'], ['exp_avg_sq', 'v']] as const;

export function optimToSafetensors(layout: ParamLayout, state: OptimState, metadata: Record<string, string> = {}): Uint8Array {
  const tensors = MOMENTS.flatMap(([prefix, key]) => layout.tensors.map((t) => ({
    name: `${prefix}.${t.name}`, dtype: 'F32' as const, shape: t.shape, data: state[key].subarray(t.offset, t.offset + t.size),
  })));
  return serializeSafetensors(tensors, { ...metadata, step: String(state.step) });
}

export function optimFromSafetensors(layout: ParamLayout, file: SafetensorsFile, source: string): OptimState {
  const step = Number(file.metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new InputError(`${source}: metadata "step" must be a non-negative integer, got ${JSON.stringify(file.metadata.step)}`);
  }
  const state: OptimState = { step, m: new Float32Array(layout.totalFloats), v: new Float32Array(layout.totalFloats) };
  for (const [prefix, key] of MOMENTS) {
    for (const t of layout.tensors) {
      const name = `${prefix}.${t.name}`;
      const found = file.tensors.get(name);
      if (!found) throw new InputError(`${source}: missing tensor "${name}"`);
      if (found.dtype !== 'F32' || found.shape.join(',') !== t.shape.join(',')) {
        throw new InputError(`${source}: tensor "${name}" is ${found.dtype} [${found.shape.join(', ')}], expected F32 [${t.shape.join(', ')}]`);
      }
      state[key].set(found.data as Float32Array, t.offset);
    }
  }
  const expected = 2 * layout.tensors.length;
  if (file.tensors.size !== expected) {
    throw new InputError(`${source}: ${file.tensors.size} tensors, expected ${expected} (exp_avg and exp_avg_sq of each parameter)`);
  }
  return state;
}
