/**
 * The privileged master: opens what needs privilege, spawns the job in a
 * child with a dropped user and group (no capabilities: the kernel clears
 * them when a root process sets a non-zero uid, and libuv drops the
 * supplementary groups), and hands it its resources only as descriptors and
 * through a xenstore proxy (child-plan.ts has the fd layout,
 * child-session.ts spawns and releases one child):
 *
 *  - `file:` devices: the master opens the file (as root) and passes the
 *    descriptor; the child could not open it itself;
 *  - `xen:` devices on the simulation (`sim`): the master serves each with a
 *    blkback in its backend domain, makes the child a domain of its own
 *    (slot in the pool directory, vbd directories), passes the pool memfd
 *    and an event-channel link, and runs the xenstore proxy allowing only
 *    that domain's device directories;
 *  - `xen:` devices on real Xen (no `sim`; xen-host.ts): the master creates
 *    each vbd on the kernel's blkback (a loop device over its backing file),
 *    opens /dev/xen/evtchn, gntalloc (and gntdev for a job that maps grants)
 *    and passes the descriptors, and runs the proxy over a connection of its
 *    own to dom0's xenstored;
 *  - other specs (`memory:`) the child opens itself.
 *
 * When the child exits, however it exits, the master releases what it held.
 * A child that dies without reporting an outcome while its job was starting
 * or running is respawned as the job's restart policy says (the same policy,
 * table and restart count as restarts inside the child: one budget over the
 * job's life); when the policy gives up the result is JobExit.ChildDied with
 * a JobError `child`.
 *
 *   child state (reported)   the child dies              master
 *   starting / running  ──── Crashed|StartFailed ──►  backoff ── RetryDue ──► respawn (starting)
 *                                                        └──── GiveUp ───► stopping ─► stopped, exit 7
 *   idle / opening      ──── (refused by the table) ──────────────────────► exit 7, no respawn
 */
import { closeSync, constants, openSync } from 'node:fs';
import { openBlockDevice, parseSpec } from '../block/registry.js';
import type { BlockDevice } from '../block/types.js';
import { parseVdev } from '../block/vdev.js';
import { UnsupportedError } from '../errors.js';
import { createPoolFile } from '../native/pool-file.js';
import { type ChildMessage, type DevicePlan, FD_FIRST_FILE } from './child-plan.js';
import { startChild, type ChildSession, type ChildSetup, type MasterInfo } from './child-session.js';
import { JobError } from './errors.js';
import { JobExit } from './exit.js';
import { InstanceSocket, type InstanceStatus } from './instances.js';
import { defineJob, restartDelay, type Job } from './job.js';
import { SimHost } from './sim-host.js';
import { JobEvent, JobState, nextState } from './state.js';
import type { XenDeviceSpec } from './xen-host.js';
import { spawn } from 'node:child_process';
import { compiledModule } from '../util/compiled.js';

export type { MasterInfo } from './child-session.js';

/** What the master needs to know of a job: its declarations, not its code. */
export type JobDeclaration = Pick<Job, 'name' | 'devices' | 'deviceOptions' | 'restart' | 'mapsForeignGrants'>;

export interface MasterOptions {
  readonly name: string;
  /** Absolute path of the job module (the child imports it; it must be readable by `uid`). */
  readonly modulePath: string;
  /** The job's declared devices and restart policy (describeJob reads them without running the module as root). */
  readonly job: JobDeclaration;
  readonly uid: number;
  readonly gid: number;
  /** Serve `xen:` devices on a simulation; each is backed by `backing(name)` (a registry spec). */
  readonly sim?: { readonly backing: (device: string) => string };
  /**
   * Without `sim`, `xen:` devices are real Xen: each needs a backing
   * `file:PATH` (a file, served through a loop device, or a block device)
   * for the kernel's blkback in dom0.
   */
  readonly xen?: { readonly backing: (device: string) => string | undefined };
  /** Runtime folder for the control socket; omit for none. */
  readonly runtimeDir?: string;
  readonly stopTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /** Stop on SIGTERM/SIGINT (default true). */
  readonly signals?: boolean;
  /** Aborting it stops the job, as SIGTERM would. */
  readonly signal?: AbortSignal;
  /** Told each time a child runs (tests look at its /proc status). */
  readonly onChild?: (child: ChildSession['child'], info: MasterInfo) => void;
  /** Told after each child exited and what it held was released, before the simulation stops. */
  readonly onReleased?: (info: MasterInfo) => Promise<void> | void;
}

export interface MasterResult {
  readonly exit: JobExit;
  /** The outcome the last child reported, if it lived to report one. */
  readonly reported?: Extract<ChildMessage, { type: 'outcome' }>;
  /** How the last child ended. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Restarts made over the job's life (in a child, and respawns of children). */
  readonly restarts: number;
  /** Children respawned after dying. */
  readonly respawns: number;
  /** Why it ended, when a child died and was not (or no more) respawned: reason `child`. */
  readonly error?: JobError;
}

