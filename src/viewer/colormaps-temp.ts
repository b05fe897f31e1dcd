/**
 * TEMPORARY colour maps for the viewer, until src/export/colormaps.ts (the
 * export engineer's `colormapTable(name, n)`) is merged; then this file goes
 * and its importers switch to that one.
 *
 * viridis and magma: degree-6 polynomial fits of matplotlib's tables by
 * mattz (shadertoy WlfXRN, CC0), max error about 1/255. turbo: Google's
 * polynomial approximation (Mikhailov and Du, 2019, Apache-2.0).
 */
export const COLORMAPS = ['viridis', 'magma', 'turbo', 'gray'] as const;
export type ColormapName = (typeof COLORMAPS)[number];

type Poly = readonly (readonly [number, number, number])[];

const VIRIDIS: Poly = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

const MAGMA: Poly = [
  [-0.002136485053939582, -0.000749655052795221, -0.005386127855323933],
  [0.2516605407371642, 0.6775232436837668, 2.494026599312351],
  [8.353717279216625, -3.577719514958484, 0.3144679030132573],
  [-27.66873308576866, 14.26473078096533, -13.64921318813922],
  [52.17613981234068, -27.94360607168351, 12.94416944238394],
  [-50.76852536473588, 29.04658282127291, 4.23415299384598],
  [18.65570506591883, -11.48977351997711, -5.601961508734096],
];

const TURBO: Poly = [
  [0.13572138, 0.09140261, 0.1066733],
  [4.6153926, 2.19418839, 12.64194608],
  [-42.66032258, 4.84296658, -60.58204836],
  [132.13108234, -14.18503333, 110.36276771],
  [-152.94239396, 4.27729857, -89.90310912],
  [59.28637943, 2.82956604, 27.34824973],
];

const GRAY: Poly = [[0, 0, 0], [1, 1, 1]];

const POLYS: Record<ColormapName, Poly> = { viridis: VIRIDIS, magma: MAGMA, turbo: TURBO, gray: GRAY };

/** `n` RGBA8 entries (n*4 bytes), entry k at t = k / (n - 1). */
export function colormapTable(name: ColormapName, n: number): Uint8Array<ArrayBuffer> {
  const poly = POLYS[name];
  if (!poly) throw new Error(`unknown colour map "${name}" (expected one of ${COLORMAPS.join(', ')})`);
  const out = new Uint8Array(n * 4);
  for (let k = 0; k < n; k++) {
    const t = n > 1 ? k / (n - 1) : 0;
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let d = poly.length - 1; d >= 0; d--) v = v * t + poly[d]![c]!;
      out[k * 4 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
    out[k * 4 + 3] = 255;
  }
  return out;
}
