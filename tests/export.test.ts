import { Command } from 'commander';
import { decode as decodePng } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { parseExportFlags, register } from '../src/cli/export.ts';
import { COLORMAP_NAMES, NONFINITE_RGB, colormap, colormapTable, type ColormapName } from '../src/export/colormaps.ts';
import { encodeCsv } from '../src/export/csv.ts';
import { exportGrid, framePath, type ExportFile, type ExportRequest } from '../src/export/exports.ts';
import { decodeHeightmap16, encodeColormapPng8, encodeHeightmap16, valueRange } from '../src/export/heightmap.ts';
import { encodeNpy } from '../src/export/npy.ts';
import { encodeObj } from '../src/export/obj.ts';
import { f32String } from '../src/export/text.ts';
import { encodeVtk } from '../src/export/vtk.ts';
import type { GridFile } from '../src/io/formats.ts';
import { InputError } from '../src/model/config.ts';
import { Rng } from '../src/util/rng.ts';

// A non-square grid over an asymmetric range (SPEC section 8): a swapped axis or a flipped row shows.
const NX = 7;
const NY = 5;
const A0 = -0.5;
const A1 = 1;
const B0 = -1;
const B1 = 0.25;

function linspace(lo: number, hi: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, k) => lo + ((hi - lo) * k) / (n - 1));
}

/** An asymmetric positive surface, with a NaN block, a +Inf and a -Inf when asked. */
function makeGrid(frames = 1, nonFinite = true): GridFile {
  const alpha = linspace(A0, A1, NX);
  const beta = linspace(B0, B1, NY);
  const loss = new Float32Array(frames * NY * NX);
  for (let f = 0; f < frames; f++) {
    for (let j = 0; j < NY; j++) {
      for (let i = 0; i < NX; i++) {
        loss[(f * NY + j) * NX + i] = 2 + 1.5 * alpha[i] ** 2 + 0.7 * beta[j] + 0.3 * alpha[i] * beta[j] + 0.25 * f;
      }
    }
    if (nonFinite) {
      for (const [i, j] of [[5, 3], [6, 3], [5, 4], [6, 4]]) loss[(f * NY + j) * NX + i] = NaN;
      loss[(f * NY + 0) * NX + 0] = Infinity;
      loss[(f * NY + 0) * NX + 1] = -Infinity;
    }
  }
  return { nx: NX, ny: NY, frames, animated: frames > 1, alpha, beta, loss, metadata: { metric: 'ce', model: 'tiny' } };
}

function finiteMinMax(values: ArrayLike<number>): [number, number] {
  const finite = Array.from(values).filter(Number.isFinite);
  return [Math.min(...finite), Math.max(...finite)];
}

function hex(h: string): number[] {
  return [0, 2, 4].map((k) => parseInt(h.slice(k, k + 2), 16));
}

function expectSameValue(actual: number, expected: number): void {
  if (Number.isNaN(expected)) expect(actual).toBeNaN();
  else expect(actual).toBe(expected);
}

