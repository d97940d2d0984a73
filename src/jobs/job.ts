/**
 * What a job module declares: its devices by name, a restart policy, and
 * start/stop.
 *
 *   export default defineJob({
 *     devices: { log: 'file:/var/lib/counter.img', site: 'xen:xvdb' },
 *     restart: { policy: 'on-failure', maxRetries: 3, backoffMs: 200 },
 *     async start(ctx) { ... ctx.devices.log.write(...) ... },
 *     async stop(ctx) { ... },
 *   });
 *
 * The runner opens every device before start() and flushes and
 * disconnects them after stop(); a job never opens or closes them itself.
 */
import type { OpenOptions } from '../block/registry.js';
import type { BlockDevice } from '../block/types.js';
import { InvalidArgumentError } from '../errors.js';
import { JobError } from './errors.js';

export type RestartPolicy =
  | { readonly policy: 'never' }
  | {
      readonly policy: 'on-failure';
      /** Restarts allowed over the job's life (>= 0). */
      readonly maxRetries: number;
      /** Delay before the first restart, doubled for each further one (default 100). */
      readonly backoffMs?: number;
      /** Cap on the delay (default 30000). */
      readonly maxBackoffMs?: number;
    };

export interface JobContext {
  readonly name: string;
  /** The declared devices, open. */
  readonly devices: Readonly<Record<string, BlockDevice>>;
  /** 0 for the first start, then 1, 2, ... for restarts. */
  readonly attempt: number;
  /** Aborted when this run of the job is over (stop, crash, device failure). */
  readonly signal: AbortSignal;
  /** The running job failed: the restart policy decides what happens. */
  fail(err: unknown): void;
  /** The job has finished its work: it is stopped and its devices released. */
  done(): void;
  log(message: string): void;
}

export interface Job {
  /** Instance name default (else the module's file name). */
  readonly name?: string;
  /** Device name -> registry spec (`memory:1MiB`, `file:/path`, `xen:xvdb`). */
  readonly devices: Readonly<Record<string, string>>;
  /** openBlockDevice options per device name. */
  readonly deviceOptions?: Readonly<Record<string, OpenOptions>>;
  /** Default `{ policy: 'never' }`. Under a master it also decides whether a dead child is respawned. */
  readonly restart?: RestartPolicy;
  /**
   * The job maps other domains' grants (it runs a backend): under a master
   * on real Xen its child is passed /dev/xen/gntdev too (default false).
   */
  readonly mapsForeignGrants?: boolean;
  /** Resolves once the job runs; a rejection is a crash. */
  start(ctx: JobContext): Promise<void> | void;
  /** Stop the running job (default: nothing beyond aborting ctx.signal). */
  stop?(ctx: JobContext): Promise<void> | void;
}

const DEVICE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
export const DEFAULT_BACKOFF_MS = 100;
export const DEFAULT_MAX_BACKOFF_MS = 30_000;

/** Checks a job's shape; returns it unchanged. Throws JobError `bad-module`. */
export function defineJob<J extends Job>(job: J): J {
  const bad = (msg: string): never => {
    throw new JobError('bad-module', `job: ${msg}`, { cause: new InvalidArgumentError('job', msg) });
  };
  if (typeof job !== 'object' || job === null) bad('must be an object');
  if (typeof job.start !== 'function') bad('start must be a function');
  if (job.stop !== undefined && typeof job.stop !== 'function') bad('stop must be a function');
  if (job.name !== undefined && (typeof job.name !== 'string' || !INSTANCE_NAME.test(job.name))) {
    bad(`name ${JSON.stringify(job.name)} is not an instance name ([A-Za-z0-9][A-Za-z0-9_.-]*, at most 64)`);
  }
  if (typeof job.devices !== 'object' || job.devices === null) bad('devices must be an object of name: spec');
  for (const [name, spec] of Object.entries(job.devices)) {
    if (!DEVICE_NAME.test(name)) bad(`device name ${JSON.stringify(name)} is not an identifier`);
    if (typeof spec !== 'string' || !spec.includes(':')) bad(`device ${name}: spec must be a string like memory:1MiB`);
  }
  checkRestart(job.restart ?? { policy: 'never' }, bad);
  if (job.mapsForeignGrants !== undefined && typeof job.mapsForeignGrants !== 'boolean') bad('mapsForeignGrants must be a boolean');
  return job;
}

function checkRestart(r: RestartPolicy, bad: (msg: string) => never): void {
  if (typeof r !== 'object' || r === null) bad('restart must be { policy: never | on-failure, ... }');
  if (r.policy === 'never') return;
  if (r.policy !== 'on-failure') bad(`restart.policy must be never or on-failure, got ${JSON.stringify((r as { policy: unknown }).policy)}`);
  const nonNeg = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!nonNeg(r.maxRetries)) bad('restart.maxRetries must be a non-negative integer');
  if (r.backoffMs !== undefined && !nonNeg(r.backoffMs)) bad('restart.backoffMs must be a non-negative integer');
  if (r.maxBackoffMs !== undefined && !nonNeg(r.maxBackoffMs)) bad('restart.maxBackoffMs must be a non-negative integer');
}

/** Instance names: also file names in the runtime folder. */
export const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Delay before restart number `n` (1 for the first), or undefined when the
 * policy allows no such restart.
 */
export function restartDelay(policy: RestartPolicy, n: number): number | undefined {
  if (policy.policy === 'never' || n > policy.maxRetries) return undefined;
  const base = policy.backoffMs ?? DEFAULT_BACKOFF_MS;
  const cap = policy.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  return Math.min(cap, base * 2 ** Math.min(n - 1, 30));
}

/** The job a loaded module exports: `default`, else `job`. Throws `bad-module`. */
export function jobFromModule(mod: unknown, where: string): Job {
  const m = mod as { default?: unknown; job?: unknown } | null;
  const job = m?.default ?? m?.job;
  if (job === undefined) throw new JobError('bad-module', `${where}: exports no job (export default defineJob({...}))`);
  return defineJob(job as Job);
}
