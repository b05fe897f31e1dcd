/**
 * The CLI lowers its main thread's priority on a CPU adapter so that Dawn's
 * event pump, which spins while a GPU promise is pending, leaves the cores to
 * SwiftShader's workers (src/node/gpu.ts, calmHostThread).
 */
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { configureHost, hostNiceSetting } from '../src/node/gpu.ts';
import { runCliWithEnv } from './helpers/runs.ts';

describe('host thread priority', () => {
  const saved = process.env.LOSSCAPE_HOST_NICE;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOSSCAPE_HOST_NICE;
    else process.env.LOSSCAPE_HOST_NICE = saved;
    configureHost({ hostNice: null });
  });

  it('takes the configured value unless LOSSCAPE_HOST_NICE overrides it', () => {
    delete process.env.LOSSCAPE_HOST_NICE;
    expect(hostNiceSetting()).toBeNull();
    configureHost({ hostNice: 19 });
    expect(hostNiceSetting()).toBe(19);
    process.env.LOSSCAPE_HOST_NICE = '7';
    expect(hostNiceSetting()).toBe(7);
    process.env.LOSSCAPE_HOST_NICE = 'off';
    expect(hostNiceSetting()).toBeNull();
    process.env.LOSSCAPE_HOST_NICE = '0';
    expect(hostNiceSetting()).toBeNull();
    for (const bad of ['-1', '20', '2.5', 'low']) {
      process.env.LOSSCAPE_HOST_NICE = bad;
      expect(() => hostNiceSetting()).toThrow(`LOSSCAPE_HOST_NICE must be an integer from 0 to 19 or "off", got "${bad}"`);
    }
  });

  it('the CLI main thread runs at nice 19 on SwiftShader, and at its parent\'s with LOSSCAPE_HOST_NICE=off', () => {
    const lowered = runCliWithEnv(['info', '--json'], { LOSSCAPE_HOST_NICE: '' });
    expect(lowered.status).toBe(0);
    const info = JSON.parse(lowered.stdout) as { isFallback: boolean; hostNice: number };
    expect(info.isFallback).toBe(true);
    expect(info.hostNice).toBe(19);
    const kept = runCliWithEnv(['info', '--json'], { LOSSCAPE_HOST_NICE: 'off' });
    expect(kept.status).toBe(0);
    expect((JSON.parse(kept.stdout) as { hostNice: number }).hostNice).toBe(getPriority(process.pid));
  });
});
