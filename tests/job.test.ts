/** Grid job bookkeeping without a GPU: which points a (resumed) job evaluates, frame centres, partial files. */
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/model/config.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { type ChunkResult } from '../src/landscape/grid.ts';
import {
  type GridJob, type PointEvaluator, doneCount, newJobState, partialFromSafetensors, partialToSafetensors, runJob,
} from '../src/landscape/job.ts';

/** value(a, b) = centre + 10 a + b, in chunks of 2, recording every point it is asked for. */
class FakeEvaluator implements PointEvaluator {
  centre = 0;
  asked: Array<[number, number, number]> = [];
  setCentre(c: Float32Array): void {
    this.centre = c[0]!;
  }
  async values(coords: Float32Array, onChunk?: (r: ChunkResult) => void): Promise<Float32Array> {
    const n = coords.length / 2;
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      this.asked.push([this.centre, coords[2 * k]!, coords[2 * k + 1]!]);
      out[k] = this.centre + 10 * coords[2 * k]! + coords[2 * k + 1]!;
    }
    for (let s = 0; s < n; s += 2) onChunk?.({ start: s, values: out.slice(s, s + 2), done: Math.min(s + 2, n), total: n });
    return out;
  }
}

const alpha = new Float32Array([0, 1, 2]);
const beta = new Float32Array([0, 0.5]);
/** Point k = (f*2 + j)*3 + i of 2 frames centred on 100 and 200. */
const expected = (k: number): number => [100, 200][Math.floor(k / 6)]! + 10 * alpha[k % 3]! + beta[Math.floor(k / 3) % 2]!;

describe('grid jobs', () => {
  it('evaluate every point of the share in storage order, frame centres set once per frame', async () => {
    const job: GridJob = { nx: 3, ny: 2, frames: 2, alpha, beta, share: { start: 4, count: 6 } };
    const state = newJobState(job.share);
    const ev = new FakeEvaluator();
    const progress: number[] = [];
    const centres: number[] = [];
    await runJob(job, state, ev, {
      frameCentre: (f) => {
        centres.push(f);
        return new Float32Array([100 * (f + 1)]);
      },
      onChunk: (p) => progress.push(p.done),
    });
    expect(centres).toEqual([0, 1]);
    expect(Array.from(state.values)).toEqual([4, 5, 6, 7, 8, 9].map(expected));
    expect(doneCount(state)).toBe(6);
    expect(progress.at(-1)).toBe(6);
  });

  it('resume: only the points not done are evaluated, and a frame with none left is skipped', async () => {
    const job: GridJob = { nx: 3, ny: 2, frames: 2, alpha, beta, share: { start: 0, count: 12 } };
    const state = newJobState(job.share);
    // frame 0 done entirely, and points 8 and 9 of frame 1 (values from an earlier process)
    for (const k of [0, 1, 2, 3, 4, 5, 8, 9]) {
      state.done[k] = 1;
      state.values[k] = expected(k);
    }
    const ev = new FakeEvaluator();
    const centres: number[] = [];
    await runJob(job, state, ev, {
      frameCentre: (f) => {
        centres.push(f);
        return new Float32Array([100 * (f + 1)]);
      },
    });
    expect(centres).toEqual([1]);
    // points 6, 7, 10, 11: (alpha, beta) = (0, 0), (1, 0), (1, 0.5), (2, 0.5)
    expect(ev.asked).toEqual([[200, 0, 0], [200, 1, 0], [200, 1, 0.5], [200, 2, 0.5]]);
    expect(Array.from(state.values)).toEqual(Array.from({ length: 12 }, (_, k) => expected(k)));
  });

  it('partial files round-trip and refuse another job or another share', () => {
    const share = { start: 6, count: 4 };
    const state = newJobState(share);
    state.values.set([1.5, NaN, 0, 0]);
    state.done.set([1, 1, 0, 0]);
    const bytes = partialToSafetensors({ fingerprint: 'abc', share, state, adapter: 'gpu' });
    const file = parseSafetensors(bytes, 'out.partial');
    const back = partialFromSafetensors(file, 'out.partial', { fingerprint: 'abc', share });
    expect(Array.from(back.state.done)).toEqual([1, 1, 0, 0]);
    expect(back.state.values[0]).toBe(1.5);
    expect(Number.isNaN(back.state.values[1])).toBe(true);
    expect(back.adapter).toBe('gpu');
    expect(() => partialFromSafetensors(file, 'out.partial', { fingerprint: 'abd', share })).toThrow(/out.partial: belongs to a different grid job/);
    expect(() => partialFromSafetensors(file, 'out.partial', { fingerprint: 'abc', share: { start: 0, count: 4 } })).toThrow(InputError);
  });
});
