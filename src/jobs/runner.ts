/**
 * Runs one job: opens its declared devices through the registry, starts it,
 * restarts it after a crash as its policy says, and on stop (or completion,
 * or a device failure) stops it, flushes and disconnects its devices, and
 * resolves `run()` with the outcome. Every state change goes through the
 * table in state.ts; an event the table refuses is ignored.
 *
 *   const runner = new JobRunner(job, { name: 'counter' });
 *   process.once('SIGTERM', () => runner.stop());
 *   const outcome = await runner.run();
 *   process.exitCode = exitStatus(outcome);
 */
import { openBlockDevice, type OpenOptions } from '../block/registry.js';
import type { BlockDevice } from '../block/types.js';
import { TimeoutError, type XenpvError } from '../errors.js';
import { JobError } from './errors.js';
import { OutcomeKind, type JobOutcome } from './exit.js';
import { restartDelay, type Job, type JobContext } from './job.js';
import { JobEvent, JobState, nextState } from './state.js';
import { WatchedDevice } from './watched-device.js';

/** Opens one declared device; default openBlockDevice(spec, options). */
export type DeviceOpener = (name: string, spec: string, options: OpenOptions) => Promise<BlockDevice>;

export interface RunnerOptions {
  /** Instance name (shown by `xenpv list`, given to the job's context). */
  readonly name: string;
  readonly open?: DeviceOpener;
  readonly log?: (line: string) => void;
  /** Time allowed for the job's stop(), and separately for each device's flush and disconnect (default 10000). */
  readonly stopTimeoutMs?: number;
  /**
   * Restarts already made for this job by earlier processes (a master
   * respawning its child): they count against the same restart policy.
   */
  readonly restartsBefore?: number;
  /** Called after every state change. */
  readonly onState?: (state: JobState, previous: JobState) => void;
}

/** One start of the job and what belongs to it. */
interface Run {
  readonly attempt: number;
  readonly abort: AbortController;
  readonly ctx: JobContext;
  /** Settles when start() has. */
  started: Promise<unknown>;
  stopCalled: boolean;
}

const defaultOpener: DeviceOpener = (_name, spec, options) => openBlockDevice(spec, options);

export class JobRunner {
  private current: JobState = JobState.Idle;
  private readonly devices = new Map<string, WatchedDevice>();
  private opening: Promise<void> = Promise.resolve();
  private run_: Run | undefined;
  private restarts: number;
  private timer: NodeJS.Timeout | undefined;
  private outcome: { kind: OutcomeKind; error?: Error } | undefined;
  private failedDevice: string | undefined;
  private readonly stopErrors: Error[] = [];
  private resolveDone!: (o: JobOutcome) => void;
  private readonly done: Promise<JobOutcome>;
  readonly startedAt = Date.now();

  constructor(readonly job: Job, private readonly opts: RunnerOptions) {
    this.done = new Promise((resolve) => { this.resolveDone = resolve; });
    this.restarts = opts.restartsBefore ?? 0;
  }

  get state(): JobState { return this.current; }
  get name(): string { return this.opts.name; }
  /** Declared device names and specs. */
  get deviceSpecs(): Readonly<Record<string, string>> { return this.job.devices; }
  get restartCount(): number { return this.restarts; }

  /** Open, start, and resolve with the outcome once everything is released. Idempotent. */
  run(): Promise<JobOutcome> {
    if (this.fire(JobEvent.Open)) this.opening = this.openAll();
    return this.done;
  }

  /** Ask the job to stop (SIGTERM, `xenpv stop`). Safe in any state. */
  stop(): void {
    this.end(JobEvent.StopRequested, OutcomeKind.Requested);
  }

  // ------------------------------------------------------------ transitions

  /** Apply `event`; false if the table refuses it in the current state. */
  private fire(event: JobEvent): boolean {
    const next = nextState(this.current, event);
    if (next === undefined) return false;
    const prev = this.current;
    this.current = next;
    this.opts.onState?.(next, prev);
    return true;
  }

  /** An event that leads to Stopping: record why (first reason wins), then stop. */
  private end(event: JobEvent, kind: OutcomeKind, error?: Error): void {
    if (!this.fire(event)) return;
    this.outcome ??= { kind, error };
    void this.stopAll();
  }

  private log(line: string): void {
    this.opts.log?.(`${this.opts.name}: ${line}`);
  }

  // ------------------------------------------------------------ opening

  private async openAll(): Promise<void> {
    const open = this.opts.open ?? defaultOpener;
    for (const [name, spec] of Object.entries(this.job.devices)) {
      try {
        const dev = await open(name, spec, this.job.deviceOptions?.[name] ?? {});
        this.devices.set(name, new WatchedDevice(name, dev, (n, err) => this.deviceFailed(n, err)));
      } catch (err) {
        const e = new JobError('open-failed', `device ${name} (${spec}): ${(err as Error).message}`, { cause: err, device: name });
        if (this.current === JobState.Opening) {
          await this.releaseDevices();
          this.outcome = { kind: OutcomeKind.OpenFailed, error: e };
          this.fire(JobEvent.OpenFailed);
          this.finish();
        } else {
          this.stopErrors.push(e); // a stop was asked meanwhile; stopAll releases the rest
        }
        return;
      }
      // A stop asked while opening: stopAll waits for this loop, then releases.
      if (this.current !== JobState.Opening) return;
    }
    if (this.fire(JobEvent.Opened)) this.startRun();
  }

