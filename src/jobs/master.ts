/**
 * The privileged master: opens what needs privilege, spawns the job in a
 * child with a dropped user and group (no capabilities: the kernel clears
 * them when a root process sets a non-zero uid, and libuv drops the
 * supplementary groups), and hands it its resources only as descriptors and
 * through a xenstore proxy (child-plan.ts has the fd layout):
 *
 *  - `file:` devices: the master opens the file (as root) and passes the
 *    descriptor; the child could not open it itself;
 *  - `xen:` devices on the simulation (`sim`): the master serves each with a
 *    blkback in its backend domain, makes the child a domain of its own
 *    (slot in the pool directory, vbd directories), passes the pool memfd
 *    and an event-channel link, and runs the xenstore proxy allowing only
 *    that domain's device directories;
 *  - other specs (`memory:`) the child opens itself.
 *
 * When the child exits, however it exits, the master releases what it held:
 * the proxy connection (xenstored drops its watches and transactions), the
 * event-channel link (backend ports unbound), the domain (ports, mappings,
 * grants reclaimed by the hypervisor), and the vbds with their blkbacks.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import { openBlockDevice, parseSpec } from '../block/registry.js';
import { parseVdev } from '../block/vdev.js';
import { UnsupportedError } from '../errors.js';
import { ForeignEventChannels } from '../sim/evtchn-socket.js';
import { createPoolFile, type PoolFile } from '../native/pool-file.js';
import type { DomId } from '../platform/types.js';
import { compiledModule } from '../util/compiled.js';
import { socketTransport } from '../xenstore/transport/socket.js';
import { FD_EVTCHN, FD_FIRST_FILE, FD_POOL, FD_XENSTORE, type ChildMessage, type ChildPlan, type DevicePlan, type MasterMessage } from './child-plan.js';
import { JobError } from './errors.js';
import { JobExit } from './exit.js';
import { InstanceSocket, type InstanceStatus } from './instances.js';
import { defineJob, type Job } from './job.js';
import { BACKEND_DOMID, SimHost } from './sim-host.js';
import { JobState } from './state.js';
import { XenstoreProxy } from './xs-proxy.js';

/** What the master needs to know of a job: its declarations, not its code. */
export type JobDeclaration = Pick<Job, 'name' | 'devices' | 'deviceOptions'>;

export interface MasterOptions {
  readonly name: string;
  /** Absolute path of the job module (the child imports it; it must be readable by `uid`). */
  readonly modulePath: string;
  /** The job's declared devices (describeJob reads them without running the module as root). */
  readonly job: JobDeclaration;
  readonly uid: number;
  readonly gid: number;
  /** Serve `xen:` devices on a simulation; each is backed by `backing(name)` (a registry spec). */
  readonly sim?: { readonly backing: (device: string) => string };
  /** Runtime folder for the control socket; omit for none. */
  readonly runtimeDir?: string;
  readonly stopTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /** Stop on SIGTERM/SIGINT (default true). */
  readonly signals?: boolean;
  /** Told once the child runs (tests look at its /proc status). */
  readonly onChild?: (child: ChildProcess, info: MasterInfo) => void;
  /** Told after the child exited and what it held was released, before the simulation stops. */
  readonly onReleased?: (info: MasterInfo) => Promise<void> | void;
}

/** What the master set up, for tests and `list`. */
export interface MasterInfo {
  readonly sim?: SimHost;
  readonly domid?: DomId;
  readonly proxy?: XenstoreProxy;
  readonly link?: ForeignEventChannels;
}

export interface MasterResult {
  readonly exit: JobExit;
  /** The outcome the child reported, if it lived to report one. */
  readonly reported?: Extract<ChildMessage, { type: 'outcome' }>;
  /** How the child ended. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}


/** Run `opts.job` in an unprivileged child; resolves after the child exited and everything is released. */
export async function runMaster(opts: MasterOptions): Promise<MasterResult> {
  const log = (line: string): void => opts.log?.(`${opts.name}: ${line}`);
  const undo: Array<() => Promise<unknown> | unknown> = [];
  const runUndo = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) {
      try { await f(); } catch (err) { log(`release: ${(err as Error).message}`); }
    }
  };
  try {
    return await runMasterInner(opts, log, undo);
  } finally {
    await runUndo();
  }
}

