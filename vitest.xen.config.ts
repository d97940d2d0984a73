import { defineConfig } from 'vitest/config';

/**
 * The real-Xen lane: test/xen/**, run inside the lab's dom0 by
 * `npm run test:xen` (tools/xen-vm). One file at a time: they share one
 * dom0, its xenstored, its loop devices and its kernel drivers.
 */
export default defineConfig({
  test: {
    include: ['test/xen/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    // Under TCG a node start is ~2 s and I/O is tens of times slower.
    testTimeout: 600_000,
    hookTimeout: 300_000,
  },
});
