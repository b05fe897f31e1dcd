/** The viewer's pure functions: mesh indices, streaming lattices, URL parameters, playback, coordinates, camera. */
import { vec4 } from 'gl-matrix';
import { describe, expect, it } from 'vitest';
import { linspace } from '../src/landscape/grid.ts';
import { defaultOrbit, eyeOf, viewProjection, zoom } from '../src/viewer/camera.ts';
import { advance, checkpointLines, planeToGrid } from '../src/viewer/path.ts';
import { type HeightField, latticeCount, latticeOrder, strideLadder } from '../src/viewer/source.ts';
import { gridIndices } from '../src/viewer/terrain.ts';
import { framesAt, minimapRect } from '../src/viewer/view.ts';
import { settingsFromQuery } from '../src/viewer/state.ts';

describe('terrain mesh indices', () => {
  it('covers each cell of a 4x3 grid with two triangles split along (i+1, j)-(i, j+1), and each edge once', () => {
    const nx = 4;
    const ny = 3;
    const { triangles, lines } = gridIndices(nx, ny);
    expect(triangles.length).toBe(3 * 2 * 6);
    for (let c = 0; c < triangles.length / 6; c++) {
      const i = c % (nx - 1);
      const j = Math.floor(c / (nx - 1));
      const v = (ii: number, jj: number): number => jj * nx + ii;
      expect([...triangles.subarray(6 * c, 6 * c + 3)]).toEqual([v(i, j), v(i + 1, j), v(i, j + 1)]);
      expect([...triangles.subarray(6 * c + 3, 6 * c + 6)]).toEqual([v(i + 1, j), v(i + 1, j + 1), v(i, j + 1)]);
    }
    const edges = new Set<string>();
    for (let k = 0; k < lines.length; k += 2) {
      const [a, b] = [Math.min(lines[k]!, lines[k + 1]!), Math.max(lines[k]!, lines[k + 1]!)];
      // Neighbours along a row (b = a + 1 in the same row) or a column (b = a + nx).
      expect(b - a === nx || (b - a === 1 && Math.floor(a / nx) === Math.floor(b / nx))).toBe(true);
      edges.add(`${a}-${b}`);
    }
    expect(edges.size).toBe((nx - 1) * ny + nx * (ny - 1));
    expect(lines.length / 2).toBe(edges.size);
  });
});

describe('streaming lattices', () => {
  it('counts both ends of an axis, also when the stride does not divide it', () => {
    expect(latticeCount(33, 8)).toBe(5); // 0 8 16 24 32
    expect(latticeCount(30, 8)).toBe(5); // 0 8 16 24 29
    expect(latticeCount(30, 1)).toBe(30);
    expect(latticeCount(1, 4)).toBe(1);
  });

  it('starts with at least 9 points per side and halves down to every point', () => {
    expect(strideLadder(33)).toEqual([4, 2, 1]);
    expect(strideLadder(65)).toEqual([8, 4, 2, 1]);
    expect(strideLadder(9)).toEqual([1]);
    for (const n of [17, 33, 100, 513]) expect(latticeCount(n, strideLadder(n)[0]!)).toBeGreaterThanOrEqual(9);
  });

  it('orders the points of a non-square grid coarse lattice first, each point once, each level completing its lattice', () => {
    const nx = 35;
    const ny = 18;
    const { indices, levels } = latticeOrder(nx, ny);
    expect(levels.map((l) => l.stride)).toEqual(strideLadder(18));
    expect(new Set(indices).size).toBe(nx * ny);
    expect(Math.max(...indices)).toBe(nx * ny - 1);
    const on = (i: number, n: number, s: number): boolean => i % s === 0 || i === n - 1;
    for (const { stride, end } of levels) {
      // The first `end` points are exactly the lattice of this stride (both last rows and columns included).
      const want = new Set<number>();
      for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) if (on(i, nx, stride) && on(j, ny, stride)) want.add(j * nx + i);
      expect(new Set(indices.subarray(0, end))).toEqual(want);
      expect(end).toBe(latticeCount(nx, stride) * latticeCount(ny, stride));
    }
  });
});