/** Run `opts.job` in an unprivileged child; resolves after the last child exited and everything is released. */
export async function runMaster(opts: MasterOptions): Promise<MasterResult> {
  const log = (line: string): void => opts.log?.(`${opts.name}: ${line}`);
  const undo: Array<() => Promise<unknown> | unknown> = [];
  try {
    return await runMasterInner(opts, log, undo);
  } finally {
    for (const f of undo.splice(0).reverse()) {
      try { await f(); } catch (err) { log(`release: ${(err as Error).message}`); }
    }
  }
}

async function runMasterInner(opts: MasterOptions, log: (l: string) => void, undo: Array<() => unknown>): Promise<MasterResult> {
  // The control socket and signals come first: a name already in use fails
  // before anything is opened, and a stop that arrives before the child
  // runs is handed to it with its plan.
  let current: ChildSession | undefined;
  let stopAsked = false;
  let wakeBackoff: (() => void) | undefined;
  let state: JobState = JobState.Idle;
  let restarts = 0;
  const stop = (): void => {
    log('stop requested');
    stopAsked = true;
    if (current?.child.connected) current.child.send({ type: 'stop' });
    wakeBackoff?.();
  };
  const startedAt = Date.now();
  const status = (): InstanceStatus => ({
    name: opts.name, pid: process.pid, devices: opts.job.devices, state, startedAt, restarts,
    child: current?.child.pid !== undefined ? { pid: current.child.pid, uid: opts.uid, gid: opts.gid } : undefined,
  });
  const control = opts.runtimeDir !== undefined ? await InstanceSocket.listen(opts.runtimeDir, opts.name, { status, stop }) : undefined;
  if (control) undo.push(() => control.close());
  if (opts.signals !== false) {
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    undo.push(() => { process.off('SIGTERM', stop); process.off('SIGINT', stop); });
  }
  if (opts.signal) {
    if (opts.signal.aborted) stopAsked = true;
    opts.signal.addEventListener('abort', stop, { once: true });
    undo.push(() => opts.signal!.removeEventListener('abort', stop));
  }

  const setup = await prepare(opts, log, undo);
  const policy = opts.job.restart ?? { policy: 'never' };
  let respawns = 0;
  for (;;) {
    let reported: Extract<ChildMessage, { type: 'outcome' }> | undefined;
    current = await startChild(setup, restarts, (m: ChildMessage) => {
      if (m?.type === 'state') { state = String(m.state) as JobState; restarts = Number(m.restarts) || 0; }
      else if (m?.type === 'outcome') reported = m;
    });
    const session = current;
    if (stopAsked && session.child.connected) session.child.send({ type: 'stop' });
    opts.onChild?.(session.child, session.info);
    const { code, signal } = await session.exited.finally(() => session.release());
    log(`child ${session.child.pid} exited (${signal ?? `code ${code}`})`);
    await opts.onReleased?.(session.info);
    current = undefined;
    if (reported !== undefined && code === reported.exit) {
      return { exit: reported.exit as JobExit, reported, code, signal, restarts: reported.restarts, respawns };
    }
    // Died without an outcome: the same table and policy as a crash inside the child.
    const how = signal ?? `exit code ${code}`;
    const crashed = nextState(state, state === JobState.Starting ? JobEvent.StartFailed : JobEvent.Crashed);
    const delay = crashed === JobState.Backoff && !stopAsked ? restartDelay(policy, restarts + 1) : undefined;
    if (delay === undefined) {
      const why = crashed !== JobState.Backoff ? `while ${state}` : stopAsked ? 'while stopping'
        : restarts > 0 ? `after ${restarts} restart(s); the restart policy allows no more` : 'and its restart policy allows no restart';
      if (crashed === JobState.Backoff) state = nextState(JobState.Backoff, JobEvent.GiveUp)!;
      state = nextState(state, JobEvent.Stopped) ?? state;
      const error = new JobError('child', `the job child died (${how}) without reporting an outcome ${why}`);
      log(error.message);
      return { exit: JobExit.ChildDied, reported, code, signal, restarts, respawns, error };
    }
    state = JobState.Backoff;
    restarts++;
    log(`child died (${how}); respawn ${restarts} in ${delay} ms`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { wakeBackoff = undefined; resolve(); }, delay);
      wakeBackoff = () => { clearTimeout(t); wakeBackoff = undefined; resolve(); };
    });
    if (stopAsked) {
      // Stopped while no child ran: nothing of the job is left to stop.
      state = nextState(nextState(state, JobEvent.StopRequested)!, JobEvent.Stopped)!;
      return { exit: JobExit.Ok, code, signal, restarts, respawns };
    }
    state = nextState(state, JobEvent.RetryDue)!;
    respawns++;
  }
}

/**
 * What outlives each child: the file devices' descriptors, the simulation
 * with its backing devices, or the real-Xen device list. Anything that
 * cannot be had is a JobError `open-failed` naming the device, before a
 * child is spawned.
 */
