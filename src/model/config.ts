/**
 * The model configuration: nanoGPT's GPTConfig names, as stored in a model
 * or run directory's config.json (SPEC section 2).
 */
export type Activation = 'gelu' | 'gelu_tanh';

export interface GPTConfig {
  vocab_size: number;
  block_size: number;
  n_layer: number;
  n_head: number;
  n_embd: number;
  bias: boolean;
  activation: Activation;
  tie_embeddings: boolean;
}

/** An error in a user's input (file or flag): the CLI prints it in one line and exits 2. */
export class InputError extends Error {
  override name = 'InputError';
}

const INT_FIELDS = ['vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd'] as const;

/**
 * Validates a parsed config.json. `source` names the file in messages.
 * Unknown fields are ignored (nanoGPT stores a few more, such as dropout).
 */
export function parseConfig(json: unknown, source = 'config.json'): GPTConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError(`${source}: expected a JSON object with nanoGPT's GPTConfig fields`);
  }
  const o = json as Record<string, unknown>;
  const ints: Record<string, number> = {};
  for (const key of INT_FIELDS) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new InputError(`${source}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
    ints[key] = v;
  }
  const bias = o.bias ?? true;
  if (typeof bias !== 'boolean') throw new InputError(`${source}: "bias" must be true or false`);
  const activation = o.activation ?? 'gelu';
  if (activation !== 'gelu' && activation !== 'gelu_tanh') {
    throw new InputError(`${source}: "activation" must be "gelu" or "gelu_tanh", got ${JSON.stringify(activation)}`);
  }
  const tie = o.tie_embeddings ?? true;
  if (typeof tie !== 'boolean') throw new InputError(`${source}: "tie_embeddings" must be true or false`);
  if (ints.n_embd! % ints.n_head! !== 0) {
    throw new InputError(`${source}: n_embd (${ints.n_embd}) must be divisible by n_head (${ints.n_head})`);
  }
  return {
    vocab_size: ints.vocab_size!,
    block_size: ints.block_size!,
    n_layer: ints.n_layer!,
    n_head: ints.n_head!,
    n_embd: ints.n_embd!,
    bias,
    activation,
    tie_embeddings: tie,
  };
}

export function headSize(cfg: GPTConfig): number {
  return cfg.n_embd / cfg.n_head;
}
