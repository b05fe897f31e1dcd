/**
 * `losscape directions`: the two directions of a landscape plane, every kind
 * of SPEC section 4, written as a directions file with their metadata
 * (kind, normalisation, seed, centre, norms, cosine, explained variance or
 * eigenvalues). `buildDirections` is shared with `losscape grid --kind`.
 */
import { type Command } from 'commander';
import { InputError } from '../model/config.ts';
import { describeAdapter } from '../gpu/context.ts';
import { type ParamLayout } from '../model/params.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { type Directions, type TokenBatch, directionsFromSafetensors, directionsToSafetensors } from '../io/formats.ts';
import { axisDirection, directionStats, makeDirections, parseMask } from '../landscape/directions.ts';
import { pcaDirections } from '../landscape/pca.ts';
import { GPU_RELATIVE_STEP, gpuGradientFunction, hessianDirections, referenceGradient, selectionIndices } from '../landscape/hessian.ts';
import { KernelCache } from '../gpu/kernel.ts';
import { nodeGpu } from '../node/gpu.ts';
import { type Run, loadCheckpoint } from '../landscape/run.ts';
import { type LoadedModel, loadModel, loadTokens, readBytes, writeFileAtomic } from '../node/files.ts';
import { loadModelSpec, loadRun, nodeRunReader } from '../node/run.ts';
import { parseChoice, parseInteger } from './options.ts';
import { ENGINE } from './version.ts';

export const DIRECTION_KINDS = ['random', 'filter', 'layer', 'model', 'pca', 'hessian', 'axis', 'file'] as const;
export type DirectionKindFlag = (typeof DIRECTION_KINDS)[number];
export const parseKind = parseChoice<DirectionKindFlag>('--kind', DIRECTION_KINDS);
export type GradientFlag = 'gpu' | 'reference';
export const parseGradient = parseChoice<GradientFlag>('--gradient', ['gpu', 'reference']);

export interface DirectionsRequest {
  kind: DirectionKindFlag;
  seed: number;
  includeVectors: boolean;
  mask?: string;
  /** `NAME[:INDEX],NAME[:INDEX]` for kind axis. */
  axis?: string;
  /** A directions file for kind file. */
  from?: string;
  /** The run whose checkpoints give pca directions. */
  run?: Run | null;
  /** The batch whose loss Hessian gives hessian directions. */
  tokens?: TokenBatch | null;
  /** Most Lanczos steps for hessian. */
  iterations?: number;
  /** The gradient behind hessian's Hessian-vector products (default gpu). */
  gradient?: GradientFlag;
}

/** The flags that shape computed directions, the same for `losscape directions` and `losscape grid --kind`. */
export interface DirectionFlags {
  seed: number;
  includeVectors?: boolean;
  mask?: string;
  axis?: string;
  iterations?: number;
  gradient?: GradientFlag;
}

/**
 * Declares the DirectionFlags on `cmd`. `when` opens the help of each flag
 * that applies to some kinds only: `losscape grid` says "with --kind ", since
 * its directions may come from a file instead.
 */
export function addDirectionOptions(cmd: Command, when: '' | 'with --kind '): Command {
  // "axis: ", "hessian: "; for grid "with --kind axis: " and, for all kinds, "with --kind: ".
  const only = (kinds: string): string => (when + kinds).trimEnd() + (when || kinds ? ': ' : '');
  return cmd
    .option('--seed <s>', 'seed of random draws (random, filter, layer, model) and of the Lanczos start (hessian)', parseInteger('--seed', 0), 0)
    .option('--include-vectors', `${only('')}give 1-D tensors (biases, LayerNorm) a direction too (default: zero)`)
    .option('--mask <spec>', `${only('')}restrict the directions to tensors: terms all, embeddings, blocks:0-1, tensor:GLOB, joined by ";"`)
    .option('--axis <a,b>', `${only('axis')}NAME[:INDEX],NAME[:INDEX] (flat index into the tensor, default 0)`)
    .option('--iterations <n>', `${only('hessian')}most Lanczos steps (two gradients each; default 100)`, parseInteger('--iterations', 2))
    .option('--gradient <g>', `${only('hessian')}gpu (float32, default) or reference (float64 TypeScript on the CPU, for small models)`, parseGradient);
}

/** The DirectionsRequest fields that the DirectionFlags give (absent flags stay absent). */
export function directionRequestFields(opts: DirectionFlags): Pick<DirectionsRequest, 'seed' | 'includeVectors' | 'mask' | 'axis' | 'iterations' | 'gradient'> {
  return {
    seed: opts.seed, includeVectors: opts.includeVectors ?? false,
    ...(opts.mask !== undefined ? { mask: opts.mask } : {}), ...(opts.axis !== undefined ? { axis: opts.axis } : {}),
    ...(opts.iterations !== undefined ? { iterations: opts.iterations } : {}), ...(opts.gradient !== undefined ? { gradient: opts.gradient } : {}),
  };
}

