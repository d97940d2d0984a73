/**
 * One job in this process, as `xenpv run --in-process` does it: a control
 * socket in the runtime folder (so `xenpv list` and `xenpv stop` see it),
 * SIGTERM/SIGINT wired to stop, the runner, and everything removed after.
 */
import { InstanceSocket, type InstanceStatus } from './instances.js';
import type { JobOutcome } from './exit.js';
import type { Job } from './job.js';
import { JobRunner, type RunnerOptions } from './runner.js';

export interface RunJobOptions extends RunnerOptions {
  /** Runtime folder for the control socket; omit for none. */
  readonly runtimeDir?: string;
  /** Stop on SIGTERM and SIGINT (default true). */
  readonly signals?: boolean;
  /** Aborting it stops the job, as SIGTERM would. */
  readonly signal?: AbortSignal;
  /** Called once the runner exists (tests, the child's state reports). */
  readonly onRunner?: (runner: JobRunner) => void;
}

export async function runJob(job: Job, opts: RunJobOptions): Promise<JobOutcome> {
  const runner = new JobRunner(job, opts);
  opts.onRunner?.(runner);
  const status = (): InstanceStatus => ({
    name: runner.name, pid: process.pid, devices: runner.deviceSpecs, state: runner.state,
    startedAt: runner.startedAt, restarts: runner.restartCount,
  });
  const control = opts.runtimeDir !== undefined
    ? await InstanceSocket.listen(opts.runtimeDir, opts.name, { status, stop: () => runner.stop() })
    : undefined;
  const onSignal = (): void => runner.stop();
  if (opts.signals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  opts.signal?.addEventListener('abort', onSignal, { once: true });
  try {
    const done = runner.run();
    // After run(): a stop is refused while the runner is still idle.
    if (opts.signal?.aborted) runner.stop();
    return await done;
  } finally {
    opts.signal?.removeEventListener('abort', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await control?.close();
  }
}