describe('colour maps', () => {
  it('start and end at the published colours', () => {
    const ends: Record<ColormapName, [number[], number[]]> = {
      viridis: [hex('440154'), hex('fde725')],
      magma: [hex('000004'), hex('fcfdbf')],
      inferno: [hex('000004'), hex('fcffa4')],
      plasma: [hex('0d0887'), hex('f0f921')],
      // Google's turbo table: first (0.18995, 0.07176, 0.23217), last (0.47960, 0.01583, 0.01055).
      turbo: [[48, 18, 59], [122, 4, 3]],
      gray: [[0, 0, 0], [255, 255, 255]],
    };
    for (const name of COLORMAP_NAMES) {
      expect(colormap(name)(0), name).toEqual(ends[name][0]);
      expect(colormap(name)(1), name).toEqual(ends[name][1]);
      // clamped outside [0, 1]
      expect(colormap(name)(-3)).toEqual(ends[name][0]);
      expect(colormap(name)(7)).toEqual(ends[name][1]);
    }
  });

  it('hit the published midpoints and interpolate between entries', () => {
    for (const [c, want] of colormap('viridis')(128 / 255).map((c, k) => [c, hex('21918c')[k]])) expect(Math.abs(c - want)).toBeLessThanOrEqual(1);
    expect(colormap('gray')(0.5)).toEqual([128, 128, 128]); // 127.5 rounds up
    expect(colormap('gray')(0.25)).toEqual([64, 64, 64]); // 63.75
    for (const name of COLORMAP_NAMES) {
      const map = colormap(name);
      for (const k of [0, 37, 128, 254]) {
        const a = map(k / 255);
        const b = map((k + 1) / 255);
        const mid = map((k + 0.5) / 255);
        for (let c = 0; c < 3; c++) expect(Math.abs(mid[c] - (a[c] + b[c]) / 2)).toBeLessThanOrEqual(0.5);
      }
    }
  });

  it('viridis, magma, inferno and plasma grow in luminance', () => {
    const lin = (c: number): number => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const luminance = (rgb: ArrayLike<number>): number => 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
    for (const name of ['viridis', 'magma', 'inferno', 'plasma'] as const) {
      const map = colormap(name);
      let prev = luminance(map(0));
      for (let k = 1; k <= 64; k++) {
        const l = luminance(map(k / 64));
        expect(l, `${name} at ${k}/64`).toBeGreaterThan(prev - 1e-3);
        prev = l;
      }
      expect(luminance(map(1)) - luminance(map(0))).toBeGreaterThan(0.5);
    }
  });

  it('never produce the non-finite marker colour; NaN gives it', () => {
    for (const name of COLORMAP_NAMES) {
      const map = colormap(name);
      for (let k = 0; k <= 510; k++) {
        const rgb = map(k / 510);
        const l1 = Math.abs(rgb[0] - NONFINITE_RGB[0]) + Math.abs(rgb[1] - NONFINITE_RGB[1]) + Math.abs(rgb[2] - NONFINITE_RGB[2]);
        expect(l1, `${name} at ${k}/510`).toBeGreaterThan(100);
      }
      expect(map(NaN)).toEqual(NONFINITE_RGB);
    }
  });

  it('give RGBA tables sampled at i / (n - 1)', () => {
    for (const n of [256, 7]) {
      for (const name of COLORMAP_NAMES) {
        const table = colormapTable(name, n);
        expect(table.length).toBe(4 * n);
        for (let i = 0; i < n; i++) {
          expect(Array.from(table.subarray(4 * i, 4 * i + 3))).toEqual(colormap(name)(i / (n - 1)));
          expect(table[4 * i + 3]).toBe(255);
        }
      }
    }
    expect(() => colormapTable('viridis', 1)).toThrow(/n must be an integer >= 2/);
  });
});