/** One `NAME[:INDEX]` of --axis: the flat (row-major) element INDEX, default 0, of the tensor NAME. */
function axisTerm(layout: ParamLayout, term: string): { name: string; index: number; d: Float32Array } {
  const m = /^(.+?)(?::(\d+))?$/.exec(term.trim());
  if (!m || m[1]!.length === 0) throw new InputError(`--axis: expected NAME[:INDEX], got "${term}"`);
  const name = m[1]!;
  const index = m[2] === undefined ? 0 : Number(m[2]);
  if (!layout.byName.has(name)) {
    throw new InputError(`--axis: no tensor named "${name}" in this model (names look like transformer.h.0.attn.c_attn.weight; see losscape directions --help)`);
  }
  return { name, index, d: axisDirection(layout, name, index) };
}

function checkFinite(dirs: Directions, source: string): void {
  for (const key of ['d1', 'd2'] as const) {
    const bad = dirs[key].findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new InputError(`${source}: direction ${key} has the non-finite value ${dirs[key][bad]} at flat index ${bad}`);
  }
}

/** A directions file for the model of `layout`; shapes must match the model (InputError naming the file and tensor otherwise). */
export function loadDirections(layout: ParamLayout, path: string): Directions {
  const dirs = directionsFromSafetensors(layout, parseSafetensors(readBytes(path), path), path);
  checkFinite(dirs, path);
  return dirs;
}

/**
 * The directions of `req.kind` at `centre` (the weights of `centreName`),
 * with metadata. random/filter/layer/model are seeded draws (SPEC section 4);
 * pca uses every checkpoint of `req.run`; hessian the (mask-weighted)
 * cross-entropy of `req.tokens`, through the GPU gradient (or the float64
 * TypeScript reference); axis unit vectors along two named elements; file a given file.
 * --mask and --include-vectors restrict pca and hessian directions as they
 * do random ones.
 */
export async function buildDirections(layout: ParamLayout, centre: Float32Array, centreName: string, req: DirectionsRequest): Promise<Directions> {
  const mask = req.mask === undefined ? undefined : parseMask(req.mask, layout);
  const selection = { include_vectors: String(req.includeVectors), mask: req.mask ?? 'all' };
  let dirs: Directions;
  switch (req.kind) {
    case 'random':
    case 'filter':
    case 'layer':
    case 'model': {
      const made = makeDirections(layout, centre, { kind: req.kind, seed: req.seed, includeVectors: req.includeVectors, ...(req.mask !== undefined ? { mask: req.mask } : {}) });
      dirs = { d1: made.d1, d2: made.d2, metadata: { ...made.metadata } };
      break;
    }
    case 'pca': {
      if (!req.run) throw new InputError('--kind pca: needs --run RUN (the principal directions of its checkpoints around the centre)');
      const support = selectionIndices(layout, req.includeVectors, mask);
      const gather = (flat: Float32Array): Float32Array => Float32Array.from(support, (p) => flat[p]!);
      const run = req.run;
      const checkpoints = run.checkpoints.map((c) => gather(loadCheckpoint(run, c, nodeRunReader)));
      const pca = pcaDirections(checkpoints, gather(centre));
      const scatter = (v: Float32Array): Float32Array => {
        const d = new Float32Array(layout.totalFloats);
        support.forEach((p, s) => (d[p] = v[s]!));
        return d;
      };
      dirs = {
        d1: scatter(pca.d1), d2: scatter(pca.d2),
        metadata: {
          kind: 'pca', normalisation: 'unit', seed: 'none', ...selection, run: run.dir, checkpoints: String(run.checkpoints.length),
          explained_variance_d1: String(pca.explainedVariance[0]), explained_variance_d2: String(pca.explainedVariance[1]),
        },
      };
      break;
    }
    case 'hessian': {
      if (!req.tokens) throw new InputError('--kind hessian: needs an evaluation batch: --tokens FILE or --run RUN (its eval.safetensors)');
      const onGpu = (req.gradient ?? 'gpu') === 'gpu';
      const ctx = onGpu ? await nodeGpu() : null;
      const gpu = ctx ? await gpuGradientFunction(ctx, new KernelCache(ctx), layout, req.tokens) : null;
      let h;
      try {
        h = await hessianDirections(layout, centre, gpu ? gpu.gradient : referenceGradient(layout, req.tokens), {
          includeVectors: req.includeVectors, ...(mask ? { mask } : {}), seed: req.seed, ...(req.iterations ? { iterations: req.iterations } : {}),
          ...(gpu ? { relativeStep: GPU_RELATIVE_STEP } : {}),
        });
      } finally {
        gpu?.destroy();
      }
      dirs = {
        d1: h.d1, d2: h.d2,
        metadata: {
          kind: 'hessian', normalisation: 'unit', seed: String(req.seed), ...selection,
          eigenvalue_d1: String(h.eigenvalues[0]), eigenvalue_d2: String(h.eigenvalues[1]),
          eigen_residual_d1: String(h.residuals[0]), eigen_residual_d2: String(h.residuals[1]),
          lanczos_steps: String(h.iterations), hvp_epsilon: String(h.epsilon),
          gradient: ctx ? `GPU (float32) on ${describeAdapter(ctx.adapter)}` : 'TypeScript reference (float64, CPU)',
          tokens: String(req.tokens.B * req.tokens.T),
        },
      };
      break;
    }
    case 'axis': {
      const terms = (req.axis ?? '').split(',');
      if (req.axis === undefined || terms.length !== 2) throw new InputError('--kind axis: needs --axis NAME[:INDEX],NAME[:INDEX] (one element for d1, one for d2)');
      const [a, b] = [axisTerm(layout, terms[0]!), axisTerm(layout, terms[1]!)];
      if (a.name === b.name && a.index === b.index) throw new InputError(`--axis: d1 and d2 are the same element ${a.name}:${a.index}`);
      dirs = { d1: a.d, d2: b.d, metadata: { kind: 'axis', normalisation: 'unit', seed: 'none', axis_d1: `${a.name}:${a.index}`, axis_d2: `${b.name}:${b.index}` } };
      break;
    }
    case 'file': {
      if (!req.from) throw new InputError('--kind file: needs --from FILE (a directions file with d1.<param> and d2.<param>)');
      const given = loadDirections(layout, req.from);
      const original = given.metadata.kind;
      dirs = { ...given, metadata: { ...given.metadata, kind: 'file', from: req.from, ...(original ? { from_kind: original } : {}) } };
      break;
    }
  }
  return { ...dirs, metadata: { ...dirs.metadata, centre: centreName, ...directionStats(dirs.d1, dirs.d2), engine: ENGINE } };
}