describe('URL parameters', () => {
  it('override the settings they name, with numbers, choices and switches checked', () => {
    expect(settingsFromQuery('?steps=40&res=17&directions=random&range=0.5&wormhole=1&path=false&colormap=magma')).toEqual({
      trainSteps: 40, resolution: 17, directions: 'random', range: 0.5, wormhole: true, showPath: false, colormap: 'magma',
    });
    expect(settingsFromQuery('')).toEqual({});
  });

  it('name the parameter and what it accepts when a value is bad', () => {
    expect(() => settingsFromQuery('?res=4')).toThrow('?res=4: expected an integer from 5 to 513');
    expect(() => settingsFromQuery('?res=17.5')).toThrow('?res=17.5: expected an integer from 5 to 513');
    expect(() => settingsFromQuery('?steps=')).toThrow('?steps=: expected an integer from 10 to 5000');
    expect(() => settingsFromQuery('?metric=loss')).toThrow('?metric=loss: expected one of ce, acc, mse');
    expect(() => settingsFromQuery('?wormhole=yes')).toThrow('?wormhole=yes: expected 1, 0, true or false');
    expect(() => settingsFromQuery('?resolution=17')).toThrow('?resolution: unknown URL parameter; known: dataset, preset, steps');
  });
});

describe('playback', () => {
  it('blends the two frames around a fractional checkpoint and stops at the last ready frame', () => {
    expect(framesAt(2.25, 5)).toEqual({ frameA: 2, frameB: 3, frameMix: 0.25 });
    expect(framesAt(7, 5)).toEqual({ frameA: 4, frameB: 4, frameMix: 0 });
    expect(framesAt(3.5, 2)).toEqual({ frameA: 1, frameB: 1, frameMix: 0 });
    expect(framesAt(-1, 3)).toEqual({ frameA: 0, frameB: 1, frameMix: 0 });
  });

  it('advances at the play speed and loops past the end', () => {
    expect(advance(1, 0.5, 4, 24)).toBe(3);
    expect(advance(23.5, 0.25, 4, 24)).toBe(0);
    expect(advance(0, 1, 4, 0)).toBe(0);
  });

  it('shows the step and both losses of the nearest checkpoint, a dash where unknown', () => {
    const path = {
      a: Float32Array.from([0.5, 0.25, 0]), b: Float32Array.from([-0.5, 0, 0]), step: Int32Array.from([0, 50, 100]),
      trainLoss: Float32Array.from([3, 2, NaN]), trueLoss: Float32Array.from([2.5, 1.75, 1]), planeLoss: Float32Array.from([2.25, 1.5, 1]),
    };
    const lines = checkpointLines(path, 1.4);
    expect(lines[0]).toBe('checkpoint 2/3 · step 50');
    expect(lines[1]).toBe('train loss 2.0000');
    expect(lines[2]).toBe('true loss 1.7500 · on plane 1.5000 (off-plane +0.2500)');
    expect(checkpointLines(path, 2)[1]).toBe('train loss —');
  });
});

describe('plane to grid coordinates', () => {
  it('maps (alpha[i], beta[j]) to (i, j) on a non-square, asymmetric grid', () => {
    const alpha = linspace(-0.5, 1, 7);
    const beta = linspace(-1, 0.25, 5);
    const field = { nx: 7, ny: 5, alpha, beta } as HeightField;
    const g = planeToGrid(field, [alpha[3]!, -0.5, 1], [beta[1]!, -1, 0.25]);
    expect(g[0]).toBeCloseTo(3, 5);
    expect(g[1]).toBeCloseTo(1, 5);
    expect([g[2], g[3], g[4], g[5]]).toEqual([0, 0, 6, 4]);
  });
});

describe('camera and layout', () => {
  it('puts the target at the centre of the view, inside WebGPU\'s [0, 1] depth', () => {
    const orbit = defaultOrbit();
    const eye = eyeOf(orbit);
    const d = Math.hypot(eye[0]! - orbit.target[0]!, eye[1]! - orbit.target[1]!, eye[2]! - orbit.target[2]!);
    expect(d).toBeCloseTo(orbit.distance, 5);
    const clip = vec4.transformMat4(vec4.create(), [orbit.target[0]!, orbit.target[1]!, orbit.target[2]!, 1], viewProjection(orbit, 1.6));
    expect(clip[0]! / clip[3]!).toBeCloseTo(0, 5);
    expect(clip[1]! / clip[3]!).toBeCloseTo(0, 5);
    expect(clip[2]! / clip[3]!).toBeGreaterThan(0);
    expect(clip[2]! / clip[3]!).toBeLessThan(1);
  });

  it('keeps the zoom within bounds', () => {
    const orbit = defaultOrbit();
    for (let k = 0; k < 100; k++) zoom(orbit, 1000);
    expect(orbit.distance).toBe(30);
    for (let k = 0; k < 100; k++) zoom(orbit, -1000);
    expect(orbit.distance).toBe(0.3);
  });

  it('places the minimap in the bottom-left corner, at most 170 px and 30% of the short side', () => {
    expect(minimapRect(640, 400)).toEqual({ x: 12, y: 400 - 12 - 120, width: 120, height: 120 });
    expect(minimapRect(1600, 1000)).toEqual({ x: 12, y: 1000 - 12 - 170, width: 170, height: 170 });
  });
});
