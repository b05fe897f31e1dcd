/**
 * VTK legacy file (version 3.0, BINARY: big-endian, as the legacy format
 * requires), DATASET STRUCTURED_GRID with DIMENSIONS nx ny 1, for ParaView.
 *
 * Points are (alpha[i], beta[j], loss) in VTK's order (i fastest, then j), the
 * same as the grid's `loss[j * nx + i]`. Point data:
 *   - `loss` (float): the value, NaN and +-Inf kept as they are;
 *   - `finite` (unsigned_char): 1 where the loss is finite, 0 where not, for a
 *     Threshold filter.
 * A point whose loss is not finite gets z = NaN (an infinite coordinate would
 * break the bounds; VTK skips NaN in ranges and the renderer drops the
 * triangles that touch it), so such a region shows as a hole in the surface.
 * Binary rather than ASCII because VTK's ASCII reader does not parse "nan".
 */

export interface VtkFrame {
  nx: number;
  ny: number;
  alpha: ArrayLike<number>; // [nx]
  beta: ArrayLike<number>; // [ny]
  loss: ArrayLike<number>; // [ny][nx]
}

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let k = 0; k < text.length; k++) out[k] = text.charCodeAt(k) & 0x7f;
  return out;
}

/** `title` becomes the file's second line (VTK allows 256 characters, no newline). */
export function encodeVtk(frame: VtkFrame, title = 'losscape grid'): Uint8Array {
  const { nx, ny, alpha, beta, loss } = frame;
  const n = nx * ny;
  if (alpha.length !== nx || beta.length !== ny || loss.length !== n) {
    throw new RangeError(`vtk: alpha ${alpha.length}, beta ${beta.length}, loss ${loss.length} do not match ${ny} x ${nx}`);
  }
  const head = ascii(
    `# vtk DataFile Version 3.0\n${title.replace(/[\r\n]/g, ' ').slice(0, 255)}\nBINARY\n` +
      `DATASET STRUCTURED_GRID\nDIMENSIONS ${nx} ${ny} 1\nPOINTS ${n} float\n`,
  );
  const mid1 = ascii(`\nPOINT_DATA ${n}\nSCALARS loss float 1\nLOOKUP_TABLE default\n`);
  const mid2 = ascii(`\nSCALARS finite unsigned_char 1\nLOOKUP_TABLE default\n`);
  const tail = ascii('\n');
  const out = new Uint8Array(head.length + 12 * n + mid1.length + 4 * n + mid2.length + n + tail.length);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(head, at);
  at += head.length;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const v = loss[j * nx + i];
      view.setFloat32(at, alpha[i], false);
      view.setFloat32(at + 4, beta[j], false);
      view.setFloat32(at + 8, Number.isFinite(v) ? v : NaN, false);
      at += 12;
    }
  }
  out.set(mid1, at);
  at += mid1.length;
  for (let k = 0; k < n; k++, at += 4) view.setFloat32(at, loss[k], false);
  out.set(mid2, at);
  at += mid2.length;
  for (let k = 0; k < n; k++) out[at++] = Number.isFinite(loss[k]) ? 1 : 0;
  out.set(tail, at);
  return out;
}
