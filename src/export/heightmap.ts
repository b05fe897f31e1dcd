/**
 * PNG exports of one heightfield (a grid's `loss` frame, `[ny][nx]`, value
 * `values[j * nx + i]` at alpha[i], beta[j]), through fast-png.
 *
 * Orientation: image column i = alpha[i] (alpha grows to the right), image row
 * r = beta[ny - 1 - r] (row 0 is the highest beta, so beta grows upward, as in a
 * plot). Both PNGs say so in their `losscape:orientation` text chunk.
 *
 * Scale: t = (s(v) - s(lo)) / (s(hi) - s(lo)) with s(v) = v ('linear') or
 * s(v) = log10(v) ('log', which needs lo > 0: losses are positive, and a log
 * of the raw value keeps decades comparable between grids, unlike
 * log(v - min + eps), whose picture depends on the minimum and on eps). Finite
 * values outside [lo, hi] (so also values <= 0 under 'log') are clamped to the ends;
 * their count is written in `losscape:clamped`.
 *
 * 16-bit heightmap: gray = round(t * 65535). A grid with non-finite values is
 * written as 16-bit gray + alpha: alpha 0 marks a non-finite value, whose gray
 * says which (0 = -Inf, 32768 = NaN, 65535 = +Inf); finite values have alpha
 * 65535. A grid without any is plain 16-bit gray (what heightmap tools expect).
 *
 * 8-bit colour map: RGBA, opaque; non-finite values are NONFINITE_RGB (magenta),
 * a colour none of the maps produces.
 */
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { InputError } from '../model/config.ts';
import { colormap, NONFINITE_RGB, type ColormapName } from './colormaps.ts';

export type Scale = 'linear' | 'log';
export const SCALES: readonly Scale[] = ['linear', 'log'];

export interface ScaleOptions {
  scale: Scale;
  /** [lo, hi] mapped to t = 0 and 1; default: valueRange(values, scale). */
  range?: [number, number];
  /** alpha and beta extents [first, last], written as `losscape:alpha` / `losscape:beta`. */
  extent?: { alpha: [number, number]; beta: [number, number] };
  /** grid metadata, written as ASCII JSON in `losscape:metadata`. */
  metadata?: Record<string, string>;
}

export interface DecodedHeightmap {
  values: Float32Array; // [ny][nx], same order as the encoded grid
  nx: number;
  ny: number;
  scale: Scale;
  range: [number, number];
  /** every tEXt chunk of the file */
  text: Record<string, string>;
}

const Q16 = 65535;
const GRAY_NEG_INF = 0;
const GRAY_NAN = 32768;
const GRAY_POS_INF = 65535;

const ORIENTATION =
  'column i = alpha[i], alpha increasing to the right; row r = beta[ny-1-r], beta increasing upward (top row = highest beta)';
const NONFINITE_16 =
  'alpha 0 marks a non-finite value; its gray says which: 0 = -Inf, 32768 = NaN, 65535 = +Inf';

function transform(scale: Scale): (v: number) => number {
  return scale === 'log' ? Math.log10 : (v) => v;
}

/**
 * The default range of a scale: [min, max] of the finite values, or under
 * 'log' of the finite positive ones. InputError when there are none.
 */
export function valueRange(values: ArrayLike<number>, scale: Scale): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (!Number.isFinite(v) || (scale === 'log' && v <= 0)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) {
    throw new InputError(
      scale === 'log'
        ? 'log scale: the grid has no finite positive value (use the linear scale)'
        : 'the grid has no finite value to scale',
    );
  }
  return [lo, hi];
}

function checkRange(range: [number, number], scale: Scale): void {
  const [lo, hi] = range;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) {
    throw new InputError(`range ${lo}:${hi}: expected finite LO <= HI`);
  }
  if (scale === 'log' && lo <= 0) throw new InputError(`range ${lo}:${hi}: the log scale needs LO > 0`);
}

/** Maps finite values to t in [0, 1]; NaN for non-finite ones. Counts clamped values. */
function normaliser(scale: Scale, range: [number, number]): { toT: (v: number) => number; clamped: () => number } {
  const s = transform(scale);
  const s0 = s(range[0]);
  const span = s(range[1]) - s0;
  let clamped = 0;
  return {
    toT: (v) => {
      if (!Number.isFinite(v)) return NaN;
      if (v < range[0] || v > range[1]) {
        clamped++;
        return v > range[1] ? 1 : 0;
      }
      return span > 0 ? Math.min(1, Math.max(0, (s(v) - s0) / span)) : 0;
    },
    clamped: () => clamped,
  };
}

function checkGrid(values: ArrayLike<number>, nx: number, ny: number): void {
  if (!Number.isInteger(nx) || !Number.isInteger(ny) || nx < 1 || ny < 1) {
    throw new RangeError(`heightmap: nx, ny must be positive integers, got ${nx}x${ny}`);
  }
  if (values.length !== nx * ny) throw new RangeError(`heightmap: ${values.length} values for a ${nx}x${ny} grid`);
}

/** The text chunks both PNGs share. Numbers as JS writes them, so that they parse back exactly. */
function commonText(format: string, scale: Scale, range: [number, number], opts: ScaleOptions): Record<string, string> {
  const text: Record<string, string> = {
    Software: 'losscape',
    'losscape:format': format,
    'losscape:min': String(range[0]),
    'losscape:max': String(range[1]),
    'losscape:scale': scale,
    'losscape:orientation': ORIENTATION,
  };
  if (opts.extent) {
    text['losscape:alpha'] = `${opts.extent.alpha[0]}:${opts.extent.alpha[1]}`;
    text['losscape:beta'] = `${opts.extent.beta[0]}:${opts.extent.beta[1]}`;
  }
  if (opts.metadata) {
    // tEXt is latin-1: escape everything past ASCII so any metadata fits.
    text['losscape:metadata'] = JSON.stringify(opts.metadata).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  }
  return text;
}

