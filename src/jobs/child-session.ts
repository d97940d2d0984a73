/**
 * One unprivileged child of the master (master.ts): spawned with the
 * descriptors of child-plan.ts, its xenstore proxy and event-channel link
 * set up, and, once it has exited, released: whatever it held that the
 * kernel (or the simulated hypervisor) does not free by itself.
 *
 * What outlives a child (the master's file descriptors, the simulation and
 * its backing devices) belongs to the master, so a respawned child finds
 * the same disks; what is the child's own (its simulated domain and vbds,
 * or on real Xen its /dev/xen descriptors and vbds) is made per child.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Socket } from 'node:net';
import type { BlockDevice } from '../block/types.js';
import type { PoolFile } from '../native/pool-file.js';
import type { DomId } from '../platform/types.js';
import { ForeignEventChannels } from '../sim/evtchn-socket.js';
import { compiledModule } from '../util/compiled.js';
import { socketTransport } from '../xenstore/transport/socket.js';
import type { XsTransport } from '../xenstore/transport/types.js';
import { FD_EVTCHN, FD_XENSTORE, type ChildMessage, type ChildPlan, type DevicePlan } from './child-plan.js';
import { JobError } from './errors.js';
import { BACKEND_DOMID, type SimHost } from './sim-host.js';
import { DOM0, XenHost, type XenDeviceSpec } from './xen-host.js';
import { XenstoreProxy } from './xs-proxy.js';

/** What the master set up for one child, for tests and `list`. */
export interface MasterInfo {
  readonly sim?: SimHost;
  readonly domid?: DomId;
  readonly proxy?: XenstoreProxy;
  readonly link?: ForeignEventChannels;
  /** Real Xen: the vbds, loop devices and /dev/xen descriptors made for this child. */
  readonly xen?: XenHost;
}

/** The master's long-lived part a child is started from. */
export interface ChildSetup {
  readonly name: string;
  readonly modulePath: string;
  readonly uid: number;
  readonly gid: number;
  readonly env: NodeJS.ProcessEnv;
  readonly devices: Readonly<Record<string, DevicePlan>>;
  /** The master's descriptors of file: devices, passed at fd 8 on. */
  readonly fileFds: readonly number[];
  readonly stopTimeoutMs?: number;
  readonly log: (line: string) => void;
  /** Simulation: the machine, the pool file, and each xen: device's backing (kept across children). */
  readonly sim?: { readonly host: SimHost; readonly pool: PoolFile; readonly disks: ReadonlyArray<{ devid: number; backing: BlockDevice }> };
  /** Real Xen: the vbds to make for each child. */
  readonly xen?: { readonly devices: readonly XenDeviceSpec[]; readonly gntdev: boolean };
}

export interface ChildSession {
  readonly child: ChildProcess;
  readonly info: MasterInfo;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Release what the child held (idempotent); after `exited`. */
  release(): Promise<void>;
}

/**
 * Make the child's own resources, spawn it, and send it its plan
 * (`restarts`: restarts already made, which count against its policy).
 * On a failure before the spawn, what was made is released again.
 */
export async function startChild(s: ChildSetup, restarts: number, onMessage: (m: ChildMessage) => void): Promise<ChildSession> {
  let domid: DomId | undefined;
  let simDomain: DomId | undefined;
  let xen: XenHost | undefined;
  let upstream: XsTransport | undefined;
  let proxy: XenstoreProxy | undefined;
  let link: ForeignEventChannels | undefined;
  let released = false;
  // Order: the proxy's connection first (xenstored drops the child's watches
  // and transactions); on the simulation the blkbacks serving it next
  // (unmapping its grants; their ports, unbound once the peer is gone, are
  // still closable on the link), then the link, then the domain (ports,
  // mappings, grants reclaimed; its slot free); on real Xen the vbds and
  // loop devices (xen-host.ts). The backings stay open for a respawn.
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    const step = async (what: string, f: () => unknown): Promise<void> => {
      try { await f(); } catch (err) { s.log(`release ${what}: ${(err as Error).message}`); }
    };
    await step('xenstore proxy', () => { proxy?.close(); upstream?.close(); });
    if (s.sim && simDomain !== undefined) {
      const { host } = s.sim;
      const id = simDomain;
      await step('vbds', () => host.releaseFrontend(id, { keepBacking: true }));
      await step('event-channel link', () => link?.dispose());
      await step('domain', () => (host.hypervisor.liveDomains().includes(id) ? host.hypervisor.destroyDomain(id) : undefined));
    }
    if (xen) await step('vbds', () => xen!.release());
  };
  try {
    if (s.sim) {
      simDomain = domid = s.sim.host.hypervisor.createDomain(`job-${s.name}`).domid;
      for (const d of s.sim.disks) await s.sim.host.serve(domid, d.devid, d.backing);
    } else if (s.xen) {
      domid = DOM0;
      xen = await XenHost.open(s.xen.devices, { gntdev: s.xen.gntdev, log: s.log });
      upstream = await xen.connectUpstream();
    }

    const stdio: StdioOptions = [
      'ignore', 'inherit', 'inherit', 'ipc',
      s.sim || xen ? 'pipe' : 'ignore',
      s.sim ? 'pipe' : xen ? xen.fds.evtchn : 'ignore',
      s.sim ? s.sim.pool.fd : xen ? xen.fds.gntalloc : 'ignore',
      xen?.fds.gntdev ?? 'ignore',
      ...s.fileFds,
    ];
    const child = spawn(process.execPath, [compiledModule(import.meta.url, 'jobs/child-main.js')], {
      stdio, uid: s.uid, gid: s.gid, cwd: '/', env: s.env,
    });
    // The kernel objects behind /dev/xen live in the child alone from now
    // on: when it dies, its ports are unbound and its grants ended.
    xen?.closeFds();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new JobError('child', `cannot start the job child as uid ${s.uid}: ${err.message}`, { cause: err }))));
    spawnError.catch(() => undefined);

    const pipes = child.stdio as unknown as Array<Socket | null>;
    if (domid !== undefined) {
      const id = domid;
      const allow = s.sim ? s.sim.disks.flatMap((d) => { const p = s.sim!.host.pathsOf(id, d.devid); return [p.frontend, p.backend]; }) : xen!.allow();
      proxy = new XenstoreProxy(socketTransport(pipes[FD_XENSTORE]!), upstream ?? s.sim!.host.xenstored, { domid: id, allow, log: s.log });
    }
    if (s.sim && domid !== undefined) {
      link = new ForeignEventChannels(pipes[FD_EVTCHN]!, BACKEND_DOMID, domid);
      s.sim.host.backend.evtchn.attach(link);
    }
    child.on('message', onMessage);
    const plan: ChildPlan = {
      type: 'plan', name: s.name, module: s.modulePath, devices: s.devices, stopTimeoutMs: s.stopTimeoutMs, restarts,
      sim: s.sim && domid !== undefined
        ? { domid, backendDomid: BACKEND_DOMID, poolPages: s.sim.host.hypervisor.layout.poolPages, scratchBytes: s.sim.host.hypervisor.layout.scratchBytes }
        : undefined,
      xen: xen ? { domid: DOM0, gntdev: xen.fds.gntdev !== undefined } : undefined,
    };
    if (child.connected) child.send(plan);
    return { child, info: { sim: s.sim?.host, domid, proxy, link, xen }, exited: Promise.race([exited, spawnError]), release };
  } catch (err) {
    await release();
    throw err;
  }
}
