/**
 * The simulated hypervisor's control plane (main thread only): creates the
 * shared memory and its directory, creates domains (in-process, or as a
 * worker_thread running a compiled module), and destroys them, releasing
 * ports, grants, mappings, watches and transactions.
 *
 * The data plane (event channels, grant table) is library code every domain
 * runs against the shared pool; see evtchn.ts and grant-table.ts.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { createSharedLayout, type MemoryPlan, type SharedLayout } from '../../memory/layout.js';
import { InvalidArgumentError } from '../../errors.js';
import type { DomId } from '../types.js';
import { buildPlatform, noXenstore, type DomainWorkerData, type SimPlatform, type XenstoreWiring } from './domain.js';
import type { EvtchnOptions } from './evtchn.js';
import { PoolView, SlotState, formatPool, type PoolPlan } from './pool.js';
import { XenstoreServer } from '../../xenstore/server/server.js';
import { reapSlot, releaseMappingsBy, releasePorts, revokeGrants } from './reclaim.js';

export interface HypervisorOptions extends MemoryPlan, PoolPlan {
  /**
   * The simulated xenstored. Default: a new XenstoreServer (src/xenstore),
   * closed by `shutdown()`. 'none': domains get a xenstore that refuses every call.
   */
  xenstore?: XenstoreWiring | 'none';
}

export interface DomainOptions {
  /** Explicit domid (default: the next unused one, starting at 0). */
  domid?: DomId;
  /** In-process domains: event-channel options (spin). */
  evtchn?: EvtchnOptions;
}

export interface WorkerEntry {
  /** Path or file URL of the compiled JS module the worker runs. */
  module: string | URL;
  /** Passed to the module as `platformFromWorkerData().data` (structured-cloned). */
  data?: unknown;
}

/** A domain running in a worker thread, seen from the main thread. */
export interface WorkerDomain {
  readonly name: string;
  readonly domid: DomId;
  readonly worker: Worker;
  /** Resolves with the exit code when the worker ends (or is terminated). */
  readonly exited: Promise<number>;
}

/** Where a domain is in its life, as the directory records it. */
export enum DomainState {
  Nonexistent = 'nonexistent',
  Running = 'running',
  /** Destroyed; some of its granted pages are still mapped by a peer. */
  Dying = 'dying',
}

/** What an in-process domain still holds (empty: nothing), for `resetDomain`. */
export function domainLeaks(p: SimPlatform): string[] {
  const out: string[] = [];
  const ports = p.evtchn.openPorts();
  if (ports.length > 0) out.push(`open ports ${ports.join(',')}`);
  if (p.grants.activeGrants() > 0) out.push(`${p.grants.activeGrants()} grant(s)`);
  if (p.grants.activeMappings() > 0) out.push(`${p.grants.activeMappings()} mapped foreign grant(s)`);
  if (p.grants.pagesInUse() > 0) out.push(`${p.grants.pagesInUse()} allocated page(s)`);
  if (p.scratch.free !== p.scratch.size) out.push(`${p.scratch.size - p.scratch.free} bytes of scratch`);
  const inFlight = (p.xenstore as { inFlight?: number }).inFlight ?? 0;
  if (inFlight > 0) out.push(`${inFlight} xenstore request(s) in flight`);
  return out;
}

type DomainRecord = { kind: 'local'; platform: SimPlatform; evtchn?: EvtchnOptions } | { kind: 'worker'; handle: WorkerDomain };

export class Hypervisor {
  readonly view: PoolView;
  private readonly domains = new Map<DomId, DomainRecord>();
  /** Data pages each domain may allocate. */
  readonly pagesPerDomain: number;

  private constructor(
    readonly layout: SharedLayout,
    plan: PoolPlan,
    private readonly xenstore: XenstoreWiring | undefined,
    /** The xenstored this hypervisor made (and closes on shutdown), if any. */
    readonly xenstored: XenstoreServer | undefined,
  ) {
    this.view = new PoolView(layout);
    this.pagesPerDomain = formatPool(this.view, plan);
  }

