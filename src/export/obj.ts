/**
 * Wavefront OBJ mesh of one heightfield, for Blender.
 *
 * Vertex (x, y, z) = (alpha[i], beta[j], zScale * loss): x along alpha, y along
 * beta, z up (in Blender's OBJ import choose Up axis Z, Forward axis Y to keep
 * it so). zScale is the vertical exaggeration. Each grid cell becomes two
 * triangles, wound counter-clockwise seen from +z so normals point up. A
 * triangle touching a non-finite vertex is left out, and non-finite vertices
 * are not written at all (the file's comment header says how many), so a NaN
 * or Inf region is a hole. Texture coordinates map the cell centres onto the
 * colour-mapped PNG of the same grid (u = (i + 0.5) / nx, v = (j + 0.5) / ny;
 * that PNG's top row is the highest beta, which is v = 1 in OBJ's convention).
 */
import { f32String } from './text.ts';

export interface ObjFrame {
  nx: number;
  ny: number;
  alpha: ArrayLike<number>; // [nx]
  beta: ArrayLike<number>; // [ny]
  loss: ArrayLike<number>; // [ny][nx]
}

export function encodeObj(frame: ObjFrame, zScale = 1, title = 'losscape grid'): string {
  const { nx, ny, alpha, beta, loss } = frame;
  if (alpha.length !== nx || beta.length !== ny || loss.length !== nx * ny) {
    throw new RangeError(`obj: alpha ${alpha.length}, beta ${beta.length}, loss ${loss.length} do not match ${ny} x ${nx}`);
  }
  if (!Number.isFinite(zScale)) throw new RangeError(`obj: zScale must be finite, got ${zScale}`);
  // 1-based OBJ index of each written vertex; 0 for a non-finite one.
  const index = new Int32Array(nx * ny);
  // Per-axis texts once, not per vertex: formatting dominates the time of a large mesh.
  const alphaText = Array.from(alpha, f32String);
  const betaText = Array.from(beta, f32String);
  const uText = Array.from({ length: nx }, (_, i) => f32String((i + 0.5) / nx));
  const vText = Array.from({ length: ny }, (_, j) => f32String((j + 0.5) / ny));
  const body: string[] = [];
  let written = 0;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const v = loss[j * nx + i];
      if (!Number.isFinite(v)) continue;
      index[j * nx + i] = ++written;
      body.push(`v ${alphaText[i]} ${betaText[j]} ${f32String(zScale * v)}`);
      body.push(`vt ${uText[i]} ${vText[j]}`);
    }
  }
  let faces = 0;
  let skipped = 0;
  const face = (a: number, b: number, c: number): void => {
    if (a === 0 || b === 0 || c === 0) {
      skipped++;
      return;
    }
    faces++;
    body.push(`f ${a}/${a} ${b}/${b} ${c}/${c}`);
  };
  for (let j = 0; j + 1 < ny; j++) {
    for (let i = 0; i + 1 < nx; i++) {
      const a = index[j * nx + i];
      const b = index[j * nx + i + 1];
      const c = index[(j + 1) * nx + i + 1];
      const d = index[(j + 1) * nx + i];
      face(a, b, c);
      face(a, c, d);
    }
  }
  const header = [
    `# ${title.replace(/[\r\n]/g, ' ')}`,
    `# grid ${nx} x ${ny}: x = alpha, y = beta, z = loss * ${f32String(zScale)} (vertical exaggeration ${f32String(zScale)})`,
    `# ${written} vertices, ${faces} triangles; ${nx * ny - written} non-finite (NaN/Inf) vertices not written, ` +
      `${skipped} triangles touching them skipped`,
    'o losscape',
  ];
  return header.concat(body).join('\n') + '\n';
}
