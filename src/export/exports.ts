/**
 * `exportGrid`: every file a grid export asks for, as (path, bytes) pairs,
 * produced one at a time so that the caller (the CLI, the viewer) writes each
 * before the next is built.
 *
 * Frames: PNG, VTK and OBJ hold one frame each, so an animated grid gives one
 * file per frame, numbered `name-0000.ext`, ... (ParaView and Blender open such
 * numbered files as a sequence); NPY holds them all as [frames, ny, nx] and CSV
 * gets a frame column. Choosing one frame makes every format hold that frame
 * alone, under the name given. A PNG sequence shares one value range (the
 * given one, or that of all its frames), so its colours compare across frames.
 */
import type { GridFile } from '../io/formats.ts';
import type { ColormapName } from './colormaps.ts';
import { encodeCsv } from './csv.ts';
import { encodeColormapPng8, encodeHeightmap16, valueRange, type Scale, type ScaleOptions } from './heightmap.ts';
import { encodeNpy } from './npy.ts';
import { encodeObj } from './obj.ts';
import { encodeVtk } from './vtk.ts';

export interface ExportRequest {
  png?: string;
  bits: 8 | 16;
  colormap: ColormapName; // used when bits = 8
  scale: Scale;
  range?: [number, number];
  npy?: string;
  vtk?: string;
  obj?: string;
  csv?: string;
  frame?: number; // one frame of an animated grid; all when undefined
  zScale: number; // OBJ vertical exaggeration
}

export interface ExportFile {
  path: string;
  bytes: Uint8Array | string;
}

/** `out/land.png`, 3 → `out/land-0003.png` (the suffix goes before the extension, if any). */
export function framePath(path: string, frame: number): string {
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  const dot = path.lastIndexOf('.');
  const suffix = `-${String(frame).padStart(4, '0')}`;
  return dot > slash + 1 ? path.slice(0, dot) + suffix + path.slice(dot) : path + suffix;
}

export function* exportGrid(grid: GridFile, req: ExportRequest): Generator<ExportFile> {
  const { nx, ny, frames } = grid;
  const plane = nx * ny;
  if (grid.loss.length !== frames * plane) {
    throw new RangeError(`grid: loss has ${grid.loss.length} values, expected ${frames} x ${ny} x ${nx}`);
  }
  if (req.frame !== undefined && !(Number.isInteger(req.frame) && req.frame >= 0 && req.frame < frames)) {
    throw new RangeError(`frame ${req.frame} out of range: the grid has ${frames} frame(s)`);
  }
  const selected = req.frame !== undefined ? [req.frame] : Array.from({ length: frames }, (_, f) => f);
  const sequence = grid.animated && req.frame === undefined;
  const frameLoss = (f: number): Float32Array => grid.loss.subarray(f * plane, (f + 1) * plane);
  const selectedLoss =
    selected.length === frames ? grid.loss : grid.loss.subarray(selected[0] * plane, (selected[0] + 1) * plane);
  const name = (path: string, f: number): string => (sequence ? framePath(path, f) : path);
  const metric = grid.metadata.metric ? ` metric=${grid.metadata.metric}` : '';
  const title = (f: number): string => `losscape grid${metric}${grid.animated ? ` frame=${f}` : ''}`;

  if (req.png) {
    const scaleOptions: ScaleOptions = {
      scale: req.scale,
      range: req.range ?? valueRange(selectedLoss, req.scale),
      extent: { alpha: [grid.alpha[0], grid.alpha[nx - 1]], beta: [grid.beta[0], grid.beta[ny - 1]] },
    };
    for (const f of selected) {
      const metadata = grid.animated ? { ...grid.metadata, frame: String(f) } : grid.metadata;
      const opts = { ...scaleOptions, metadata };
      const bytes =
        req.bits === 16
          ? encodeHeightmap16(frameLoss(f), nx, ny, opts)
          : encodeColormapPng8(frameLoss(f), nx, ny, { ...opts, colormap: req.colormap });
      yield { path: name(req.png, f), bytes };
    }
  }
  if (req.npy) {
    const shape = sequence ? [frames, ny, nx] : [ny, nx];
    yield { path: req.npy, bytes: encodeNpy(selectedLoss, shape) };
  }
  if (req.vtk) {
    for (const f of selected) {
      yield { path: name(req.vtk, f), bytes: encodeVtk({ ...grid, loss: frameLoss(f) }, title(f)) };
    }
  }
  if (req.obj) {
    for (const f of selected) {
      yield { path: name(req.obj, f), bytes: encodeObj({ ...grid, loss: frameLoss(f) }, req.zScale, title(f)) };
    }
  }
  if (req.csv) {
    yield { path: req.csv, bytes: encodeCsv({ ...grid, loss: selectedLoss }, sequence ? selected : undefined) };
  }
}