  static create(opts: HypervisorOptions = {}): Hypervisor {
    const layout = createSharedLayout({ poolPages: opts.poolPages, scratchBytes: opts.scratchBytes });
    const plan = { maxDomains: opts.maxDomains, grantFrames: opts.grantFrames };
    if (opts.xenstore === 'none') return new Hypervisor(layout, plan, undefined, undefined);
    if (opts.xenstore !== undefined) return new Hypervisor(layout, plan, opts.xenstore, undefined);
    const xenstored = new XenstoreServer();
    return new Hypervisor(layout, plan, xenstored, xenstored);
  }

  get memory(): SharedLayout['memory'] {
    return this.layout.memory;
  }

  /** An in-process domain (the main thread's own dom0 or frontend). */
  createDomain(name: string, entry?: undefined, opts?: DomainOptions): SimPlatform;
  /** A domain in a worker thread running `entry.module`. */
  createDomain(name: string, entry: WorkerEntry, opts?: DomainOptions): WorkerDomain;
  createDomain(name: string, entry?: WorkerEntry, opts: DomainOptions = {}): SimPlatform | WorkerDomain {
    const domid = this.allocDomain(opts.domid);
    try {
      return this.startDomain(name, domid, entry, opts);
    } catch (err) {
      // Nothing ran in the domain yet: give its slot (and xenstore entry) back at once.
      const slot = this.view.slotOf(domid, true);
      if (slot >= 0) {
        this.view.setSlotState(slot, SlotState.Dying);
        reapSlot(this.view, slot);
      }
      void Promise.resolve(this.xenstore?.releaseDomain?.(domid)).catch(() => undefined);
      if (err instanceof DOMException && err.name === 'DataCloneError') {
        throw new InvalidArgumentError('data', `${name}: cannot be passed to a worker (${err.message})`);
      }
      throw err;
    }
  }

  private startDomain(name: string, domid: DomId, entry: WorkerEntry | undefined, opts: DomainOptions): SimPlatform | WorkerDomain {
    this.xenstore?.introduceDomain?.(domid);
    if (entry === undefined) {
      const xs = this.xenstore ? this.xenstore.connect(domid) : noXenstore(domid);
      const platform = buildPlatform(name, this.layout, domid, xs, opts.evtchn);
      this.domains.set(domid, { kind: 'local', platform, evtchn: opts.evtchn });
      return platform;
    }
    let xenstorePort;
    const transferList = [];
    let attached: { close(): void } | undefined;
    if (this.xenstore) {
      const ch = new MessageChannel();
      attached = this.xenstore.attachPort(ch.port1, domid) as { close(): void } | undefined;
      // After attachPort: adding a 'message' listener refs the port again.
      ch.port1.unref();
      xenstorePort = ch.port2;
      transferList.push(ch.port2);
    }
    const { memory, ...layout } = this.layout;
    const workerData: DomainWorkerData = { kind: 'xenpv-sim-domain', name, domid, memory, layout, xenstorePort, data: entry.data };
    let worker: Worker;
    try {
      worker = new Worker(entry.module, { workerData, transferList });
    } catch (err) {
      attached?.close();
      throw err;
    }
    // Background machinery never keeps the process alive; callers waiting on
    // a domain hold it open themselves (src/util/keep-alive.ts).
    worker.unref();
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    const handle: WorkerDomain = { name, domid, worker, exited };
    this.domains.set(domid, { kind: 'worker', handle });
    return handle;
  }

  private allocDomain(want?: DomId): DomId {
    let free = 0;
    for (let s = 0; s < this.view.maxDomains; s++) {
      reapSlot(this.view, s);
      if (this.view.slotState(s) === SlotState.Free) free++;
    }
    // Checked before a domid is taken, so a refused create consumes none.
    if (free === 0) throw new InvalidArgumentError('maxDomains', `all ${this.view.maxDomains} domain slots are in use`);
    let domid: DomId;
    if (want !== undefined) {
      if (!Number.isInteger(want) || want < 0 || want >= 0x7ff0) throw new InvalidArgumentError('domid', `bad domid ${want}`);
      if (this.view.slotOf(want, true) >= 0) throw new InvalidArgumentError('domid', `domain ${want} exists`);
      this.view.reserveDomid(want);
      domid = want;
    } else {
      do domid = this.view.nextDomid();
      while (this.view.slotOf(domid, true) >= 0);
    }
    if (this.view.claimSlot(domid) < 0) {
      throw new InvalidArgumentError('maxDomains', `all ${this.view.maxDomains} domain slots are in use`);
    }
    return domid;
  }