describe('16-bit heightmap PNG', () => {
  it('round-trips a linear grid within half a quantisation step, NaN and +-Inf kept', () => {
    const grid = makeGrid();
    const png = encodeHeightmap16(grid.loss, NX, NY, { scale: 'linear' });
    const back = decodeHeightmap16(png, 'test.png');
    const [lo, hi] = finiteMinMax(grid.loss);
    expect([back.nx, back.ny, back.scale]).toEqual([NX, NY, 'linear']);
    expect(back.range).toEqual([lo, hi]);
    const halfStep = (0.5 * (hi - lo)) / 65535;
    for (let k = 0; k < NX * NY; k++) {
      const v = grid.loss[k];
      if (Number.isFinite(v)) expect(Math.abs(back.values[k] - v), `value ${k}`).toBeLessThanOrEqual(halfStep * 1.001 + 4e-7 * Math.abs(v));
      else expectSameValue(back.values[k], v);
    }
  });

  it('puts the highest beta in the top row, alpha to the right, and marks non-finite values with alpha 0', () => {
    const grid = makeGrid();
    const png = decodePng(encodeHeightmap16(grid.loss, NX, NY, { scale: 'linear' }));
    const [lo, hi] = finiteMinMax(grid.loss);
    expect([png.width, png.height, png.depth, png.channels]).toEqual([NX, NY, 16, 2]);
    for (let row = 0; row < NY; row++) {
      for (let i = 0; i < NX; i++) {
        const v = grid.loss[(NY - 1 - row) * NX + i]; // beta[NY - 1 - row]
        const px = 2 * (row * NX + i);
        if (Number.isFinite(v)) {
          expect(png.data[px]).toBe(Math.round(((v - lo) / (hi - lo)) * 65535));
          expect(png.data[px + 1]).toBe(65535);
        } else {
          expect(png.data[px + 1]).toBe(0);
          expect(png.data[px]).toBe(Number.isNaN(v) ? 32768 : v > 0 ? 65535 : 0);
        }
      }
    }
    expect(png.text['losscape:min']).toBe(String(lo));
    expect(png.text['losscape:max']).toBe(String(hi));
    expect(png.text['losscape:scale']).toBe('linear');
    expect(png.text['losscape:orientation']).toMatch(/top row = highest beta/);
    expect(png.text['losscape:nonfinite']).toMatch(/alpha 0 .*0 = -Inf, 32768 = NaN, 65535 = \+Inf/);
    expect(png.text['losscape:nonfinite_count']).toBe('6');
  });

  it('is plain 16-bit gray when every value is finite, with extent and metadata chunks', () => {
    const grid = makeGrid(1, false);
    const bytes = encodeHeightmap16(grid.loss, NX, NY, {
      scale: 'linear',
      extent: { alpha: [A0, A1], beta: [B0, B1] },
      metadata: { metric: 'ce', note: 'Straße' },
    });
    const png = decodePng(bytes);
    expect(png.channels).toBe(1);
    expect(png.text['losscape:nonfinite']).toBe('none');
    expect(png.text['losscape:alpha']).toBe('-0.5:1');
    expect(png.text['losscape:beta']).toBe('-1:0.25');
    expect(JSON.parse(png.text['losscape:metadata'])).toEqual({ metric: 'ce', note: 'Straße' });
    const back = decodeHeightmap16(bytes);
    const [lo, hi] = finiteMinMax(grid.loss);
    for (let k = 0; k < NX * NY; k++) expect(Math.abs(back.values[k] - grid.loss[k])).toBeLessThanOrEqual((0.5 * (hi - lo)) / 65535 + 1e-6);
  });

  it('round-trips a log10 grid within half a step in log space, clamping outside the given range', () => {
    const grid = makeGrid();
    // losses span about 1.3..3.1: this range clamps at both ends
    const lo = 1.5;
    const hi = 3;
    const bytes = encodeHeightmap16(grid.loss, NX, NY, { scale: 'log', range: [lo, hi] });
    const back = decodeHeightmap16(bytes);
    expect(back.scale).toBe('log');
    expect(back.range).toEqual([lo, hi]);
    const halfStep = (0.5 * (Math.log10(hi) - Math.log10(lo))) / 65535;
    let clamped = 0;
    for (let k = 0; k < NX * NY; k++) {
      const v = grid.loss[k];
      if (!Number.isFinite(v)) {
        expectSameValue(back.values[k], v);
      } else if (v < lo || v > hi) {
        clamped++;
        expect(back.values[k]).toBeCloseTo(v < lo ? lo : hi, 5);
      } else {
        expect(Math.abs(Math.log10(back.values[k]) - Math.log10(v)), `value ${k}`).toBeLessThanOrEqual(halfStep * 1.001 + 1e-7);
      }
    }
    expect(Array.from(grid.loss).some((v) => v < lo)).toBe(true);
    expect(Array.from(grid.loss).some((v) => v > hi)).toBe(true);
    expect(decodePng(bytes).text['losscape:clamped']).toBe(String(clamped));
  });

  it('log scale: default range skips values <= 0, a range with LO <= 0 is refused', () => {
    const values = Float32Array.from([-1, 0, 0.5, 4, NaN, 2]);
    expect(valueRange(values, 'log')).toEqual([0.5, 4]);
    expect(valueRange(values, 'linear')).toEqual([-1, 4]);
    expect(() => encodeHeightmap16(values, 3, 2, { scale: 'log', range: [0, 4] })).toThrow(InputError);
    expect(() => valueRange(Float32Array.from([-1, 0, NaN]), 'log')).toThrow(/no finite positive value/);
    expect(() => valueRange(Float32Array.from([NaN, Infinity]), 'linear')).toThrow(/no finite value/);
  });

  it('decodes a constant grid to its value', () => {
    const values = new Float32Array(6).fill(3.25);
    const back = decodeHeightmap16(encodeHeightmap16(values, 3, 2, { scale: 'linear' }));
    expect(Array.from(back.values)).toEqual(Array.from(values));
  });

  it('refuses PNGs that are not losscape heightmaps', () => {
    const grid = makeGrid();
    const rgba = encodeColormapPng8(grid.loss, NX, NY, { scale: 'linear', colormap: 'viridis' });
    expect(() => decodeHeightmap16(rgba, 'pic.png')).toThrow(/pic\.png: not a losscape 16-bit heightmap/);
    expect(() => decodeHeightmap16(new Uint8Array([1, 2, 3]), 'junk.png')).toThrow(/junk\.png: not a readable PNG/);
  });
});

