/**
 * The losscape command line: one file per verb under src/cli/, each exporting
 * `register(program)`. Usage and input errors exit 2, runtime failures 1;
 * stack traces only with --debug.
 */
import { Command, CommanderError } from 'commander';
import { InputError } from '../model/config.ts';
import { settleGpu } from '../node/gpu.ts';
import { register as registerExport } from './export.ts';
import { register as registerInfo } from './info.ts';
import { register as registerEval } from './eval.ts';
import { register as registerTrain } from './train.ts';
import { register as registerSample } from './sample.ts';
import { register as registerDirections } from './directions.ts';
import { register as registerGrid } from './grid.ts';
import { register as registerLine } from './line.ts';
import { register as registerMerge } from './merge.ts';
import { register as registerBench } from './bench.ts';
import { configureHost } from '../node/gpu.ts';

// The CLI's main thread only records and waits: on a CPU adapter it yields the
// cores to SwiftShader's workers (see calmHostThread in src/node/gpu.ts).
configureHost({ hostNice: 19 });

const program = new Command();
program
  .name('losscape')
  .description('WebGPU engine for neural-network loss landscapes: train, evaluate grids, export, view.')
  .option('--debug', 'print stack traces on errors')
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

const verbs = [
  registerInfo,
  registerEval,
  registerTrain,
  registerSample,
  registerDirections,
  registerGrid,
  registerLine,
  registerMerge,
  registerExport,
  registerBench,
];
for (const register of verbs) register(program);

function debugWanted(): boolean {
  return process.argv.includes('--debug');
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else if (e instanceof InputError) {
    console.error(`losscape: ${e.message}`);
    if (debugWanted()) console.error(e.stack);
    process.exitCode = 2;
  } else {
    console.error(`losscape: ${(e as Error).message ?? String(e)}`);
    if (debugWanted()) console.error((e as Error).stack);
    process.exitCode = 1;
  }
}
// Dawn keeps the event loop alive; leave once the verb and the GPU work it queued are done.
await settleGpu();
process.exit(process.exitCode ?? 0);
