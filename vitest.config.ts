import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/xen runs inside the real-Xen lab's dom0 (vitest.xen.config.ts).
    exclude: [...configDefaults.exclude, 'test/xen/**'],
    // Workers and child processes dominate; two cores, so keep it modest.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