describe('8-bit colour-mapped PNG', () => {
  it('draws each value with its colour, top row = highest beta, non-finite in magenta', () => {
    const grid = makeGrid();
    const [lo, hi] = finiteMinMax(grid.loss);
    for (const name of ['magma', 'turbo'] as const) {
      const png = decodePng(encodeColormapPng8(grid.loss, NX, NY, { scale: 'linear', colormap: name }));
      expect([png.width, png.height, png.depth, png.channels]).toEqual([NX, NY, 8, 4]);
      expect(png.text['losscape:colormap']).toBe(name);
      expect(png.text['losscape:nonfinite']).toMatch(/rgb\(255,0,255\)/);
      for (let row = 0; row < NY; row++) {
        for (let i = 0; i < NX; i++) {
          const v = grid.loss[(NY - 1 - row) * NX + i];
          const px = 4 * (row * NX + i);
          const want = Number.isFinite(v) ? colormap(name)((v - lo) / (hi - lo)) : [255, 0, 255];
          expect(Array.from(png.data.subarray(px, px + 4)), `row ${row} col ${i}`).toEqual([...want, 255]);
        }
      }
    }
  });

  it('maps log10 values', () => {
    const values = Float32Array.from([1, 10, 100, 1000]);
    const png = decodePng(encodeColormapPng8(values, 4, 1, { scale: 'log', colormap: 'gray' }));
    // log10 spacing: t = 0, 1/3, 2/3, 1
    expect(Array.from(png.data.filter((_, k) => k % 4 === 0))).toEqual([0, 85, 170, 255]);
  });
});

/** An independent reader of the .npy v1.0 header. */
function readNpy(bytes: Uint8Array): { descr: string; fortran: boolean; shape: number[]; values: Float32Array; dataOffset: number } {
  expect(Array.from(bytes.subarray(0, 8))).toEqual([0x93, 78, 85, 77, 80, 89, 1, 0]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint16(8, true);
  const header = new TextDecoder('latin1').decode(bytes.subarray(10, 10 + headerLength));
  expect(header.endsWith('\n')).toBe(true);
  const m = header.match(/^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \} *\n$/);
  expect(m, header).not.toBeNull();
  const shape = m![3].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const dataOffset = 10 + headerLength;
  const count = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: count }, (_, k) => view.getFloat32(dataOffset + 4 * k, true));
  expect(bytes.length).toBe(dataOffset + 4 * count);
  return { descr: m![1], fortran: m![2] === 'True', shape, values, dataOffset };
}

describe('npy', () => {
  it('writes <f4 C-order [ny, nx] and [frames, ny, nx] with a 64-byte aligned header', () => {
    for (const frames of [1, 3]) {
      const grid = makeGrid(frames);
      const shape = frames === 1 ? [NY, NX] : [frames, NY, NX];
      const npy = readNpy(encodeNpy(grid.loss, shape));
      expect(npy.descr).toBe('<f4');
      expect(npy.fortran).toBe(false);
      expect(npy.shape).toEqual(shape);
      expect(npy.dataOffset % 64).toBe(0);
      for (let k = 0; k < grid.loss.length; k++) expectSameValue(npy.values[k], grid.loss[k]);
    }
    expect(readNpy(encodeNpy(Float32Array.from([1, 2]), [2])).shape).toEqual([2]);
    expect(() => encodeNpy(new Float32Array(6), [4, 2])).toThrow(/holds 8 values, got 6/);
  });
});

