/**
 * The viewer end to end: the built site, served from localhost, in Debian's
 * chromium on SwiftShader (SPEC section 5). The page trains the tiny model
 * in the browser with the real engine (shortened by URL parameters), must
 * reach "ready" and draw the landscape; the checks read the pixels of
 * screenshots, and the exported heightmap is compared with the float64
 * reference forward run here in Node on the page's own weights and batch.
 * Any console error or page error fails the test; a missing chromium or a
 * page without a WebGPU adapter fails it too.
 *
 * LOSSCAPE_SCREENSHOT=docs/screenshot.png writes the README's screenshot of
 * the default page (no URL parameters: minutes on SwiftShader).
 */
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { decode } from 'fast-png';
import type { Page } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeHeightmap16 } from '../src/export/heightmap.ts';
import { directionsToSafetensors, gridToSafetensors, type GridFile, paramsToSafetensors, tokensToSafetensors } from '../src/io/formats.ts';
import { makeDataset } from '../src/data/dataset.ts';
import { makeDirections } from '../src/landscape/directions.ts';
import { linspace } from '../src/landscape/grid.ts';
import { colormapTable, NONFINITE_RGB } from '../src/export/colormaps.ts';
import { initParams, type ParamLayout, paramLayout } from '../src/model/params.ts';
import { forward } from '../src/model/reference.ts';
import type { RunSummary, TestHook } from '../src/viewer/main.ts';
import { PATH_RGB } from '../src/viewer/path.ts';
import type { Settings } from '../src/viewer/state.ts';
import { buildSite, launchChromium, type LaunchedBrowser, REPO_ROOT, serveStatic, type StaticServer } from './helpers/browser.ts';

const WIDTH = 640;
const HEIGHT = 400;

interface Picture { width: number; height: number; rgb: Uint8Array }
interface Box { x: number; y: number; width: number; height: number }

declare global {
  interface Window { losscape: TestHook }
}

let site: string;
let server: StaticServer;
let chromium: LaunchedBrowser;
let page: Page;
const problems: string[] = [];

async function screenshot(): Promise<Picture> {
  const png = decode(await page.screenshot({ type: 'png' }));
  const n = png.width * png.height;
  const rgb = new Uint8Array(n * 3);
  for (let k = 0; k < n; k++) for (let c = 0; c < 3; c++) rgb[3 * k + c] = png.data[png.channels * k + c]!;
  return { width: png.width, height: png.height, rgb };
}

function* pixels(p: Picture, box: Box): Generator<[number, number, number]> {
  for (let y = Math.max(0, Math.floor(box.y)); y < Math.min(p.height, box.y + box.height); y++) {
    for (let x = Math.max(0, Math.floor(box.x)); x < Math.min(p.width, box.x + box.width); x++) {
      const k = 3 * (y * p.width + x);
      yield [p.rgb[k]!, p.rgb[k + 1]!, p.rgb[k + 2]!];
    }
  }
}

const near = (a: readonly number[], b: readonly number[], tol: number): boolean =>
  Math.abs(a[0]! - b[0]!) <= tol && Math.abs(a[1]! - b[1]!) <= tol && Math.abs(a[2]! - b[2]!) <= tol;

function countNear(p: Picture, box: Box, colour: readonly number[], tol: number): number {
  let n = 0;
  for (const px of pixels(p, box)) if (near(px, colour, tol)) n++;
  return n;
}

/** Fraction of the box's pixels within `tol` of some entry of a colour map. */
function colormapFraction(p: Picture, box: Box, name: Settings['colormap'], tol = 6): number {
  const table = colormapTable(name, 256);
  let hits = 0;
  let total = 0;
  for (const px of pixels(p, box)) {
    total++;
    for (let k = 0; k < 256; k++) {
      if (near(px, [table[4 * k]!, table[4 * k + 1]!, table[4 * k + 2]!], tol)) {
        hits++;
        break;
      }
    }
  }
  return hits / total;
}

function differingPixels(a: Picture, b: Picture, box: Box): number {
  let n = 0;
  const pa = [...pixels(a, box)];
  let k = 0;
  for (const px of pixels(b, box)) if (!near(px, pa[k++]!, 8)) n++;
  return n;
}

/** The main 3D view: the canvas left of the panel, below the overlay text, right of the minimap. */
async function mainViewBox(): Promise<Box> {
  return page.evaluate(() => {
    const gui = document.querySelector('.lil-gui.lil-root')!.getBoundingClientRect();
    const overlay = document.getElementById('overlay')!.getBoundingClientRect();
    const map = window.losscape.minimapRect();
    return { x: map.x + map.width + 4, y: overlay.bottom + 4, width: gui.left - (map.x + map.width + 8), height: map.y + map.height - overlay.bottom - 8 };
  });
}

