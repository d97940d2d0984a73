/**
 * Foreign domains: programs in another process (the C peers of
 * test/peers/) taking part in the simulation as domains of their own.
 *
 * ```
 *  this process                                     child process (a peer)
 *  +--------------------------------------------+   +----------------------------+
 *  | Hypervisor: Wasm memory, pool directory    |   |                            |
 *  |   pool ======== memfd (createPoolFile) ============ mmap(--pool)           |
 *  |   slot of the peer's domid: its grant      |   |  its grant entries, pages  |
 *  |   table and pages (--gnttab-*, --first-*)  |   |                            |
 *  | XenstoreServer.listen(xenstored.sock) <--------- --xs (xs_wire, as dom0)    |
 *  | ForeignEvtchnListener(evtchn.sock) <------------ --evtchn-connect           |
 *  |   -> ForeignEventChannels, attached to the |   |                            |
 *  |      RoutedEventChannels of the domain it  |   |                            |
 *  |      talks to (foreign-evtchn.ts)          |   |                            |
 *  +--------------------------------------------+   +----------------------------+
 * ```
 * The peer's domid gets a real slot in the pool directory (through
 * Hypervisor.createDomain), so our grant table accepts grants naming it and
 * our blkback maps its grants (its v1 entries and data pages live in that
 * slot's frames, exactly where a simulated domain's would). When the peer is
 * destroyed, the toolstack's part is done as xl does it: the domain's
 * xenstore directory goes, then the domain (ports, mappings, grants).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { DisconnectedError, InvalidArgumentError, IoError } from '../errors.js';
import { ForeignEvtchnListener, type ForeignEventChannels } from './evtchn-socket.js';
import { createPoolFile, type PoolFile } from '../native/pool-file.js';
import type { SimPlatform } from '../platform/sim/domain.js';
import type { Hypervisor } from '../platform/sim/hypervisor.js';
import type { DomId, Platform, XenStore } from '../platform/types.js';
import type { XenstoreServer } from '../xenstore/server/server.js';
import { RoutedEventChannels } from './foreign-evtchn.js';

/** A simulated domain whose event channels can also reach foreign domains. */
export interface RoutedPlatform extends Platform {
  readonly evtchn: RoutedEventChannels;
  readonly sim: SimPlatform;
}

export interface ForeignDomainSpec {
  /** Executable of the peer. */
  program: string;
  domid: DomId;
  name?: string;
  /** The simulated domain the peer talks to (its event link ends there). */
  peer: RoutedPlatform;
  /**
   * Whose grant table the peer works on: `self` for a frontend (it grants;
   * also passes --first-frame, its first data page), `peer` for a backend
   * (it maps the frontend's grants).
   */
  grantTable: 'self' | 'peer';
  /** Arguments after the common ones (--frontend, --backend, workload...). */
  args?: readonly string[];
}

export interface ForeignExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ForeignDomain {
  readonly domid: DomId;
  readonly name: string;
  readonly child: ChildProcess;
  /** Settles when the process has exited and its output is read. */
  readonly exited: Promise<ForeignExit>;
  /** The arguments it was started with (for error messages). */
  readonly argv: readonly string[];
  /** SIGKILL the process (no-op once it has exited). */
  kill(): void;
  /**
   * Kill it if still running, wait for its exit, remove its xenstore
   * directory (/local/domain/<domid>) and destroy the domain. Idempotent.
   */
  destroy(): Promise<ForeignExit>;
}

/** Options for starting the shared pieces over an existing hypervisor. */
export interface ForeignHostOptions {
  hypervisor: Hypervisor;
  xenstored: XenstoreServer;
  /** dom0's xenstore connection: the toolstack's, for teardown. */
  toolstack: XenStore;
  /** Directory for the sockets (short path: unix socket names are ≤ 107 bytes). */
  dir: string;
}

/**
 * The shared pieces every foreign domain needs: the pool file over the
 * hypervisor's pool, xenstored's unix socket, and the event-channel listener.
 */
