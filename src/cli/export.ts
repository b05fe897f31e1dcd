/**
 * `losscape export GRID`: writes a grid file as PNG (16-bit heightmap or 8-bit
 * colour map), numpy .npy, VTK, OBJ and CSV. This file only parses the flags
 * and writes files; the formats live in src/export/.
 */
import { type Command } from 'commander';
import { InputError } from '../model/config.ts';
import { COLORMAP_NAMES, isColormapName, type ColormapName } from '../export/colormaps.ts';
import { exportGrid, type ExportRequest } from '../export/exports.ts';
import { SCALES, type Scale } from '../export/heightmap.ts';
import { loadGrid, writeFileAtomic } from '../node/files.ts';

export interface ExportFlags {
  png?: string;
  colormap?: string;
  scale?: string;
  bits?: string;
  npy?: string;
  vtk?: string;
  obj?: string;
  csv?: string;
  range?: string;
  frame?: string;
  zScale?: string;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseNumber(text: string, flag: string, what: string): number {
  const v = Number(text);
  if (!NUMBER.test(text.trim()) || !Number.isFinite(v)) throw new InputError(`${flag} "${text}": expected ${what}`);
  return v;
}

/** Checks the flags and fills in defaults; every error names its flag and what it accepts. */
export function parseExportFlags(flags: ExportFlags): ExportRequest {
  if (![flags.png, flags.npy, flags.vtk, flags.obj, flags.csv].some((f) => f !== undefined)) {
    throw new InputError('nothing to export: give at least one of --png, --npy, --vtk, --obj, --csv FILE');
  }
  const pngFlags = { '--colormap': flags.colormap, '--scale': flags.scale, '--bits': flags.bits, '--range': flags.range };
  for (const [flag, value] of Object.entries(pngFlags)) {
    if (value !== undefined && flags.png === undefined) throw new InputError(`${flag} applies to PNG output: add --png FILE`);
  }
  if (flags.zScale !== undefined && flags.obj === undefined) throw new InputError('--z-scale applies to OBJ output: add --obj FILE');

  let colormap: ColormapName = 'viridis';
  if (flags.colormap !== undefined) {
    if (!isColormapName(flags.colormap)) {
      throw new InputError(`--colormap "${flags.colormap}": expected one of ${COLORMAP_NAMES.join(', ')}`);
    }
    colormap = flags.colormap;
  }
  const scale = flags.scale ?? 'linear';
  if (!(SCALES as readonly string[]).includes(scale)) {
    throw new InputError(`--scale "${scale}": expected one of ${SCALES.join(', ')}`);
  }
  if (flags.bits !== undefined && flags.bits !== '16' && flags.bits !== '8') {
    throw new InputError(`--bits "${flags.bits}": expected 16 (grayscale heightmap) or 8 (colour-mapped)`);
  }
  const bits = flags.bits === '16' ? 16 : flags.bits === '8' || flags.colormap !== undefined ? 8 : 16;
  if (bits === 16 && flags.colormap !== undefined) {
    throw new InputError('--colormap applies to 8-bit PNGs: use --bits 8 (or leave --bits out)');
  }

  let range: [number, number] | undefined;
  if (flags.range !== undefined) {
    const expected = 'LO:HI, two numbers with LO < HI';
    const parts = flags.range.split(':');
    if (parts.length !== 2) throw new InputError(`--range "${flags.range}": expected ${expected}`);
    range = [parseNumber(parts[0], '--range', expected), parseNumber(parts[1], '--range', expected)];
    if (!(range[0] < range[1])) throw new InputError(`--range "${flags.range}": expected LO < HI`);
    if (scale === 'log' && range[0] <= 0) throw new InputError(`--range "${flags.range}": --scale log needs LO > 0`);
  }

  let frame: number | undefined;
  if (flags.frame !== undefined) {
    if (!/^\d+$/.test(flags.frame)) throw new InputError(`--frame "${flags.frame}": expected a frame number 0, 1, 2, ...`);
    frame = Number(flags.frame);
  }

  const zScale = flags.zScale === undefined ? 1 : parseNumber(flags.zScale, '--z-scale', 'a non-zero number');
  if (zScale === 0) throw new InputError(`--z-scale "${flags.zScale}": expected a non-zero number`);

  return {
    png: flags.png,
    bits,
    colormap,
    scale: scale as Scale,
    range,
    npy: flags.npy,
    vtk: flags.vtk,
    obj: flags.obj,
    csv: flags.csv,
    frame,
    zScale,
  };
}

export function register(program: Command): void {
  program
    .command('export')
    .description('export a grid file as PNG (16-bit heightmap or 8-bit colour map), .npy, VTK, OBJ and CSV')
    .argument('<grid>', 'grid file (.safetensors) written by `losscape grid`')
    .option('--png <file>', 'PNG image (top row = highest beta); animated grids: file-0000.png, ...')
    .option('--bits <bits>', 'PNG depth: 16 (grayscale heightmap) or 8 (colour-mapped); default 16, or 8 with --colormap')
    .option('--colormap <name>', `8-bit PNG colour map: ${COLORMAP_NAMES.join('|')} (default viridis)`)
    .option('--scale <scale>', 'PNG value scale: linear|log (log10 of the loss; default linear)')
    .option('--range <lo:hi>', 'PNG value range (default: min:max of the finite values)')
    .option('--npy <file>', 'numpy .npy, float32 [ny, nx] or [frames, ny, nx]')
    .option('--vtk <file>', 'VTK legacy structured grid for ParaView; animated grids: file-0000.vtk, ...')
    .option('--obj <file>', 'OBJ triangle mesh for Blender; animated grids: file-0000.obj, ...')
    .option('--z-scale <factor>', 'OBJ vertical exaggeration (height = factor * loss; default 1)')
    .option('--csv <file>', 'CSV rows alpha,beta,loss (frame,alpha,beta,loss for animated grids)')
    .option('--frame <k>', 'export only frame K of an animated grid, under the names given')
    .action((gridPath: string, flags: ExportFlags) => {
      const request = parseExportFlags(flags);
      const grid = loadGrid(gridPath);
      if (request.frame !== undefined && request.frame >= grid.frames) {
        throw new InputError(`--frame ${request.frame}: ${gridPath} has ${grid.frames} frame(s), 0..${grid.frames - 1}`);
      }
      try {
        for (const file of exportGrid(grid, request)) {
          writeFileAtomic(file.path, file.bytes);
          console.log(`wrote ${file.path}`);
        }
      } catch (e) {
        // e.g. a log scale over a grid without positive values: say which grid.
        if (e instanceof InputError) throw new InputError(`${gridPath}: ${e.message}`);
        throw e;
      }
    });
}
