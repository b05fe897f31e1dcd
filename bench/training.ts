/**
 * The training benchmark (issue 3 and 6): tokens/s of the engine's trainer
 * (src/train/trainer.ts: forward, backward and AdamW in one pass per step)
 * against PyTorch AdamW (bench/torch_train.py) on the same config, batch
 * shape and data: a ladder model's shape with the grammar dataset's
 * vocabulary, mini-batches of its text.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type GpuContext } from '../src/gpu/context.ts';
import { KernelCache } from '../src/gpu/kernel.ts';
import { type GPTConfig } from '../src/model/config.ts';
import { paramLayout } from '../src/model/params.ts';
import { makeDataset } from '../src/data/dataset.ts';
import { tokensToSafetensors } from '../src/io/formats.ts';
import { HYPER_DEFAULTS, type TrainHyper, train } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import { type BenchModel } from './harness.ts';
import { type TrainCase } from './report.ts';
import { runTorchTrain, type TorchTrainResult } from './torch.ts';
import { type GemmStrategy, gemmFor } from '../shaders/linear.ts';

export interface TrainSteps {
  /** Untimed steps first (the first steps pay for first-use costs). */
  warmup: number;
  timed: number;
}

export interface TrainCaseResult extends TrainCase {
  model: string;
  engineDetail: {
    steps: TrainSteps;
    /** Wall clock of the timed steps, from the progress report after the warm-up to the one after the last step. */
    seconds: number;
    /** The whole train() call: plans compiled, warm-up, timed steps, the two checkpoints. */
    totalSeconds: number;
    /** The GEMM the trainer ran (TrainResult.gemm): the one a long run (the presets' lengths) takes, gemmFor(adapter, Infinity). */
    strategy: GemmStrategy;
    lossFirst: number;
    lossLast: number;
  };
  torchDetail: Omit<TorchTrainResult, 'config'> | null;
}

export interface TrainCaseOptions {
  ctx: GpuContext;
  dir: string;
  model: BenchModel;
  steps: TrainSteps;
  ceilingGflops: number;
  python: string | null;
  log: (line: string) => void;
}

/** Sequences in the tokens file the PyTorch baseline draws its batches from. */
const TORCH_SEQUENCES = 256;
const LR = 1e-3;
const SEED = 1;

export async function runTrainCase(o: TrainCaseOptions): Promise<TrainCaseResult> {
  const { ctx, model: m, steps, log } = o;
  const dataset = makeDataset('grammar');
  const config: GPTConfig = { ...m.config, vocab_size: dataset.vocabSize };
  const layout = paramLayout(config);
  const { B, T } = m;
  const name = `${m.name} train ${B}x${T}`;
  const hyper: TrainHyper = {
    ...HYPER_DEFAULTS,
    steps: steps.warmup + steps.timed, batchSize: B, seqLen: T, lr: LR, minLr: LR / 10, warmupSteps: 0, seed: SEED,
    saveEvery: steps.warmup + steps.timed, valEvery: steps.warmup + steps.timed,
  };

  // A run of a few steps would take the register GEMM (its compile would not pay); real runs are
  // hundreds to thousands of steps, so the bench times the GEMM they take.
  const wanted = gemmFor(ctx.adapter, Infinity).strategy;
  log(`${name}: engine trainer (${wanted} GEMM, as in long runs), ${steps.warmup} + ${steps.timed} steps`);
  const marks: Array<{ step: number; ms: number }> = [];
  const started = performance.now();
  const result = await train(ctx, new KernelCache(ctx), {
    layout, dataset, evalBatch: dataset.evalBatch(B, T, SEED), hyper, reportEvery: steps.warmup, gemm: wanted,
    onProgress: (p) => marks.push({ step: p.step, ms: performance.now() }),
    onCheckpoint: () => {},
  });
  const totalSeconds = (performance.now() - started) / 1000;
  const first = marks.find((k) => k.step === steps.warmup)!;
  const last = marks.at(-1)!;
  const seconds = (last.ms - first.ms) / 1000;
  const engineTokensPerSecond = ((last.step - first.step) * B * T) / seconds;
  const losses = result.history.trainLoss;
  log(`${name}: engine ${engineTokensPerSecond.toFixed(0)} tokens/s (loss ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(3)})`);

  let torch: TrainCaseResult['torchDetail'] = null;
  if (o.python) {
    mkdirSync(o.dir, { recursive: true });
    const configPath = join(o.dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    const tokensPath = join(o.dir, 'train-tokens.safetensors');
    writeFileSync(tokensPath, tokensToSafetensors(dataset.sampleBatch(new Rng(SEED), TORCH_SEQUENCES, T).tokens, TORCH_SEQUENCES, T + 1));
    log(`${name}: PyTorch AdamW, ${steps.warmup} + ${steps.timed} steps`);
    const { config: _, ...r } = await runTorchTrain(o.python, {
      config: configPath, batch: B, block: T, steps: steps.timed, untimedSteps: steps.warmup, tokens: tokensPath, lr: LR,
    });
    torch = r;
    log(`${name}: torch ${r.tokensPerSecond.toFixed(0)} tokens/s (loss ${r.lossFirst.toFixed(3)} -> ${r.lossLast.toFixed(3)})`);
  }
  return {
    name,
    model: m.name,
    config,
    params: layout.paramCount,
    batch: B,
    T,
    engineTokensPerSecond,
    torchTokensPerSecond: torch?.tokensPerSecond ?? null,
    ceilingGflops: o.ceilingGflops,
    engineDetail: { steps, seconds, totalSeconds, strategy: result.gemm, lossFirst: losses[0]!, lossLast: losses.at(-1)! },
    torchDetail: torch,
  };
}
