import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Relative asset paths: the built site works from any static server or sub-path.
  base: './',
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  build: { outDir: 'dist', target: 'es2022', sourcemap: true },
  test: {
    include: ['tests/**/*.test.ts'],
    // Dawn is a native addon: each test file gets its own process, two at a time (2-core machines).
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    // The CLIs the tests start keep their main thread's priority: two test
    // files run GPU work at once, and a nice-19 main thread behind them would
    // starve (tests/host.test.ts checks the CLI's own default).
    env: { LOSSCAPE_HOST_NICE: 'off' },
    hookTimeout: 180_000,
  },
});
