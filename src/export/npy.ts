/**
 * numpy `.npy` format version 1.0 writer (numpy's NEP 1 / `numpy.lib.format`):
 * magic "\x93NUMPY", version 1.0, a little-endian uint16 header length, then a
 * Python dict literal padded with spaces and a final newline so that the data
 * starts on a multiple of 64 bytes, then the raw array. We write float32,
 * little-endian ('<f4'), C order: shape [ny, nx] for a frame, [frames, ny, nx]
 * for an animated grid. NaN and +-Inf are stored as they are.
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

export function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`npy: shape must be non-negative integers, got [${shape.join(', ')}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`npy: shape [${shape.join(', ')}] holds ${count} values, got ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = MAGIC.length + 2 + 2; // magic, version, header length
  const headerLength = Math.ceil((preamble + dict.length + 1) / ALIGN) * ALIGN - preamble;
  const header = dict.padEnd(headerLength - 1, ' ') + '\n';
  const out = new Uint8Array(preamble + headerLength + 4 * data.length);
  out.set(MAGIC, 0);
  out[6] = 1; // major version
  out[7] = 0; // minor version
  const view = new DataView(out.buffer);
  view.setUint16(8, headerLength, true);
  for (let k = 0; k < header.length; k++) out[preamble + k] = header.charCodeAt(k);
  const base = preamble + headerLength;
  for (let k = 0; k < data.length; k++) view.setFloat32(base + 4 * k, data[k], true);
  return out;
}
