/** `losscape info`: the adapter WebGPU gives this process, its limits and features. */
import { type Command } from 'commander';
import { describeAdapter } from '../gpu/context.ts';
import { getPriority } from 'node:os';
import { nodeGpu } from '../node/gpu.ts';

export function register(program: Command): void {
  program
    .command('info')
    .description('print the WebGPU adapter (vendor, architecture, software or not), its limits and features')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const ctx = await nodeGpu();
      const a = ctx.adapter;
      // The main thread's nice value (Linux: per thread), lowered on CPU adapters: see calmHostThread.
      const hostNice = getPriority(process.pid);
      if (opts.json) {
        console.log(JSON.stringify({ adapter: describeAdapter(a), ...a, timestampQuery: ctx.hasTimestamps, hostNice }, null, 2));
        return;
      }
      console.log(`adapter:       ${describeAdapter(a)}`);
      console.log(`vendor:        ${a.vendor || '-'}`);
      console.log(`architecture:  ${a.architecture || '-'}`);
      console.log(`device:        ${a.device || '-'}`);
      console.log(`software:      ${a.isFallback ? 'yes' : 'no'}`);
      console.log(`timestamps:    ${ctx.hasTimestamps ? 'yes' : 'no'}`);
      console.log(`host nice:     ${hostNice} (main thread)`);
      console.log('limits:');
      for (const [k, v] of Object.entries(a.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
      console.log(`features:      ${a.features.join(', ')}`);
    });
}
