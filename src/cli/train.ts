/**
 * `losscape train`: trains a GPT on the GPU and writes the run directory of
 * SPEC section 3 (see src/node/run-dir.ts), with a progress bar.
 * `--resume` continues a run from its last checkpoint with the settings in
 * its train.json and gives the same checkpoints as an uninterrupted run.
 */
import { type Command } from 'commander';
import cliProgress from 'cli-progress';
import { describeAdapter } from '../gpu/context.ts';
import { KernelCache } from '../gpu/kernel.ts';
import { type GPTConfig, InputError, parseConfig } from '../model/config.ts';
import { paramLayout } from '../model/params.ts';
import { tokensToSafetensors } from '../io/formats.ts';
import { type Dataset, DATASET_DEFAULT_SEED, makeDataset } from '../data/dataset.ts';
import { MODADD_DEFAULT_P, MODADD_DEFAULT_TRAIN_FRACTION } from '../data/modadd.ts';
import { nodeGpu } from '../node/gpu.ts';
import { readBytes, readJson } from '../node/files.ts';
import { createRunDir, EVAL_FILE, loadResumePoint, writeCheckpoint, writeRunFiles } from '../node/run-dir.ts';
import { HYPER_DEFAULTS, type TrainHyper, type TrainProgress, checkHyper, train } from '../train/trainer.ts';
import { PRESETS, PRESET_NAMES, type PresetName, presetHyper } from '../train/presets.ts';
import {
  type DatasetRecord, type TrainRecord, TRAIN_RECORD_FORMAT, TRAIN_RECORD_VERSION, checkpointFile, historyOf,
} from '../train/run-record.ts';
import { parseChoice, parseInteger, parseNumber } from './options.ts';

interface TrainOptions {
  dataset: string;
  preset: PresetName;
  config?: string;
  steps?: number;
  saveEvery?: number;
  batch?: number;
  block?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  weightDecay: number;
  gradClip: number;
  valEvery?: number;
  seed: number;
  dataSeed: number;
  p: number;
  trainFraction: number;
  evalBatch?: number;
  out: string;
  resume?: boolean;
  stopAt?: number;
  json?: boolean;
}

const DEFAULT_EVAL_SEQUENCES = { text: 16, modadd: 512 };

function loadDataset(spec: string, seed: number, p: number, trainFraction: number): Dataset {
  const text = spec.startsWith('text:') ? new TextDecoder('utf-8', { fatal: false }).decode(readBytes(spec.slice(5))) : undefined;
  return makeDataset(spec, { seed, p, trainFraction, ...(text !== undefined ? { text } : {}) });
}

function datasetRecord(spec: string, ds: Dataset, seed: number, p: number, trainFraction: number): DatasetRecord {
  const modadd = spec === 'modadd' ? { p, trainFraction } : {};
  return { spec, seed, ...modadd, vocabSize: ds.vocabSize, unigramEntropy: ds.unigramEntropy(), info: ds.info };
}

/** The model: --config FILE (vocab_size may be left out: the dataset's), or the preset's with the dataset's vocabulary. */
function modelConfig(opts: TrainOptions, ds: Dataset): GPTConfig {
  if (opts.config) {
    const json = readJson(opts.config) as Record<string, unknown>;
    const cfg = parseConfig({ vocab_size: ds.vocabSize, ...json }, opts.config);
    if (cfg.vocab_size !== ds.vocabSize) {
      throw new InputError(`${opts.config}: vocab_size ${cfg.vocab_size} does not match the dataset's ${ds.vocabSize} tokens`);
    }
    return cfg;
  }
  const model = PRESETS[opts.preset].model;
  return { ...model, vocab_size: ds.vocabSize, block_size: ds.sequenceLength ?? model.block_size };
}

