import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that load the kernel's xen-blkfront and let a hostile peer at it run
 * last: a kernel finding there (a wedged xenwatch, a stuck request) must not
 * spill into the other files of the boot.
 */
const LAST = ['hostile-frontend-vs-kernel-blkback.test.ts', 'hostile-backend-vs-kernel-blkfront.test.ts'];

class HostileLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => LAST.findIndex((name) => f.moduleId.endsWith(name));
    return [...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId));
  }
}

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
    // One worker for every file: under TCG each fresh worker re-imports src/
    // over 9p (minutes), and vitest gives a worker 60 s to start. The files
    // do not rely on fresh module state.
    isolate: false,
    sequence: { sequencer: HostileLast },
    // The serial log is read by people: one line per test.
    reporters: ['verbose'],
    // Under TCG a node start is ~2 s and I/O is tens of times slower.
    testTimeout: 600_000,
    hookTimeout: 300_000,
  },
});