/** The minimap without its 1-pixel CSS frame. */
async function minimapBox(): Promise<Box> {
  const r = await page.evaluate(() => window.losscape.minimapRect());
  return { x: r.x + 2, y: r.y + 2, width: r.width - 4, height: r.height - 4 };
}

function setSettings(partial: Partial<Settings>): Promise<void> {
  return page.evaluate((p) => window.losscape.set(p), partial);
}

/** The page's query in the tests: a short run and a small grid keep SwiftShader on 2 cores quick. */
const QUERY = '?steps=20&res=9';
const RES = 9;

async function openPage(query: string, viewport: { width: number; height: number }, timeoutMs: number): Promise<Page> {
  const p = await chromium.browser.newPage();
  await p.setViewport({ ...viewport, deviceScaleFactor: 1 });
  p.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  p.on('pageerror', (e) => problems.push(`page error: ${e instanceof Error ? e.message : String(e)}`));
  await p.goto(server.url + query);
  await p.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), { timeout: timeoutMs, polling: 250 });
  const state = await p.evaluate(() => ({ state: document.body.dataset.state, error: document.body.dataset.error }));
  if (state.state !== 'ready') throw new Error(`the viewer did not reach "ready" in chromium: ${state.error}`);
  return p;
}

async function start(): Promise<void> {
  site = await buildSite();
  server = await serveStatic(site);
  chromium = await launchChromium();
  page = await openPage(QUERY, { width: WIDTH, height: HEIGHT }, 150_000);
}

let started: Promise<void>;
beforeAll(async () => {
  started = start();
  await started.catch(() => {});
});

/** Every test starts here, so that a missing chromium or adapter fails each of them (none is skipped). */
async function ready(): Promise<void> {
  await started;
}

afterAll(async () => {
  const out = process.env.LOSSCAPE_SCREENSHOT;
  if (out && chromium) {
    const shot = await openPage('', { width: 1100, height: 760 }, 540_000);
    await shot.evaluate(() => window.losscape.rendered());
    writeFileSync(resolve(REPO_ROOT, out), await shot.screenshot({ type: 'png' }));
  }
  await chromium?.close();
  await server?.close();
  if (site) await rm(site, { recursive: true, force: true });
}, 600_000);

afterEach(() => {
  expect(problems).toEqual([]);
});

/** The page's model, weights and evaluation batch, and the float64 reference loss at centre + a d1 + b d2. */
async function pageRun(): Promise<{ run: RunSummary; layout: ParamLayout; lossAt: (d1: Float32Array, d2: Float32Array, a: number, b: number) => number }> {
  const run = (await page.evaluate(() => window.losscape.run()))!;
  const layout = paramLayout(run.config);
  const { B, T, idx, targets, mask } = run.batch;
  const lossAt = (d1: Float32Array, d2: Float32Array, a: number, b: number): number => {
    const w = Float64Array.from(run.final, (c, i) => Math.fround(c + a * d1[i]! + b * d2[i]!));
    return forward(layout, w, idx, targets, B, T, mask).loss;
  };
  return { run, layout, lossAt };
}

