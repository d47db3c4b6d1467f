import { defineConfig } from 'vitest/config';

// The end-to-end suite boots one real systemd host and walks it through a
// scenario step by step: one file, one process, steps in order, and timeouts
// long enough for a health gate that waits on real services.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 900_000,
    hookTimeout: 900_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['verbose'],
    // Each step's lines go straight to the log, in order, without per-line headers.
    disableConsoleIntercept: true,
  },
});
