/** Shard shares, fingerprints, shard files and their merge, without a GPU. */
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/model/config.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { gridToSafetensors } from '../src/io/formats.ts';
import {
  type GridFrame, type GridShard, joinAdapters, jobFingerprint, mergeShards, parseShard, sha256Hex, shardFromSafetensors, shardShare, shardToSafetensors,
} from '../src/landscape/shards.ts';

describe('shard shares', () => {
  it('parse K/N with 0 <= K < N and refuse anything else', () => {
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    expect(parseShard('7/8')).toEqual({ index: 7, count: 8 });
    for (const bad of ['3/3', '-1/2', '1/0', 'a/b', '1', '1/2/3', '']) {
      expect(() => parseShard(bad)).toThrow(InputError);
    }
  });

  it('cover every point exactly once in contiguous blocks differing by at most one point', () => {
    for (const P of [0, 1, 7, 20, 101]) {
      for (const N of [1, 3, 8]) {
        let next = 0;
        const sizes: number[] = [];
        for (let K = 0; K < N; K++) {
          const s = shardShare({ index: K, count: N }, P);
          expect(s.start).toBe(next);
          next += s.count;
          sizes.push(s.count);
        }
        expect(next).toBe(P);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
    // 20 points over 3 shards: floor(K*20/3)
    expect([0, 1, 2].map((K) => shardShare({ index: K, count: 3 }, 20))).toEqual([
      { start: 0, count: 6 }, { start: 6, count: 7 }, { start: 13, count: 7 },
    ]);
  });
});

describe('fingerprints', () => {
  it('are SHA-256 (FIPS 180-2 test vector) of the job identity', async () => {
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await sha256Hex(new Uint8Array([0x61, 0x62, 0x63]))).toBe(await sha256Hex('abc'));
    const a = await jobFingerprint({ metric: 'ce', nx: 5 });
    expect(await jobFingerprint({ metric: 'ce', nx: 5 })).toBe(a);
    expect(await jobFingerprint({ metric: 'acc', nx: 5 })).not.toBe(a);
  });
});

function frame(adapter = 'gpu A'): GridFrame {
  return {
    nx: 3, ny: 2, frames: 2, animated: true,
    alpha: new Float32Array([-1, 0, 1]), beta: new Float32Array([0, 0.5]),
    metadata: { model: 'm', metric: 'ce', adapter, fingerprint: 'f1' },
  };
}

/** The 12 points of a 2-frame 3x2 grid, with a NaN and an Inf among them. */
const LOSS = Float32Array.from({ length: 12 }, (_, k) => (k === 4 ? NaN : k === 9 ? Infinity : 1 + k / 8));

function shards(N: number, fingerprint = 'f1', adapters?: string[]): Array<{ shard: GridShard; source: string }> {
  return Array.from({ length: N }, (_, K) => {
    const share = shardShare({ index: K, count: N }, 12);
    const grid = frame(adapters?.[K]);
    if (K === 0) {
      grid.path = new Float32Array([0.5, -0.5, 0, 0]);
      grid.pathStep = new Int32Array([0, 10]);
    }
    const s: GridShard = { grid, shard: { index: K, count: N }, share, fingerprint, values: LOSS.slice(share.start, share.start + share.count) };
    const bytes = shardToSafetensors(s);
    const source = `shard-${K}.safetensors`;
    return { shard: shardFromSafetensors(parseSafetensors(bytes, source), source), source };
  });
}

describe('merge', () => {
  it('joins shards in any order into the grid file of the whole job, bit for bit, NaN and Inf kept', () => {
    const parts = shards(5);
    const merged = mergeShards([parts[3]!, parts[0]!, parts[4]!, parts[2]!, parts[1]!]);
    const whole = { ...frame(), loss: LOSS, path: new Float32Array([0.5, -0.5, 0, 0]), pathStep: new Int32Array([0, 10]) };
    expect(gridToSafetensors(merged)).toEqual(gridToSafetensors(whole));
    expect(Number.isNaN(merged.loss[4])).toBe(true);
    expect(merged.loss[9]).toBe(Infinity);
  });

  it('names every adapter once when the shards ran on different ones', () => {
    expect(mergeShards(shards(3, 'f1', ['gpu A', 'gpu B', 'gpu A'])).metadata.adapter).toBe('gpu A | gpu B');
    expect(joinAdapters(['x', 'x | y', 'y'])).toBe('x | y');
  });

  it('refuses shards of another job, a share given twice, a missing share, a different N, and a file that is no shard', () => {
    const parts = shards(3);
    const other = shards(3, 'f2');
    expect(() => mergeShards([parts[0]!, other[1]!, parts[2]!])).toThrow(/shard-1.safetensors is a shard of a different grid/);
    expect(() => mergeShards([parts[0]!, parts[1]!, parts[1]!, parts[2]!])).toThrow(/both shard 1\/3 \(overlapping/);
    expect(() => mergeShards([parts[2]!, parts[0]!])).toThrow(/missing shard 1 of 3/);
    expect(() => mergeShards([parts[0]!, shards(4)[1]!])).toThrow(/is shard 1\/4, but shard-0.safetensors is one of 3/);
    const grid = gridToSafetensors({ ...frame(), loss: LOSS });
    expect(() => shardFromSafetensors(parseSafetensors(grid, 'grid.safetensors'), 'grid.safetensors')).toThrow(/grid.safetensors: not a losscape shard file/);
    expect(() => mergeShards([])).toThrow(InputError);
  });
});
