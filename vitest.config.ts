import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Files that measure memory or time in a child process run on their own, after all the others:
 * run beside the other files (2 cores, RabbitMQ, Chromium), their figures swing with the load.
 */
const ALONE = ['tests/integration/reports.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // expect.poll gives up after 1 s by default: too short for a Chromium page beside the other
    // test files on 2 cores (a list refreshed a moment later failed a run); a wrong value still fails
    expect: { poll: { timeout: 10_000 } },
    projects: [
      { extends: true, test: { name: 'suite', include: ['tests/**/*.test.ts'], exclude: [...configDefaults.exclude, ...ALONE] } },
      { extends: true, test: { name: 'alone', include: ALONE, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
