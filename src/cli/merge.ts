/** `losscape merge`: joins the shard files of one grid job into its grid file, bit for bit what an unsharded run writes. */
import { type Command } from 'commander';
import { parseSafetensors } from '../io/safetensors.ts';
import { gridToSafetensors } from '../io/formats.ts';
import { mergeShards, shardFromSafetensors } from '../landscape/shards.ts';
import { readBytes, writeFileAtomic } from '../node/files.ts';
import { checkOutput } from './grid.ts';

export function register(program: Command): void {
  program
    .command('merge')
    .description('join the shard files of a grid (losscape grid --shard K/N, every K of 0..N-1) into the grid file')
    .argument('<shards...>', 'shard files, in any order')
    .requiredOption('--out <file>', 'the grid file to write')
    .option('--json', 'print a JSON summary')
    .action((files: string[], opts: { out: string; json?: boolean }) => {
      checkOutput(opts.out);
      const shards = files.map((source) => ({ shard: shardFromSafetensors(parseSafetensors(readBytes(source), source), source), source }));
      const grid = mergeShards(shards);
      writeFileAtomic(opts.out, gridToSafetensors(grid));
      const summary = { out: opts.out, shards: files.length, nx: grid.nx, ny: grid.ny, frames: grid.frames, points: grid.loss.length, fingerprint: grid.metadata.fingerprint };
      if (opts.json) console.log(JSON.stringify(summary));
      else console.log(`merged ${files.length} shards into the ${grid.frames > 1 ? `${grid.frames} frames of ` : ''}${grid.nx}x${grid.ny} grid ${opts.out}`);
    });
}