describe('VTK', () => {
  it('writes a big-endian structured grid with points (alpha, beta, loss) and the loss as point data', () => {
    const grid = makeGrid();
    const bytes = encodeVtk(grid, 'losscape grid metric=ce');
    const text = new TextDecoder('latin1').decode(bytes);
    const head = '# vtk DataFile Version 3.0\nlosscape grid metric=ce\nBINARY\nDATASET STRUCTURED_GRID\n' +
      `DIMENSIONS ${NX} ${NY} 1\nPOINTS ${NX * NY} float\n`;
    expect(text.startsWith(head)).toBe(true);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = head.length;
    for (let j = 0; j < NY; j++) {
      for (let i = 0; i < NX; i++, at += 12) {
        const v = grid.loss[j * NX + i];
        expect(view.getFloat32(at, false)).toBe(grid.alpha[i]);
        expect(view.getFloat32(at + 4, false)).toBe(grid.beta[j]);
        expectSameValue(view.getFloat32(at + 8, false), Number.isFinite(v) ? v : NaN);
      }
    }
    const scalars = `\nPOINT_DATA ${NX * NY}\nSCALARS loss float 1\nLOOKUP_TABLE default\n`;
    expect(text.slice(at, at + scalars.length)).toBe(scalars);
    at += scalars.length;
    for (let k = 0; k < NX * NY; k++, at += 4) expectSameValue(view.getFloat32(at, false), grid.loss[k]);
    const finite = '\nSCALARS finite unsigned_char 1\nLOOKUP_TABLE default\n';
    expect(text.slice(at, at + finite.length)).toBe(finite);
    at += finite.length;
    for (let k = 0; k < NX * NY; k++) expect(bytes[at++]).toBe(Number.isFinite(grid.loss[k]) ? 1 : 0);
    expect(at).toBe(bytes.length - 1);
  });
});

describe('OBJ', () => {
  it('writes finite vertices and up-facing triangles, skipping those that touch NaN/Inf', () => {
    const grid = makeGrid();
    const zScale = 2.5;
    const lines = encodeObj(grid, zScale).trim().split('\n');
    const vertices = lines.filter((l) => l.startsWith('v ')).map((l) => l.slice(2).split(' ').map(Number));
    const uvs = lines.filter((l) => l.startsWith('vt ')).map((l) => l.slice(3).split(' ').map(Number));
    const faces = lines.filter((l) => l.startsWith('f ')).map((l) => l.slice(2).split(' ').map((s) => Number(s.split('/')[0])));
    const finite = Array.from(grid.loss).filter(Number.isFinite).length;
    expect(vertices.length).toBe(finite);
    expect(uvs.length).toBe(finite);
    // expected triangles: two per cell, minus those with a non-finite corner
    const ok = (i: number, j: number): boolean => Number.isFinite(grid.loss[j * NX + i]);
    let expectedFaces = 0;
    for (let j = 0; j + 1 < NY; j++) {
      for (let i = 0; i + 1 < NX; i++) {
        if (ok(i, j) && ok(i + 1, j) && ok(i + 1, j + 1)) expectedFaces++;
        if (ok(i, j) && ok(i + 1, j + 1) && ok(i, j + 1)) expectedFaces++;
      }
    }
    expect(faces.length).toBe(expectedFaces);
    const skipped = 2 * (NX - 1) * (NY - 1) - expectedFaces;
    expect(lines.filter((l) => l.startsWith('#')).join('\n')).toMatch(
      new RegExp(`${NX * NY - finite} non-finite \\(NaN/Inf\\) vertices not written, ${skipped} triangles touching them skipped`),
    );
    expect(lines[1]).toMatch(/vertical exaggeration 2\.5/);
    // every vertex is (alpha, beta, zScale * loss) of some finite grid point
    for (const [x, y, z] of vertices) {
      const i = Array.from(grid.alpha).findIndex((a) => Math.fround(x) === a);
      const j = Array.from(grid.beta).findIndex((b) => Math.fround(y) === b);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(j).toBeGreaterThanOrEqual(0);
      expect(Math.fround(z)).toBe(Math.fround(zScale * grid.loss[j * NX + i]));
    }
    for (const f of faces) {
      const [p, q, r] = f.map((k) => vertices[k - 1]);
      const crossZ = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
      expect(crossZ).toBeGreaterThan(0);
    }
  });
});