/** The centre of a plane: --model (a model, checkpoint or RUN:STEP), else the run's final checkpoint. */
export function loadCentre(modelSpec: string | undefined, run: Run | null): LoadedModel {
  if (modelSpec !== undefined) {
    const model = loadModelSpec(modelSpec);
    if (run && JSON.stringify(model.config) !== JSON.stringify(run.config)) {
      throw new InputError(`${model.source}: the model's config differs from the run ${run.dir}'s config.json (${JSON.stringify(model.config)} vs ${JSON.stringify(run.config)})`);
    }
    return model;
  }
  if (!run) throw new InputError('needs --model PATH or --run RUN (whose final checkpoint is then the centre)');
  return loadModel(run.checkpoints[run.checkpoints.length - 1]!.path);
}

interface DirectionsFlags extends DirectionFlags {
  model?: string;
  run?: string;
  kind: DirectionKindFlag;
  from?: string;
  tokens?: string;
  out: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('directions')
    .description('compute the two directions of a landscape plane and write them as a directions file')
    .option('--model <path>', 'centre: model directory, checkpoint file, run directory (last checkpoint), or RUN:STEP / RUN:init / RUN:final')
    .option('--run <dir>', 'training run: its checkpoints (pca), its eval.safetensors (hessian), its final checkpoint (the centre without --model)')
    .option('--kind <k>', `${DIRECTION_KINDS.join('|')}; filter = random with Li et al. filter normalisation`, parseKind, 'filter' as DirectionKindFlag);
  addDirectionOptions(cmd, '')
    .option('--from <file>', 'file: a directions file to check against the model and re-write with metadata')
    .option('--tokens <file>', 'hessian: the evaluation batch (default: the run\'s eval.safetensors)')
    .requiredOption('--out <file>', 'the directions file to write (safetensors: d1.<param>, d2.<param>)')
    .option('--json', 'print the metadata as JSON')
    .action(async (opts: DirectionsFlags) => {
      const run = opts.run !== undefined ? loadRun(opts.run) : null;
      const model = loadCentre(opts.model, run);
      const tokensPath = opts.tokens ?? (opts.kind === 'hessian' ? run?.evalPath ?? undefined : undefined);
      const dirs = await buildDirections(model.layout, model.params, model.source, {
        kind: opts.kind, ...directionRequestFields(opts), run,
        tokens: tokensPath !== undefined ? loadTokens(tokensPath, model.config) : null,
        ...(opts.from !== undefined ? { from: opts.from } : {}),
      });
      writeFileAtomic(opts.out, directionsToSafetensors(model.layout, dirs));
      if (opts.json) {
        console.log(JSON.stringify({ out: opts.out, ...dirs.metadata }));
      } else {
        const m = dirs.metadata;
        const extra = m.explained_variance_d1 !== undefined
          ? `, explained variance ${Number(m.explained_variance_d1).toFixed(4)} / ${Number(m.explained_variance_d2).toFixed(4)}`
          : m.eigenvalue_d1 !== undefined ? `, eigenvalues ${Number(m.eigenvalue_d1).toPrecision(6)} / ${Number(m.eigenvalue_d2).toPrecision(6)}` : '';
        console.log(`${m.kind} directions at ${m.centre}: |d1| ${Number(m.norm_d1).toPrecision(6)}, |d2| ${Number(m.norm_d2).toPrecision(6)}, cosine ${Number(m.cosine).toFixed(4)}${extra} -> ${opts.out}`);
      }
    });
}