  domainState(domid: DomId): DomainState {
    const s = this.view.slotOf(domid, true);
    if (s < 0) return DomainState.Nonexistent;
    return this.view.slotState(s) === SlotState.Running ? DomainState.Running : DomainState.Dying;
  }

  /** Domains created by this hypervisor and not yet destroyed. */
  liveDomains(): DomId[] {
    return [...this.domains.keys()];
  }

  /**
   * Destroy a domain: stop its thread, close its ports (peers see unbound),
   * drop its mappings of others' grants, end its own grants (pages a peer
   * still maps stay valid for that peer until unmapped), and release it in
   * xenstore (watches, transactions, @releaseDomain).
   */
  async destroyDomain(domid: DomId): Promise<void> {
    const rec = this.domains.get(domid);
    if (rec === undefined) throw new InvalidArgumentError('domid', `domain ${domid} is not running`);
    this.domains.delete(domid);
    if (rec.kind === 'worker') {
      await rec.handle.worker.terminate();
    } else {
      rec.platform.evtchn.dispose();
      await rec.platform.xenstore.close().catch(() => undefined);
    }
    const slot = this.view.slotOf(domid);
    // Dying first: from here no peer can bind to or map from this domain.
    this.view.setSlotState(slot, SlotState.Dying);
    releasePorts(this.view, domid);
    releaseMappingsBy(this.view, domid);
    if (revokeGrants(this.view, slot) === 0) reapSlot(this.view, slot);
    await this.xenstore?.releaseDomain?.(domid);
  }

  /**
   * Fast reset for harnesses that reuse one machine across runs (the
   * fuzzer): give in-process domain `domid` a fresh platform, as a newly
   * created domain would have (port 1 first, grefs from the top, zeroed
   * tables and scratch), on the same xenstore connection. Refused, listing
   * what is left, unless the old platform holds nothing: no open port, no
   * grant, no mapping of another domain's grant, no allocated page, no
   * scratch block, no xenstore request in flight. That refusal is a leak
   * check.
   */
  resetDomain(domid: DomId): SimPlatform {
    const rec = this.domains.get(domid);
    if (rec === undefined) throw new InvalidArgumentError('domid', `domain ${domid} is not running`);
    if (rec.kind !== 'local') throw new InvalidArgumentError('domid', `domain ${domid} runs in a worker: only in-process domains can be reset`);
    const leaks = domainLeaks(rec.platform);
    if (leaks.length > 0) throw new InvalidArgumentError('domid', `domain ${domid} cannot be reset, it still holds: ${leaks.join('; ')}`);
    const old = rec.platform;
    old.evtchn.dispose();
    const info = this.view.slotInfo(this.view.slotOf(domid));
    // Event-channel page, grant entries, pins, allocation bitmap: as reapSlot leaves them.
    this.view.zeroFrames(info.evtchnFrame, info.allocFrame - info.evtchnFrame + 1);
    this.view.zeroBytes(old.scratch.base, old.scratch.highWater);
    const platform = buildPlatform(old.name, this.layout, domid, old.xenstore, rec.evtchn);
    this.domains.set(domid, { kind: 'local', platform, evtchn: rec.evtchn });
    return platform;
  }

  /** Reclaim slots of destroyed domains whose pages nobody maps any more. */
  reap(): number {
    let n = 0;
    for (let s = 0; s < this.view.maxDomains; s++) if (reapSlot(this.view, s)) n++;
    return n;
  }

  /** Destroy every domain, and close the xenstored this hypervisor made. */
  async shutdown(): Promise<void> {
    for (const domid of [...this.domains.keys()]) await this.destroyDomain(domid);
    await this.xenstored?.close();
  }
}