  // ------------------------------------------------------------ running

  private startRun(): void {
    const attempt = this.restarts;
    const abort = new AbortController();
    const devices = Object.fromEntries(this.devices) as Record<string, BlockDevice>;
    const ctx: JobContext = {
      name: this.opts.name,
      devices,
      attempt,
      signal: abort.signal,
      fail: (err) => { if (this.run_ === run) this.crashed(run, toError(err)); },
      done: () => { if (this.run_ === run) this.end(JobEvent.Completed, OutcomeKind.Completed); },
      log: (m) => this.log(m),
    };
    const run: Run = { attempt, abort, ctx, started: Promise.resolve(), stopCalled: false };
    this.run_ = run;
    this.log(attempt === 0 ? 'starting' : `restarting (restart ${attempt})`);
    run.started = (async () => this.job.start(ctx))().then(
      () => { if (this.run_ === run) this.fire(JobEvent.Started); },
      (err: unknown) => { if (this.run_ === run) this.crashed(run, toError(err)); },
    );
  }

  /** The run failed (start rejected, or ctx.fail while running). */
  private crashed(run: Run, err: Error): void {
    const event = this.current === JobState.Starting ? JobEvent.StartFailed : JobEvent.Crashed;
    if (!this.fire(event)) return;
    this.log(`crashed: ${err.message}`);
    void this.afterCrash(run, err);
  }

  private async afterCrash(run: Run, err: Error): Promise<void> {
    await this.stopRun(run);
    if (this.current !== JobState.Backoff) return; // a stop or device failure came meanwhile
    const delay = restartDelay(this.job.restart ?? { policy: 'never' }, this.restarts + 1);
    if (delay === undefined) {
      const e = new JobError('crashed', `job crashed${this.restarts > 0 ? ` after ${this.restarts} restart(s)` : ''}: ${err.message}`, { cause: err });
      this.end(JobEvent.GiveUp, OutcomeKind.Crashed, e);
      return;
    }
    this.restarts++;
    this.log(`restart ${this.restarts} in ${delay} ms`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.fire(JobEvent.RetryDue)) this.startRun();
    }, delay);
  }

  private deviceFailed(name: string, err: XenpvError): void {
    const e = new JobError('device-failed', `device ${name} failed under the running job: ${err.message}`, { cause: err, device: name });
    if (this.current === JobState.Stopping || this.current === JobState.Stopped) return;
    this.failedDevice ??= name;
    this.log(e.message);
    this.end(JobEvent.DeviceFailed, OutcomeKind.DeviceFailed, e);
  }

  /** Abort the run's signal and call the job's stop() once (after start() settled). */
  private async stopRun(run: Run): Promise<void> {
    if (run.stopCalled) return;
    run.stopCalled = true;
    run.abort.abort();
    const limit = this.opts.stopTimeoutMs ?? 10_000;
    try {
      await withTimeout(run.started, limit, 'start() to settle');
      if (this.job.stop) await withTimeout(Promise.resolve().then(() => this.job.stop!(run.ctx)), limit, 'stop()');
    } catch (err) {
      this.stopErrors.push(new JobError('stop-failed', `stopping the job: ${(err as Error).message}`, { cause: err }));
    }
  }

  // ------------------------------------------------------------ stopping

  private async stopAll(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const run = this.run_;
    if (run) await this.stopRun(run);
    await this.opening;
    await this.releaseDevices();
    this.fire(JobEvent.Stopped);
    this.finish();
  }

  /** Flush (unless failed or read-only), then disconnect, every open device. */
  private async releaseDevices(): Promise<void> {
    const limit = this.opts.stopTimeoutMs ?? 10_000;
    for (const [name, dev] of [...this.devices].reverse()) {
      dev.releasing = true;
      if (name !== this.failedDevice && dev.info().readWrite) {
        try { await withTimeout(dev.inner.flush(), limit, `flush of ${name}`); } catch (err) {
          this.stopErrors.push(new JobError('stop-failed', `device ${name}: flush: ${(err as Error).message}`, { cause: err, device: name }));
        }
      }
      try { await withTimeout(dev.inner.disconnect(), limit, `disconnect of ${name}`); } catch (err) {
        this.stopErrors.push(new JobError('stop-failed', `device ${name}: disconnect: ${(err as Error).message}`, { cause: err, device: name }));
      }
    }
    this.devices.clear();
  }

  private finish(): void {
    const o = this.outcome ?? { kind: OutcomeKind.Requested };
    this.log(`${this.current} (${o.kind}${o.error ? `: ${o.error.message}` : ''})`);
    this.resolveDone({ kind: o.kind, error: o.error, stopErrors: [...this.stopErrors], restarts: this.restarts });
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