describe('viewer in chromium (WebGPU on SwiftShader)', () => {
  it('trains in the page and draws the terrain in the colour map\'s colours', async () => {
    await ready();
    // 20 steps with a checkpoint every ceil(20 / 24) = 1 step: 21 checkpoints.
    expect(await page.evaluate(() => window.losscape.field())).toMatchObject({ nx: RES, ny: RES, frames: 1, checkpoints: 21 });
    expect(await page.evaluate(() => window.losscape.field()!.label)).toContain('grammar/tiny, 20 steps, seed 1 · pca directions');
    const shot = await screenshot();
    const view = await mainViewBox();
    const background = [...pixels(shot, { x: 0, y: HEIGHT - 2, width: 2, height: 1 })][0]!;
    let drawn = 0;
    const colours = new Set<number>();
    for (const px of pixels(shot, view)) {
      if (!near(px, background, 3)) drawn++;
      colours.add((px[0] << 16) | (px[1] << 8) | px[2]);
    }
    // The terrain covers a part of the view that depends on its relief (a flat plane seen from above covers more).
    expect(drawn / (view.width * view.height)).toBeGreaterThan(0.2);
    expect(colours.size).toBeGreaterThan(200);
    // The minimap is unlit: its pixels are the colour map's own entries (contour lines and the path aside).
    // Contour lines darken a part of it.
    expect(colormapFraction(shot, await minimapBox(), 'viridis')).toBeGreaterThan(0.45);
  });

  it('shows the training path, and hides it on request', async () => {
    await ready();
    const all = { x: 0, y: 0, width: WIDTH, height: HEIGHT };
    const withPath = countNear(await screenshot(), all, PATH_RGB, 20);
    expect(withPath).toBeGreaterThan(150);
    await setSettings({ showPath: false });
    const without = countNear(await screenshot(), all, PATH_RGB, 20);
    expect(without).toBeLessThan(withPath / 20);
    await setSettings({ showPath: true });
  });

  it('changes the picture when the colour map or the exaggeration changes', async () => {
    await ready();
    const before = await screenshot();
    const map = await minimapBox();
    await setSettings({ contours: 0 });
    const viridis = await screenshot();
    await setSettings({ colormap: 'magma' });
    const magma = await screenshot();
    expect(colormapFraction(viridis, map, 'viridis')).toBeGreaterThan(0.9);
    expect(colormapFraction(magma, map, 'magma')).toBeGreaterThan(0.9);
    expect(colormapFraction(magma, map, 'viridis')).toBeLessThan(0.2);
    await setSettings({ colormap: 'viridis', contours: 12, exaggeration: 2.5 });
    const view = await mainViewBox();
    expect(differingPixels(before, await screenshot(), view)).toBeGreaterThan(0.05 * view.width * view.height);
    await setSettings({ exaggeration: 1 });
  });

  it('exports a 16-bit heightmap that decodes to the grid\'s values, the reference loss of the page\'s weights', async () => {
    await ready();
    await setSettings({ directions: 'filter', seed: 7, range: 0.5 });
    const png = Buffer.from(await page.evaluate(() => window.losscape.exportHeightmap()), 'base64');
    const decoded = decodeHeightmap16(new Uint8Array(png), 'exported heightmap');
    expect([decoded.nx, decoded.ny, decoded.scale]).toEqual([RES, RES, 'linear']);
    const step = (decoded.range[1] - decoded.range[0]) / 65535;
    // Every point against the heights buffer the terrain draws from.
    const heights = await page.evaluate(() => window.losscape.heights());
    heights.forEach((h, k) => expect(Math.abs(decoded.values[k]! - h!)).toBeLessThanOrEqual(step));
    // Some points, corners and off-centre ones, against the reference: directions made here from the page's weights.
    const { run, layout, lossAt } = await pageRun();
    const { d1, d2 } = makeDirections(layout, Float32Array.from(run.final), { kind: 'filter', seed: 7 });
    const axis = linspace(-0.5, 0.5, RES);
    for (const [i, j] of [[0, 0], [RES - 1, 0], [0, RES - 1], [4, 4], [7, 2]] as const) {
      const want = lossAt(d1, d2, axis[i]!, axis[j]!);
      expect(Math.abs(decoded.values[j * RES + i]! - want)).toBeLessThanOrEqual(step + 2e-4 * want);
    }
    expect(decoded.range[1] - decoded.range[0]).toBeGreaterThan(0.01);
  });

  it('cancels the evaluation in flight when a landscape setting changes', async () => {
    await ready();
    const states = await page.evaluate(async () => {
      const seen: string[] = [];
      const first = window.losscape.set({ resolution: 65 });
      seen.push(document.body.dataset.state ?? '');
      await new Promise((r) => setTimeout(r, 200));
      await window.losscape.set({ resolution: 7 });
      await first;
      seen.push(document.body.dataset.state ?? '');
      return seen;
    });
    expect(states).toEqual(['evaluating', 'ready']);
    expect(await page.evaluate(() => window.losscape.field())).toMatchObject({ nx: 7, ny: 7 });
  });

  it('evaluates a dropped run directory in the plane of its directions file', async () => {
    await ready();
    const { run, layout } = await pageRun();
    const ckpts = [1, 2, 3].map((seed) => initParams(layout, seed));
    const ds = makeDataset('grammar');
    const evalBatch = ds.evalBatch(2, 16, 5);
    const { d1, d2 } = makeDirections(layout, ckpts[2]!, { kind: 'layer', seed: 3 });
    const files = [
      { name: 'config.json', data: [...new TextEncoder().encode(JSON.stringify(run.config))] },
      ...ckpts.map((c, t) => ({ name: `ckpt-${10 * t}.safetensors`, data: [...paramsToSafetensors(layout, c)] })),
      { name: 'eval.safetensors', data: [...tokensToSafetensors(evalBatch.tokens, 2, 17)] },
      { name: 'optim.safetensors', data: [0] },
      { name: 'directions.safetensors', data: [...directionsToSafetensors(layout, { d1, d2, metadata: { kind: 'layer' } })] },
    ];
    await page.evaluate(async (list) => {
      const dt = new DataTransfer();
      for (const f of list) dt.items.add(new File([Uint8Array.from(f.data)], f.name));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      await new Promise((r) => setTimeout(r, 0));
      await window.losscape.idle();
    }, files);
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('ready');
    expect(await page.evaluate(() => window.losscape.settings.directions)).toBe('file');
    expect(await page.evaluate(() => window.losscape.field())).toMatchObject({ nx: 7, ny: 7, checkpoints: 3 });
    expect(await page.evaluate(() => window.losscape.field()!.label)).toContain('run of 3 checkpoints (steps 0–20) · directions layer');
    // The centre of the 7x7 grid is the final checkpoint itself.
    const heights = await page.evaluate(() => window.losscape.heights());
    const want = forward(layout, Float64Array.from(ckpts[2]!), evalBatch.idx, evalBatch.targets, 2, 16).loss;
    expect(Math.abs(heights[3 * 7 + 3]! - want)).toBeLessThan(2e-4 * want);
  });

  it('shows a dropped grid file, with its non-finite region in magenta', async () => {
    await ready();
    // Non-square, asymmetric ranges, so a swapped axis would show.
    const nx = 21;
    const ny = 13;
    const alpha = linspace(-0.5, 1, nx);
    const beta = linspace(-1, 0.25, ny);
    const loss = new Float32Array(nx * ny);
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const a = alpha[i]!;
        const b = beta[j]!;
        loss[j * nx + i] = (a - 0.2) ** 2 + 2 * (b + 0.3) ** 2 + 0.5;
      }
    }
    for (let j = 1; j < 5; j++) for (let i = 2; i < 7; i++) loss[j * nx + i] = NaN;
    const grid: GridFile = {
      nx, ny, frames: 1, animated: false, alpha, beta, loss,
      path: Float32Array.from([0.9, 0.1, 0.6, -0.2, 0.4, -0.5, 0.2, -0.3]),
      pathStep: Int32Array.from([0, 10, 20, 30]),
      metadata: { metric: 'ce' },
    };
    const bytes = [...gridToSafetensors(grid)];
    const before = await screenshot();
    await page.evaluate(async (data) => {
      const file = new File([Uint8Array.from(data)], 'dropped-grid.safetensors');
      const dt = new DataTransfer();
      dt.items.add(file);
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      await window.losscape.idle();
      await window.losscape.rendered();
    }, bytes);
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('ready');
    expect(await page.evaluate(() => window.losscape.field())).toEqual({ nx, ny, frames: 1, label: 'dropped-grid.safetensors', checkpoints: 4 });
    const shot = await screenshot();
    const all = { x: 0, y: 0, width: WIDTH, height: HEIGHT };
    expect(countNear(before, all, NONFINITE_RGB, 10)).toBe(0);
    expect(countNear(shot, await minimapBox(), NONFINITE_RGB, 10)).toBeGreaterThan(30);
    expect(countNear(shot, await mainViewBox(), NONFINITE_RGB, 60)).toBeGreaterThan(30);
    // The shown heights are the file's: the export reads them back from the GPU.
    const png = Buffer.from(await page.evaluate(() => window.losscape.exportHeightmap()), 'base64');
    const decoded = decodeHeightmap16(new Uint8Array(png), 'exported heightmap');
    const step = (decoded.range[1] - decoded.range[0]) / 65535;
    for (let k = 0; k < nx * ny; k++) {
      if (Number.isNaN(loss[k])) expect(decoded.values[k]).toBeNaN();
      else expect(Math.abs(decoded.values[k]! - loss[k]!)).toBeLessThanOrEqual(step);
    }
  });

  it('says plainly when the browser has no WebGPU', async () => {
    await ready();
    const bare = await chromium.browser.newPage();
    bare.on('console', (m) => { if (m.type() === 'error') problems.push(`console error (no WebGPU page): ${m.text()}`); });
    bare.on('pageerror', (e) => problems.push(`page error (no WebGPU page): ${e instanceof Error ? e.message : String(e)}`));
    try {
      await bare.evaluateOnNewDocument(() => {
        Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
      });
      await bare.goto(server.url);
      await bare.waitForFunction(() => document.body.dataset.state === 'error', { timeout: 20_000 });
      const shown = await bare.evaluate(() => ({
        error: document.body.dataset.error ?? '',
        text: document.getElementById('fallback')!.textContent ?? '',
        visible: !document.getElementById('fallback')!.hidden,
      }));
      expect(shown.visible).toBe(true);
      expect(shown.error).toContain('no WebGPU');
      expect(shown.text).toContain('--enable-unsafe-webgpu');
    } finally {
      await bare.close();
    }
  });
});
