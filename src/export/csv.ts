/**
 * CSV export: a header line, then one row per grid point in memory order
 * (beta index j outer, alpha index i inner): `alpha,beta,loss`, or
 * `frame,alpha,beta,loss` when frames are written. Non-finite losses are
 * `nan`, `inf`, `-inf` (what numpy.loadtxt and pandas.read_csv parse).
 */
import { f32String } from './text.ts';

export interface CsvGrid {
  nx: number;
  ny: number;
  alpha: ArrayLike<number>; // [nx]
  beta: ArrayLike<number>; // [ny]
  loss: ArrayLike<number>; // [frames][ny][nx]
}

/** `frames` lists the frame numbers that `loss` holds in order; omitted: a single frame without a frame column. */
export function encodeCsv(grid: CsvGrid, frames?: number[]): string {
  const { nx, ny, alpha, beta, loss } = grid;
  const frameCount = frames?.length ?? 1;
  if (alpha.length !== nx || beta.length !== ny || loss.length !== frameCount * nx * ny) {
    throw new RangeError(
      `csv: alpha ${alpha.length}, beta ${beta.length}, loss ${loss.length} do not match ${frameCount} x ${ny} x ${nx}`,
    );
  }
  const alphaText = Array.from(alpha, f32String);
  const betaText = Array.from(beta, f32String);
  const lines = [frames ? 'frame,alpha,beta,loss' : 'alpha,beta,loss'];
  for (let f = 0; f < frameCount; f++) {
    const prefix = frames ? `${frames[f]},` : '';
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        lines.push(`${prefix}${alphaText[i]},${betaText[j]},${f32String(loss[(f * ny + j) * nx + i])}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}