function newRunHyper(opts: TrainOptions, cfg: GPTConfig, ds: Dataset): TrainHyper {
  return presetHyper(opts.preset, opts.block ?? ds.sequenceLength ?? cfg.block_size, opts.seed, {
    steps: opts.steps, saveEvery: opts.saveEvery, batch: opts.batch, lr: opts.lr, minLr: opts.minLr, warmup: opts.warmup,
    weightDecay: opts.weightDecay, gradClip: opts.gradClip, valEvery: opts.valEvery,
  });
}

/** With --resume, a flag given again must say what the run's train.json says. */
function checkResumeFlags(cmd: Command, opts: TrainOptions, r: TrainRecord, source: string): void {
  const h = r.hyper;
  const recorded: Array<[keyof TrainOptions, string, unknown]> = [
    ['dataset', '--dataset', r.dataset.spec], ['preset', '--preset', r.preset], ['steps', '--steps', h.steps],
    ['saveEvery', '--save-every', h.saveEvery], ['batch', '--batch', h.batchSize], ['block', '--block', h.seqLen],
    ['lr', '--lr', h.lr], ['minLr', '--min-lr', h.minLr], ['warmup', '--warmup', h.warmupSteps],
    ['weightDecay', '--weight-decay', h.weightDecay], ['gradClip', '--grad-clip', h.gradClip], ['valEvery', '--val-every', h.valEvery],
    ['seed', '--seed', h.seed], ['dataSeed', '--data-seed', r.dataset.seed], ['p', '--p', r.dataset.p],
    ['trainFraction', '--train-fraction', r.dataset.trainFraction], ['evalBatch', '--eval-batch', r.eval.sequences],
  ];
  for (const [key, flag, value] of recorded) {
    if (cmd.getOptionValueSource(key) === 'cli' && opts[key] !== value) {
      throw new InputError(`${flag} ${String(opts[key])}: the run in ${source} was made with ${JSON.stringify(value ?? null)}; --resume keeps a run's settings`);
    }
  }
  if (opts.config) throw new InputError(`--config: --resume takes the model from ${source}; drop --config`);
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '-';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

export function register(program: Command): void {
  const presets = PRESET_NAMES.map((n) => `${n} (${PRESETS[n].description})`).join('; ');
  program
    .command('train')
    .description('train a GPT on the GPU and keep every checkpoint in a run directory')
    .option('--dataset <spec>', 'grammar (English-like text from a grammar), modadd (a + b = c mod p) or text:PATH (a UTF-8 file, characters)', 'grammar')
    .option('--preset <name>', `model and training defaults: ${presets}`, parseChoice('--preset', PRESET_NAMES), 'tiny' as PresetName)
    .option('--config <file>', 'config.json of the model (nanoGPT GPTConfig names; vocab_size may be left out) instead of the preset\'s')
    .option('--steps <n>', 'optimizer steps (default: the preset\'s)', parseInteger('--steps'))
    .option('--save-every <k>', 'checkpoint (and validation loss) every K steps, besides step 0 and the last (default: the preset\'s)', parseInteger('--save-every'))
    .option('--batch <b>', 'sequences per batch (default: the preset\'s)', parseInteger('--batch'))
    .option('--block <t>', 'tokens per training sequence (default: the model\'s block_size; modadd: 4)', parseInteger('--block'))
    .option('--lr <lr>', 'peak learning rate (default: the preset\'s)', parseNumber('--lr'))
    .option('--min-lr <lr>', 'learning rate at the end of the cosine decay (default: lr / 10)', parseNumber('--min-lr'))
    .option('--warmup <steps>', 'linear warm-up steps (default: the preset\'s, at most a tenth of --steps)', parseInteger('--warmup', 0))
    .option('--weight-decay <wd>', 'AdamW decoupled weight decay on matrices and embeddings', parseNumber('--weight-decay'), HYPER_DEFAULTS.weightDecay)
    .option('--grad-clip <norm>', 'clip the global gradient norm to this (0: off)', parseNumber('--grad-clip'), HYPER_DEFAULTS.gradClip)
    .option('--val-every <n>', 'validation loss also every N steps (default: --save-every)', parseInteger('--val-every'))
    .option('--seed <s>', 'seed of the initial weights and the batch sequence', parseInteger('--seed', 0), 1)
    .option('--data-seed <s>', 'seed of the grammar corpus, the modadd split and the evaluation batch', parseInteger('--data-seed', 0), DATASET_DEFAULT_SEED)
    .option('--p <p>', 'modadd: the modulus', parseInteger('--p', 2), MODADD_DEFAULT_P)
    .option('--train-fraction <f>', 'modadd: the share of the p*p pairs that train', parseNumber('--train-fraction'), MODADD_DEFAULT_TRAIN_FRACTION)
    .option('--eval-batch <n>', `sequences in eval.safetensors, the validation batch (default ${DEFAULT_EVAL_SEQUENCES.text}; modadd ${DEFAULT_EVAL_SEQUENCES.modadd})`, parseInteger('--eval-batch'))
    .requiredOption('--out <dir>', 'run directory to write (config.json, tokenizer.json, train.json, ckpt-STEP.safetensors, optim.safetensors, eval.safetensors)')
    .option('--resume', 'continue the run in --out from its last checkpoint, with its settings')
    .option('--stop-at <step>', 'stop after the checkpoint of this step, as if interrupted (continue with --resume)', parseInteger('--stop-at'))
    .option('--json', 'print the summary as JSON')
    .action(async (opts: TrainOptions, cmd: Command) => {
      const resume = opts.resume ? loadResumePoint(opts.out) : null;
      if (resume) checkResumeFlags(cmd, opts, resume.record, `${opts.out}/train.json`);
      const dsr = resume?.record.dataset;
      const spec = dsr?.spec ?? opts.dataset;
      const dataSeed = dsr?.seed ?? opts.dataSeed;
      const p = dsr?.p ?? opts.p;
      const trainFraction = dsr?.trainFraction ?? opts.trainFraction;
      const dataset = loadDataset(spec, dataSeed, p, trainFraction);
      const config = resume?.record.config ?? modelConfig(opts, dataset);
      if (config.vocab_size !== dataset.vocabSize) {
        throw new InputError(`${spec}: the dataset now has ${dataset.vocabSize} tokens, the run's model ${config.vocab_size}`);
      }
      const layout = resume?.layout ?? paramLayout(config);
      const hyper = resume?.record.hyper ?? newRunHyper(opts, config, dataset);
      checkHyper(hyper, config.block_size);
      const evalSequences = resume?.record.eval.sequences
        ?? opts.evalBatch ?? (spec === 'modadd' ? Math.min(DEFAULT_EVAL_SEQUENCES.modadd, dataset.evalSequences!) : DEFAULT_EVAL_SEQUENCES.text);
      const evalBatch = dataset.evalBatch(evalSequences, hyper.seqLen, dataSeed);
      if (opts.stopAt !== undefined && opts.stopAt <= (resume?.optim.step ?? 0)) {
        throw new InputError(`--stop-at ${opts.stopAt}: the run is already at step ${resume?.optim.step ?? 0}`);
      }

      const ctx = await nodeGpu();
      const adapter = describeAdapter(ctx.adapter);
      if (!resume) {
        createRunDir(opts.out);
        writeRunFiles(opts.out, {
          config, tokenizer: dataset.tokenizer.toJSON(),
          evalTokens: tokensToSafetensors(evalBatch.tokens, evalBatch.B, evalBatch.T + 1, evalBatch.mask),
        });
      }
      const base: Omit<TrainRecord, 'step' | 'trainLoss' | 'gradNorm' | 'val' | 'checkpoints' | 'elapsedSeconds' | 'tokensPerSecond'> = {
        format: TRAIN_RECORD_FORMAT, version: TRAIN_RECORD_VERSION,
        dataset: resume?.record.dataset ?? datasetRecord(spec, dataset, dataSeed, p, trainFraction),
        preset: resume ? resume.record.preset : opts.config ? null : opts.preset,
        config, hyper, eval: { file: EVAL_FILE, sequences: evalSequences, T: hyper.seqLen, seed: dataSeed }, adapter,
      };
      const checkpoints = resume?.record.checkpoints.slice() ?? [];
      const started = performance.now();
      let lastProgress: TrainProgress | null = null;

      const tty = Boolean(process.stderr.isTTY);
      const bar = new cliProgress.SingleBar({
        format: 'train |{bar}| {value}/{total} | loss {loss} | {tps} tok/s | ETA {left}',
        stream: process.stderr, hideCursor: true, clearOnComplete: false,
      }, cliProgress.Presets.shades_classic);
      if (tty) bar.start(hyper.steps, resume?.optim.step ?? 0, { loss: '-', tps: '-', left: '-' });
      const controller = new AbortController();
      const onSigint = (): void => controller.abort();
      process.once('SIGINT', onSigint);
      let result;
      try {
        result = await train(ctx, new KernelCache(ctx), {
          layout, dataset, evalBatch, hyper,
          ...(resume ? { resume: { params: resume.params, optim: resume.optim, history: historyOf(resume.record) } } : {}),
          ...(opts.stopAt !== undefined ? { stopAt: opts.stopAt } : {}),
          signal: controller.signal,
          onProgress: (pr) => {
            lastProgress = pr;
            if (tty) bar.update(pr.step, { loss: pr.trainLoss.toFixed(4), tps: pr.tokensPerSecond.toFixed(0), left: formatSeconds(pr.etaSeconds) });
          },
          onCheckpoint: (c) => {
            checkpoints.push({ step: c.step, file: checkpointFile(c.step), evalLoss: c.evalLoss });
            const seconds = (performance.now() - started) / 1000;
            const p = lastProgress as TrainProgress | null;
            writeCheckpoint(opts.out, layout, c.params, c.optim, {
              ...base, step: c.step, ...c.history, checkpoints, elapsedSeconds: seconds, tokensPerSecond: p?.tokensPerSecond ?? 0,
            });
            if (!tty) {
              const train = p && p.step === c.step ? ` train ${p.trainLoss.toFixed(4)}` : '';
              console.error(`step ${c.step}/${hyper.steps}${train} val ${c.evalLoss.toFixed(4)}${p ? ` ${p.tokensPerSecond.toFixed(0)} tok/s` : ''}`);
            }
          },
        });
      } finally {
        process.off('SIGINT', onSigint);
        if (tty) bar.stop();
      }
      const last = checkpoints[checkpoints.length - 1]!;
      const lnV = Math.log(config.vocab_size);
      const unigram = base.dataset.unigramEntropy;
      const interrupted = result.step < (opts.stopAt ?? hyper.steps);
      if (interrupted) process.exitCode = 130;
      if (opts.json) {
        console.log(JSON.stringify({
          step: result.step, steps: hyper.steps, interrupted, lastCheckpoint: last.step, valLoss: last.evalLoss, lnVocab: lnV, unigramEntropy: unigram,
          tokensPerSecond: result.tokensPerSecond, elapsedSeconds: result.elapsedSeconds, params: layout.paramCount, out: opts.out, adapter,
        }));
      } else {
        console.log(`${interrupted ? 'interrupted after' : 'trained to'} step ${result.step} of ${hyper.steps} in ${result.elapsedSeconds.toFixed(1)} s `
          + `(${result.tokensPerSecond.toFixed(0)} tokens/s, ${layout.paramCount} parameters, ${adapter})`);
        console.log(`val loss ${last.evalLoss.toFixed(4)} at step ${last.step} (ln vocab ${lnV.toFixed(4)}, unigram entropy ${unigram.toFixed(4)}); run in ${opts.out}`);
        if (result.step < hyper.steps) console.log(`continue from step ${last.step} with: losscape train --out ${opts.out} --resume`);
      }
    });
}