async function prepare(opts: MasterOptions, log: (l: string) => void, undo: Array<() => unknown>): Promise<ChildSetup> {
  const devices: Record<string, DevicePlan> = {};
  const fileFds: number[] = [];
  undo.push(() => { for (const fd of fileFds.splice(0)) closeSync(fd); });
  const xenDevices: Array<{ name: string; devid: number; readOnly: boolean }> = [];
  for (const [name, spec] of Object.entries(opts.job.devices)) {
    const { flavour, target } = parseSpec(spec);
    const o = opts.job.deviceOptions?.[name] ?? {};
    if (flavour === 'file') {
      const readOnly = o.readOnly === true;
      let fd: number;
      try {
        fd = openSync(target, readOnly ? constants.O_RDONLY : constants.O_RDWR);
      } catch (err) {
        throw new JobError('open-failed', `device ${name} (${spec}): ${(err as Error).message}`, { cause: err, device: name });
      }
      devices[name] = { kind: 'fd', spec, fd: FD_FIRST_FILE + fileFds.length, path: target, readOnly, sectorSize: o.sectorSize };
      fileFds.push(fd);
    } else if (flavour === 'xen') {
      const devid = parseVdev(target, 'spec');
      devices[name] = { kind: opts.sim ? 'xen-sim' : 'xen', spec, devid };
      xenDevices.push({ name, devid, readOnly: o.readOnly === true });
    } else {
      devices[name] = { kind: 'spec', spec };
    }
  }
  const base = {
    name: opts.name, modulePath: opts.modulePath, uid: opts.uid, gid: opts.gid, env: childEnv(),
    devices, fileFds, stopTimeoutMs: opts.stopTimeoutMs, log,
  };
  if (xenDevices.length === 0) return base;
  if (opts.sim) {
    const host = SimHost.start();
    undo.push(() => host.stop());
    const disks: Array<{ devid: number; backing: BlockDevice }> = [];
    // Each child's release stopped the blkbacks serving them; closed before the machine stops.
    undo.push(async () => {
      for (const d of disks.reverse()) {
        await d.backing.flush().catch(() => undefined);
        await d.backing.disconnect().catch(() => undefined);
      }
    });
    for (const d of xenDevices) {
      const spec = opts.sim.backing(d.name);
      try {
        disks.push({ devid: d.devid, backing: await openBlockDevice(spec) });
      } catch (err) {
        throw new JobError('open-failed', `device ${d.name} (backing ${spec}): ${(err as Error).message}`, { cause: err, device: d.name });
      }
    }
    const pool = createPoolFile(host.hypervisor.layout);
    undo.push(() => pool.close());
    return { ...base, sim: { host, pool, disks } };
  }
  const specs: XenDeviceSpec[] = xenDevices.map((d) => {
    const backing = opts.xen?.backing(d.name);
    if (backing === undefined) {
      throw new JobError('open-failed', `device ${d.name} (${opts.job.devices[d.name]}): a real xen: device for a job child needs a backing (--backing ${d.name}=file:PATH, a file or a block device the master serves through the kernel's blkback), or --sim`, { device: d.name, cause: new UnsupportedError('real xen device without a backing') });
    }
    return { name: d.name, devid: d.devid, backing, readOnly: d.readOnly };
  });
  return { ...base, xen: { devices: specs, gntdev: opts.job.mapsForeignGrants === true } };
}

/** A child's environment: PATH, LANG, and the XENPV_* settings jobs read. */
function childEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: process.env['LANG'] ?? 'C.UTF-8',
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('XENPV_'))),
  };
}

/**
 * Read a job module's declarations (name, devices, device options) by
 * importing it in a child running as `uid`/`gid`, so that none of the
 * module's code runs with the master's privileges. JobError `bad-module`
 * if it is not a job; `child` if the child cannot run.
 */
export async function describeJob(modulePath: string, uid: number, gid: number): Promise<JobDeclaration> {
  const child = spawn(process.execPath, [compiledModule(import.meta.url, 'jobs/describe-main.js'), modulePath], {
    stdio: ['ignore', 'pipe', 'inherit'], uid, gid, cwd: '/', env: childEnv(),
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { if (out.length < 1 << 20) out += d; });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new JobError('child', `cannot run the job module as uid ${uid}: ${err.message}`, { cause: err })));
    child.once('close', (c) => resolve(c));
  });
  let decl: { error?: string } & Partial<JobDeclaration>;
  try {
    decl = JSON.parse(out) as typeof decl;
  } catch {
    throw new JobError('child', `reading ${modulePath} as uid ${uid} failed (exit ${code}), no declaration printed`);
  }
  if (decl.error !== undefined || code !== 0) throw new JobError('bad-module', decl.error ?? `exit ${code}`);
  return defineJob({ ...decl, start: () => undefined } as Job);
}
