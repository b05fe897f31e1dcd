/** `losscape eval`: the mean loss of a model on a tokens file, computed by the WGSL forward. */
import { type Command } from 'commander';
import { describeAdapter } from '../gpu/context.ts';
import { KernelCache } from '../gpu/kernel.ts';
import { gpuLoss } from '../model/gpu-forward.ts';
import { loadModel, loadTokens } from '../node/files.ts';
import { nodeGpu } from '../node/gpu.ts';
import { type Metric } from '../../shaders/loss.ts';
import { parseMetric } from './options.ts';

export function register(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model on a tokens file on the GPU and print the mean loss')
    .requiredOption('--model <path>', 'model directory (config.json + model.safetensors), run directory (last checkpoint) or checkpoint file with config.json beside it')
    .requiredOption('--tokens <file>', 'tokens file: safetensors with `tokens` [B, T+1] (I32/I64), optional `mask` [B, T]')
    .option('--metric <m>', 'ce (cross-entropy), acc (top-1 accuracy) or mse (softmax vs one-hot)', parseMetric, 'ce' as Metric)
    .option('--json', 'print {"loss", "tokens", "adapter", ...} as JSON')
    .action(async (opts: { model: string; tokens: string; metric: Metric; json?: boolean }) => {
      const model = loadModel(opts.model);
      const batch = loadTokens(opts.tokens, model.config);
      const ctx = await nodeGpu();
      const loss = await gpuLoss(ctx, new KernelCache(ctx), model.layout, model.params, batch, opts.metric);
      const tokens = batch.B * batch.T;
      if (opts.json) {
        console.log(JSON.stringify({ loss, metric: opts.metric, tokens, sequences: batch.B, model: model.source, adapter: describeAdapter(ctx.adapter) }));
      } else {
        console.log(`${opts.metric} ${loss.toPrecision(7)} over ${tokens} tokens (${batch.B} x ${batch.T}) of ${opts.tokens}, ${model.source}, on ${describeAdapter(ctx.adapter)}`);
      }
    });
}