export class ForeignHost {
  private readonly domains = new Map<DomId, ForeignDomain>();
  private readonly links = new Map<ForeignDomain, ForeignEventChannels>();
  private starting: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly hypervisor: Hypervisor,
    private readonly pool: PoolFile,
    readonly xenstoreSocket: string,
    private readonly listener: ForeignEvtchnListener,
    private readonly toolstack: XenStore,
  ) {}

  static async start(opts: ForeignHostOptions): Promise<ForeignHost> {
    const xsPath = join(opts.dir, 'xenstored.sock');
    const evPath = join(opts.dir, 'evtchn.sock');
    await opts.xenstored.listen(xsPath);
    const pool = createPoolFile(opts.hypervisor.layout);
    let listener: ForeignEvtchnListener;
    try {
      listener = await ForeignEvtchnListener.listen(evPath);
    } catch (err) {
      pool.close();
      throw err;
    }
    return new ForeignHost(opts.hypervisor, pool, xsPath, listener, opts.toolstack);
  }

  /** Path another process opens to map the pool. */
  get poolPath(): string {
    return this.pool.path;
  }

  /** `sim`, with event channels that route ports to foreign domains over their links. */
  route(sim: SimPlatform): RoutedPlatform {
    const evtchn = new RoutedEventChannels(sim.evtchn);
    return {
      domid: sim.domid,
      memory: sim.memory,
      scratch: sim.scratch,
      xenstore: sim.xenstore,
      grants: sim.grants,
      evtchn,
      sim,
    };
  }

  /**
   * Reserve `spec.domid` in the pool directory, start the peer with the
   * common arguments (pool, grant table, xenstored, event socket, domids),
   * and wait until its event link is up and attached to `spec.peer`.
   * Starts are serialised: the next connection on the socket is this peer's.
   */
  start(spec: ForeignDomainSpec): Promise<ForeignDomain> {
    const next = this.starting.then(() => this.startNow(spec));
    this.starting = next.catch(() => undefined);
    return next;
  }

  private async startNow(spec: ForeignDomainSpec): Promise<ForeignDomain> {
    if (this.closed) throw new DisconnectedError('foreign host is closed');
    checkForeignDomid(spec.domid);
    const hv = this.hypervisor;
    const name = spec.name ?? `foreign-${spec.domid}`;
    // A slot of its own: grants can name it, its grants can be mapped.
    const self = hv.createDomain(name, undefined, { domid: spec.domid });
    const granter = spec.grantTable === 'self' ? self.domid : spec.peer.domid;
    const slot = hv.view.slotInfo(hv.view.slotOf(granter));
    const argv = [
      '--pool', this.pool.path,
      '--pool-pages', String(hv.layout.poolPages),
      '--gnttab-frame', String(slot.grantFrame),
      '--gnttab-entries', String(slot.grantEntries),
      '--xs', this.xenstoreSocket,
      '--evtchn-connect', this.listener.path,
      '--domid', String(spec.domid),
      '--peer-domid', String(spec.peer.domid),
      ...(spec.grantTable === 'self' ? ['--first-frame', String(slot.pageBase)] : []),
      ...(spec.args ?? []),
    ];
    const child = spawn(spec.program, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const exited = new Promise<ForeignExit>((resolve) => {
      child.once('error', (err) => { stderr += `spawn failed: ${err.message}\n`; });
      // 'close', not 'exit': stdout and stderr are fully read by then.
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    let destroying: Promise<ForeignExit> | undefined;
    const dom: ForeignDomain = {
      domid: spec.domid,
      name,
      child,
      exited,
      argv,
      kill,
      destroy: () => (destroying ??= this.teardown(dom)),
    };
    this.domains.set(spec.domid, dom);
    try {
      // The peer connects its event socket before anything else.
      const accepted = this.listener.accept(spec.peer.domid, spec.domid);
      const early = exited.then((e) => {
        throw new IoError(`${name} exited before connecting (code ${e.code}, signal ${e.signal}): ${e.stderr.trim()}`);
      });
      const link = await Promise.race([accepted, early]);
      spec.peer.evtchn.attach(link);
      this.links.set(dom, link);
    } catch (err) {
      await dom.destroy();
      throw err;
    }
    return dom;
  }

  private async teardown(dom: ForeignDomain): Promise<ForeignExit> {
    dom.kill();
    const exit = await dom.exited;
    // The process is gone; wait until its socket is seen closed too, so the
    // link is down (ports unbound) before the domid can be used again.
    const link = this.links.get(dom);
    if (link) await new Promise<void>((resolve) => link.onPeerGone(() => resolve()));
    this.links.delete(dom);
    this.domains.delete(dom.domid);
    const hv = this.hypervisor;
    // The toolstack's part (xl destroy): the domain's xenstore directory
    // goes (its devices' state nodes with it, so their peers see them gone),
    // then the domain itself (ports unbound, mappings dropped, grants ended).
    await removeDomainTree(this.toolstack, dom.domid);
    if (hv.liveDomains().includes(dom.domid)) await hv.destroyDomain(dom.domid);
    return exit;
  }

  /** Foreign domains started and not yet destroyed. */
  live(): ForeignDomain[] {
    return [...this.domains.values()];
  }

  /**
   * Destroy every foreign domain, stop listening, and unmap the pool file
   * (the pool keeps its contents as private memory). Routed platforms stay
   * usable for simulated peers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.starting;
    for (const d of [...this.domains.values()]) await d.destroy();
    await this.listener.close();
    this.pool.close();
  }
}

/** Refuse a domid that cannot be a foreign domain's. */
export function checkForeignDomid(domid: DomId): void {
  if (!Number.isInteger(domid) || domid <= 0 || domid >= 0x7ff0) {
    throw new InvalidArgumentError('domid', `a foreign domain needs a domid in 1..0x7fef, got ${domid}`);
  }
}

/**
 * Remove a dead domain's xenstore directory device by device, then the
 * rest, as libxl does: each device directory is removed on its own, so a
 * peer watching its state node is told with that node's permissions (it
 * may not read the domain's top directory).
 */
async function removeDomainTree(xs: XenStore, domid: DomId): Promise<void> {
  const top = `/local/domain/${domid}`;
  const list = (p: string): Promise<string[]> => xs.directory(p).catch(() => [] as string[]);
  for (const type of await list(`${top}/device`)) {
    for (const dev of await list(`${top}/device/${type}`)) await xs.rm(`${top}/device/${type}/${dev}`);
  }
  for (const type of await list(`${top}/backend`)) {
    for (const fe of await list(`${top}/backend/${type}`)) {
      for (const dev of await list(`${top}/backend/${type}/${fe}`)) await xs.rm(`${top}/backend/${type}/${fe}/${dev}`);
    }
  }
  await xs.rm(top).catch(() => undefined);
}