function resolveRange(values: ArrayLike<number>, opts: ScaleOptions): [number, number] {
  const range = opts.range ?? valueRange(values, opts.scale);
  checkRange(range, opts.scale);
  return range;
}

export function encodeHeightmap16(values: ArrayLike<number>, nx: number, ny: number, opts: ScaleOptions): Uint8Array {
  checkGrid(values, nx, ny);
  const range = resolveRange(values, opts);
  const { toT, clamped } = normaliser(opts.scale, range);
  let nonFinite = 0;
  for (let k = 0; k < values.length; k++) if (!Number.isFinite(values[k])) nonFinite++;
  const channels = nonFinite > 0 ? 2 : 1;
  const data = new Uint16Array(nx * ny * channels);
  for (let j = 0; j < ny; j++) {
    const row = ny - 1 - j;
    for (let i = 0; i < nx; i++) {
      const v = values[j * nx + i];
      const px = (row * nx + i) * channels;
      if (Number.isFinite(v)) {
        data[px] = Math.round(toT(v) * Q16);
        if (channels === 2) data[px + 1] = Q16;
      } else {
        data[px] = Number.isNaN(v) ? GRAY_NAN : v > 0 ? GRAY_POS_INF : GRAY_NEG_INF;
        data[px + 1] = 0;
      }
    }
  }
  const text = commonText('heightmap16', opts.scale, range, opts);
  text['losscape:encoding'] =
    opts.scale === 'log'
      ? 'value = 10^(log10(min) + gray/65535 * (log10(max) - log10(min)))'
      : 'value = min + gray/65535 * (max - min)';
  text['losscape:nonfinite'] = channels === 2 ? NONFINITE_16 : 'none';
  text['losscape:nonfinite_count'] = String(nonFinite);
  text['losscape:clamped'] = String(clamped());
  return encodePng({ width: nx, height: ny, data, depth: 16, channels, text });
}

export function decodeHeightmap16(bytes: Uint8Array, source = 'PNG'): DecodedHeightmap {
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new InputError(`${source}: not a readable PNG (${(e as Error).message})`);
  }
  const text = png.text;
  if (text['losscape:format'] !== 'heightmap16' || png.depth !== 16 || (png.channels !== 1 && png.channels !== 2)) {
    throw new InputError(
      `${source}: not a losscape 16-bit heightmap (format ${text['losscape:format'] ?? 'missing'}, ` +
        `${png.depth}-bit, ${png.channels} channels; expected heightmap16, 16-bit gray or gray+alpha)`,
    );
  }
  const scale = text['losscape:scale'];
  if (scale !== 'linear' && scale !== 'log') throw new InputError(`${source}: losscape:scale is "${scale}", expected linear or log`);
  const range: [number, number] = [Number(text['losscape:min']), Number(text['losscape:max'])];
  checkRange(range, scale);
  const nx = png.width;
  const ny = png.height;
  const ch = png.channels;
  const s0 = scale === 'log' ? Math.log10(range[0]) : range[0];
  const span = (scale === 'log' ? Math.log10(range[1]) : range[1]) - s0;
  const values = new Float32Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    const row = ny - 1 - j;
    for (let i = 0; i < nx; i++) {
      const px = (row * nx + i) * ch;
      const gray = png.data[px];
      let v: number;
      if (ch === 2 && png.data[px + 1] === 0) {
        v = gray === GRAY_NEG_INF ? -Infinity : gray === GRAY_POS_INF ? Infinity : NaN;
      } else {
        const s = s0 + (gray / Q16) * span;
        v = scale === 'log' ? 10 ** s : s;
      }
      values[j * nx + i] = v;
    }
  }
  return { values, nx, ny, scale, range, text };
}

export interface ColormapOptions extends ScaleOptions {
  colormap: ColormapName;
}

export function encodeColormapPng8(values: ArrayLike<number>, nx: number, ny: number, opts: ColormapOptions): Uint8Array {
  checkGrid(values, nx, ny);
  const range = resolveRange(values, opts);
  const { toT, clamped } = normaliser(opts.scale, range);
  const map = colormap(opts.colormap);
  const data = new Uint8Array(nx * ny * 4);
  let nonFinite = 0;
  for (let j = 0; j < ny; j++) {
    const row = ny - 1 - j;
    for (let i = 0; i < nx; i++) {
      const v = values[j * nx + i];
      if (!Number.isFinite(v)) nonFinite++;
      const px = (row * nx + i) * 4;
      data.set(Number.isFinite(v) ? map(toT(v)) : NONFINITE_RGB, px);
      data[px + 3] = 255;
    }
  }
  const text = commonText('colormap8', opts.scale, range, opts);
  text['losscape:colormap'] = opts.colormap;
  text['losscape:nonfinite'] = `NaN and +-Inf are drawn rgb(${NONFINITE_RGB.join(',')}) (magenta), a colour the map never produces`;
  text['losscape:nonfinite_count'] = String(nonFinite);
  text['losscape:clamped'] = String(clamped());
  return encodePng({ width: nx, height: ny, data, depth: 8, channels: 4, text });
}
