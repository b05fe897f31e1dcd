/**
 * `losscape line`: the loss along theta(s) = (1-s) A + s B (Goodfellow et
 * al. 2015) for s from -E to 1+E, on the grid engine: centre A, d1 = B - A,
 * d2 = 0, alpha = s, one row. Written as a grid file with ny = 1.
 */
import { type Command } from 'commander';
import { InputError } from '../model/config.ts';
import { loadModelSpec, loadRun } from '../node/run.ts';
import { linspace } from '../landscape/grid.ts';
import { type Metric } from '../../shaders/loss.ts';
import { checkOutput, loadBatch, runPlaneJob } from './grid.ts';
import { parseInteger, parseMetric, parseNumber } from './options.ts';

interface LineFlags {
  model?: string;
  from?: string;
  to?: string;
  tokens?: string;
  run?: string;
  res: number;
  extend: number;
  metric: Metric;
  positions: string;
  out: string;
  json?: boolean;
  resume?: boolean;
}

export function register(program: Command): void {
  program
    .command('line')
    .description('evaluate the loss along the straight line (1-s) A + s B, s from -E to 1+E, and write a grid file with one row')
    .option('--model <A>', 'start A (s = 0): model directory, checkpoint file, run directory (last checkpoint), or RUN:STEP / RUN:init / RUN:final (default with --run: RUN:init)')
    .option('--from <A>', 'the same as --model')
    .option('--to <B>', 'end B (s = 1), the same forms (default with --run: RUN:final)')
    .option('--tokens <file>', 'tokens file of the batch (default: the --run\'s eval.safetensors)')
    .option('--run <dir>', 'training run: its eval batch, and A = its initialisation, B = its final checkpoint unless given')
    .option('--res <n>', 'points along the line, >= 2', parseInteger('--res', 2), 101)
    .option('--extend <e>', 's runs from -E to 1+E, E >= 0', parseNumber('--extend'), 0.25)
    .option('--metric <m>', 'ce (cross-entropy), acc (top-1 accuracy) or mse (softmax vs one-hot)', parseMetric, 'ce' as Metric)
    .option('--positions <spec>', 'target positions the loss is taken on: all, last, or a list like 0,5-7,-1', 'all')
    .requiredOption('--out <file>', 'the grid file to write (loss [1, res], alpha = s, beta = [0])')
    .option('--json', 'print a JSON summary')
    .option('--resume', 'continue from OUT.partial, left by an interrupted run of the same line')
    .action(async (opts: LineFlags) => {
      if (opts.model !== undefined && opts.from !== undefined) throw new InputError('give the start as --model A or --from A, not both');
      if (!(opts.extend >= 0)) throw new InputError(`--extend: expected a number >= 0, got ${opts.extend}`);
      checkOutput(opts.out);
      const run = opts.run !== undefined ? loadRun(opts.run) : null;
      const fromSpec = opts.model ?? opts.from ?? (run ? `${run.dir}:init` : undefined);
      const toSpec = opts.to ?? (run ? `${run.dir}:final` : undefined);
      if (fromSpec === undefined || toSpec === undefined) throw new InputError('needs --model A and --to B (or --run RUN for its initialisation and final checkpoint)');
      const a = loadModelSpec(fromSpec);
      const b = loadModelSpec(toSpec);
      if (JSON.stringify(a.config) !== JSON.stringify(b.config)) {
        throw new InputError(`--to ${toSpec}: its config differs from --model ${fromSpec}'s (${JSON.stringify(b.config)} vs ${JSON.stringify(a.config)})`);
      }
      const { path: tokensPath, batch } = loadBatch(opts.tokens, run, a.config, opts.positions);
      const d1 = b.params.map((w, i) => w - a.params[i]!);
      const [lo, hi] = [-opts.extend, 1 + opts.extend];
      await runPlaneJob({
        layout: a.layout, centre: a.params, d1, d2: new Float32Array(d1.length), batch, metric: opts.metric,
        alpha: linspace(lo, hi, opts.res), beta: new Float32Array([0]),
        metadata: {
          model: a.source,
          to: b.source,
          directions: 'line: d1 = to - model, d2 = 0',
          metric: opts.metric,
          positions: opts.positions,
          tokens: String(batch.B * batch.T),
          tokens_file: tokensPath,
          tokens_shape: `${batch.B}x${batch.T}`,
          range: `${lo}:${hi},0:0`,
          res: `${opts.res}x1`,
        },
      }, { out: opts.out, ...(opts.json ? { json: true } : {}), ...(opts.resume ? { resume: true } : {}) });
    });
}
