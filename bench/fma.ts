/**
 * Prints the adapter's FMA ceiling as JSON (SPEC section 6).
 * Usage: npx tsx bench/fma.ts [seconds]
 */
import { describeAdapter } from '../src/gpu/context.ts';
import { measureFmaCeiling } from '../src/gpu/fma.ts';
import { nodeGpu } from '../src/node/gpu.ts';

const seconds = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
if (seconds !== undefined && !(seconds > 0)) {
  console.error(`bench/fma.ts: seconds must be a positive number, got ${JSON.stringify(process.argv[2])}`);
  process.exit(2);
}
const ctx = await nodeGpu();
const ceiling = await measureFmaCeiling(ctx, seconds === undefined ? {} : { seconds });
console.log(JSON.stringify({ adapter: describeAdapter(ctx.adapter), hasTimestamps: ctx.hasTimestamps, ...ceiling }, null, 2));
// Dawn keeps the event loop alive.
process.exit(0);