async function runMasterInner(opts: MasterOptions, log: (l: string) => void, undo: Array<() => unknown>): Promise<MasterResult> {
  // The control socket and signals come first: a name already in use fails
  // before anything is opened, and a stop that arrives before the child
  // runs is handed to it with its plan.
  let current: ChildProcess | undefined;
  let stopAsked = false;
  let state: string = JobState.Idle;
  let restarts = 0;
  let reported: Extract<ChildMessage, { type: 'outcome' }> | undefined;
  const tell = (m: MasterMessage): void => { if (current?.connected) current.send(m); };
  const stop = (): void => { log('stop requested'); stopAsked = true; tell({ type: 'stop' }); };
  const startedAt = Date.now();
  const status = (): InstanceStatus => ({
    name: opts.name, pid: process.pid, devices: opts.job.devices, state, startedAt, restarts,
    child: current?.pid !== undefined ? { pid: current.pid, uid: opts.uid, gid: opts.gid } : undefined,
  });
  const control = opts.runtimeDir !== undefined ? await InstanceSocket.listen(opts.runtimeDir, opts.name, { status, stop }) : undefined;
  if (control) undo.push(() => control.close());
  if (opts.signals !== false) {
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    undo.push(() => { process.off('SIGTERM', stop); process.off('SIGINT', stop); });
  }

  const devices: Record<string, DevicePlan> = {};
  // Descriptors of file devices: ours until the child has its copies.
  const fileFds: number[] = [];
  const closeFileFds = (): void => { for (const fd of fileFds.splice(0)) closeSync(fd); };
  undo.push(closeFileFds);
  const xenDevices: Array<{ name: string; spec: string; devid: number }> = [];
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
      if (!opts.sim) {
        throw new JobError('open-failed', `device ${name} (${spec}): xen devices for an unprivileged child are only served on the simulation here (--sim); passing /dev/xen descriptors to a child is not implemented`, { device: name, cause: new UnsupportedError('xen devices in a child need --sim') });
      }
      const devid = parseVdev(target, 'spec');
      devices[name] = { kind: 'xen-sim', spec, devid };
      xenDevices.push({ name, spec, devid });
    } else {
      devices[name] = { kind: 'spec', spec };
    }
  }

  // The simulation, when there are xen devices: the child becomes domain `domid`.
  let sim: SimHost | undefined;
  let domid: DomId | undefined;
  let pool: PoolFile | undefined;
  if (xenDevices.length > 0) {
    sim = SimHost.start();
    undo.push(() => sim!.stop());
    const dom = sim.hypervisor.createDomain(`job-${opts.name}`);
    domid = dom.domid;
    // Released when the child is gone (see `release` below) — or here on a failed start.
    undo.push(() => (sim!.hypervisor.liveDomains().includes(domid!) ? sim!.hypervisor.destroyDomain(domid!) : undefined));
    for (const d of xenDevices) {
      const backing = await openBlockDevice(opts.sim!.backing(d.name));
      await sim.serve(domid, d.devid, backing);
    }
    pool = createPoolFile(sim.hypervisor.layout);
    undo.push(() => pool!.close());
  }

  const stdio: StdioOptions = [
    'ignore', 'inherit', 'inherit', 'ipc',
    sim ? 'pipe' : 'ignore', sim ? 'pipe' : 'ignore', pool ? pool.fd : 'ignore',
    ...fileFds,
  ];
  const child = spawn(process.execPath, [compiledModule(import.meta.url, 'jobs/child-main.js')], {
    stdio, uid: opts.uid, gid: opts.gid, cwd: '/', env: childEnv(),
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new JobError('child', `cannot start the job child as uid ${opts.uid}: ${err.message}`, { cause: err }))));
  spawnError.catch(() => undefined);
  // The child has its own copies now (or never will).
  closeFileFds();

  let proxy: XenstoreProxy | undefined;
  let link: ForeignEventChannels | undefined;
  const pipes = child.stdio as unknown as Array<Socket | null>;
  if (sim && domid !== undefined) {
    const paths = xenDevices.map((d) => sim!.pathsOf(domid!, d.devid));
    proxy = new XenstoreProxy(socketTransport(pipes[FD_XENSTORE]!), sim.xenstored, {
      domid, allow: paths.flatMap((p) => [p.frontend, p.backend]), log: (l) => log(l),
    });
    link = new ForeignEventChannels(pipes[FD_EVTCHN]!, BACKEND_DOMID, domid);
    sim.backend.evtchn.attach(link);
  }
  const info: MasterInfo = { sim, domid, proxy, link };

  child.on('message', (m: ChildMessage) => {
    if (m?.type === 'state') { state = String(m.state); restarts = Number(m.restarts) || 0; }
    else if (m?.type === 'outcome') reported = m;
  });
  current = child;

  const plan: ChildPlan = {
    type: 'plan', name: opts.name, module: opts.modulePath, devices, stopTimeoutMs: opts.stopTimeoutMs,
    sim: sim && domid !== undefined
      ? { domid, backendDomid: BACKEND_DOMID, poolPages: sim.hypervisor.layout.poolPages, scratchBytes: sim.hypervisor.layout.scratchBytes }
      : undefined,
  };
  tell(plan);
  if (stopAsked) tell({ type: 'stop' });
  opts.onChild?.(child, info);

  const { code, signal } = await Promise.race([exited, spawnError]);
  log(`child ${child.pid} exited (${signal ?? `code ${code}`})`);
  // Release what the child held, whatever way it ended: its xenstore
  // connection (watches, transactions), its event-channel link (the
  // backend's ports become unbound), then its domain (grants, mappings).
  // Order: the blkbacks serving it stop (unmapping its grants) while their
  // ports still exist on the link (dead peer: unbound, but closable), then
  // the link goes, then the domain, whose slot is then free (nothing mapped).
  proxy?.close();
  if (sim && domid !== undefined) await sim.releaseFrontend(domid);
  link?.dispose();
  if (sim && domid !== undefined && sim.hypervisor.liveDomains().includes(domid)) await sim.hypervisor.destroyDomain(domid);
  await opts.onReleased?.(info);
  const exit = reported !== undefined && code === reported.exit ? (reported.exit as JobExit) : JobExit.ChildDied;
  return { exit, reported, code, signal };
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