describe('CSV and number text', () => {
  it('f32String is the shortest text that reads back to the same float32', () => {
    expect(f32String(Math.fround(0.1))).toBe('0.1');
    expect(f32String(Math.fround(1 / 3))).toBe('0.33333334');
    expect(f32String(-2)).toBe('-2');
    expect([f32String(NaN), f32String(Infinity), f32String(-Infinity)]).toEqual(['nan', 'inf', '-inf']);
    const rng = new Rng(7);
    for (let k = 0; k < 500; k++) {
      const v = Math.fround((rng.uniform() - 0.5) * 10 ** ((k % 13) - 6));
      expect(Math.fround(Number(f32String(v)))).toBe(v);
    }
  });

  it('writes alpha,beta,loss rows in memory order, and a frame column for frames', () => {
    const grid = makeGrid();
    const lines = encodeCsv(grid).trim().split('\n');
    expect(lines[0]).toBe('alpha,beta,loss');
    expect(lines.length).toBe(NX * NY + 1);
    for (let j = 0; j < NY; j++) {
      for (let i = 0; i < NX; i++) {
        const [a, b, l] = lines[1 + j * NX + i].split(',');
        expect(Math.fround(Number(a))).toBe(grid.alpha[i]);
        expect(Math.fround(Number(b))).toBe(grid.beta[j]);
        const v = grid.loss[j * NX + i];
        if (Number.isFinite(v)) expect(Math.fround(Number(l))).toBe(v);
        else expect(l).toBe(Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf');
      }
    }
    const animated = makeGrid(3);
    const frameLines = encodeCsv(animated, [0, 1, 2]).trim().split('\n');
    expect(frameLines[0]).toBe('frame,alpha,beta,loss');
    expect(frameLines.length).toBe(3 * NX * NY + 1);
    // frame 2, j = 4, i = 2
    const row = frameLines[1 + 2 * NX * NY + 4 * NX + 2].split(',');
    expect(row[0]).toBe('2');
    expect(Math.fround(Number(row[1]))).toBe(animated.alpha[2]);
    expect(Math.fround(Number(row[2]))).toBe(animated.beta[4]);
    expect(Math.fround(Number(row[3]))).toBe(animated.loss[(2 * NY + 4) * NX + 2]);
    expect(frameLines[3 * NX * NY]).toBe('2,1,0.25,nan');
  });
});

function request(overrides: Partial<ExportRequest>): ExportRequest {
  return { bits: 16, colormap: 'viridis', scale: 'linear', zScale: 1, ...overrides };
}

describe('exportGrid', () => {
  it('numbers the frames of an animated grid, sharing one PNG range; npy and csv hold all frames', () => {
    const grid = makeGrid(3);
    const files = [...exportGrid(grid, request({ png: 'out/land.png', npy: 'l.npy', vtk: 'l.vtk', obj: 'l.obj', csv: 'l.csv' }))];
    expect(files.map((f) => f.path)).toEqual([
      'out/land-0000.png', 'out/land-0001.png', 'out/land-0002.png', 'l.npy',
      'l-0000.vtk', 'l-0001.vtk', 'l-0002.vtk', 'l-0000.obj', 'l-0001.obj', 'l-0002.obj', 'l.csv',
    ]);
    const [lo, hi] = finiteMinMax(grid.loss);
    for (let f = 0; f < 3; f++) {
      const back = decodeHeightmap16(files[f].bytes as Uint8Array);
      expect(back.range).toEqual([lo, hi]);
      expect(JSON.parse(back.text['losscape:metadata'])).toEqual({ metric: 'ce', model: 'tiny', frame: String(f) });
      for (let k = 0; k < NX * NY; k++) {
        const v = grid.loss[f * NX * NY + k];
        if (Number.isFinite(v)) expect(Math.abs(back.values[k] - v)).toBeLessThanOrEqual((0.5 * (hi - lo)) / 65535 + 1e-6);
        else expectSameValue(back.values[k], v);
      }
    }
    expect(readNpy(files[3].bytes as Uint8Array).shape).toEqual([3, NY, NX]);
    expect((files[4].bytes as Uint8Array).length).toBeGreaterThan(0);
    expect(new TextDecoder('latin1').decode(files[5].bytes as Uint8Array).split('\n')[1]).toBe('losscape grid metric=ce frame=1');
    expect((files[10].bytes as string).split('\n')[0]).toBe('frame,alpha,beta,loss');
  });

  it('exports one chosen frame under the names given', () => {
    const grid = makeGrid(3);
    const files: ExportFile[] = [...exportGrid(grid, request({ png: 'a.png', bits: 8, colormap: 'gray', npy: 'a.npy', csv: 'a.csv', frame: 1 }))];
    expect(files.map((f) => f.path)).toEqual(['a.png', 'a.npy', 'a.csv']);
    const frame1 = grid.loss.subarray(NX * NY, 2 * NX * NY);
    const png = decodePng(files[0].bytes as Uint8Array);
    const [lo, hi] = finiteMinMax(frame1);
    expect(png.text['losscape:min']).toBe(String(lo));
    expect(png.text['losscape:max']).toBe(String(hi));
    const npy = readNpy(files[1].bytes as Uint8Array);
    expect(npy.shape).toEqual([NY, NX]);
    for (let k = 0; k < NX * NY; k++) expectSameValue(npy.values[k], frame1[k]);
    expect((files[2].bytes as string).split('\n')[0]).toBe('alpha,beta,loss');
    expect(() => [...exportGrid(grid, request({ npy: 'x.npy', frame: 3 }))]).toThrow(/frame 3 out of range: the grid has 3 frame/);
  });

  it('names a still grid as given, and frame files before the extension', () => {
    const files = [...exportGrid(makeGrid(), request({ png: 'p.png', obj: 'mesh.obj' }))];
    expect(files.map((f) => f.path)).toEqual(['p.png', 'mesh.obj']);
    expect(framePath('dir.v2/land', 12)).toBe('dir.v2/land-0012');
    expect(framePath('land.png', 3)).toBe('land-0003.png');
    expect(framePath('.hidden', 0)).toBe('.hidden-0000');
  });
});

describe('losscape export flags', () => {
  it('fills in the defaults', () => {
    expect(parseExportFlags({ png: 'a.png' })).toEqual(request({ png: 'a.png' }));
    expect(parseExportFlags({ png: 'a.png', colormap: 'magma' })).toMatchObject({ bits: 8, colormap: 'magma' });
    expect(parseExportFlags({ png: 'a.png', bits: '8' })).toMatchObject({ bits: 8, colormap: 'viridis' });
    expect(parseExportFlags({ png: 'a.png', range: '-1.5:2e1', scale: 'linear' }).range).toEqual([-1.5, 20]);
    expect(parseExportFlags({ obj: 'a.obj', zScale: '0.25', frame: '4' })).toMatchObject({ zScale: 0.25, frame: 4 });
  });

  it('refuses bad flags with an InputError naming the flag and what it accepts', () => {
    const bad: Array<[Parameters<typeof parseExportFlags>[0], RegExp]> = [
      [{}, /nothing to export: give at least one of --png, --npy, --vtk, --obj, --csv/],
      [{ png: 'a.png', colormap: 'jet' }, /--colormap "jet": expected one of viridis, magma, inferno, plasma, turbo, gray/],
      [{ png: 'a.png', scale: 'sqrt' }, /--scale "sqrt": expected one of linear, log/],
      [{ png: 'a.png', bits: '12' }, /--bits "12": expected 16 .* or 8/],
      [{ png: 'a.png', bits: '16', colormap: 'gray' }, /--colormap applies to 8-bit PNGs/],
      [{ png: 'a.png', range: '1' }, /--range "1": expected LO:HI/],
      [{ png: 'a.png', range: 'a:2' }, /--range "a": expected LO:HI/],
      [{ png: 'a.png', range: ':2' }, /--range "": expected LO:HI/],
      [{ png: 'a.png', range: '2:1' }, /--range "2:1": expected LO < HI/],
      [{ png: 'a.png', range: '1:1' }, /--range "1:1": expected LO < HI/],
      [{ png: 'a.png', range: '0:1', scale: 'log' }, /--range "0:1": --scale log needs LO > 0/],
      [{ npy: 'a.npy', colormap: 'gray' }, /--colormap applies to PNG output: add --png FILE/],
      [{ npy: 'a.npy', range: '0:1' }, /--range applies to PNG output/],
      [{ npy: 'a.npy', zScale: '2' }, /--z-scale applies to OBJ output/],
      [{ obj: 'a.obj', zScale: '0' }, /--z-scale "0": expected a non-zero number/],
      [{ obj: 'a.obj', zScale: 'big' }, /--z-scale "big": expected a non-zero number/],
      [{ npy: 'a.npy', frame: '-1' }, /--frame "-1": expected a frame number/],
      [{ npy: 'a.npy', frame: '1.5' }, /--frame "1.5": expected a frame number/],
    ];
    for (const [flags, message] of bad) {
      expect(() => parseExportFlags(flags), JSON.stringify(flags)).toThrow(InputError);
      expect(() => parseExportFlags(flags), JSON.stringify(flags)).toThrow(message);
    }
  });

  it('checks the flags through the command line before reading the grid', async () => {
    const program = new Command().exitOverride();
    register(program);
    // `--range -1:2` is taken as the range's value, not as an option, so the colour map is what fails.
    await expect(
      program.parseAsync(['export', 'missing.safetensors', '--png', 'x.png', '--range', '-1:2', '--colormap', 'jet'], { from: 'user' }),
    ).rejects.toThrow(/--colormap "jet"/);
  });
});
