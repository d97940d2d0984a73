/**
 * A simulated domain's view of its platform: its domid, the shared memory,
 * and event channels / grant table / xenstore bound to that domid. Built by
 * the hypervisor for in-process domains, and by `platformFromWorkerData()`
 * inside a domain's worker thread.
 */
import { workerData as threadWorkerData, type MessagePort } from 'node:worker_threads';
import { Arena, layoutOf, type SharedLayout } from '../../memory/layout.js';
import { UnsupportedError } from '../../errors.js';
import type { DomId, Platform, XenStore } from '../types.js';
import { SimEventChannels, type EvtchnOptions } from './evtchn.js';
import { SimGrantTable } from './grant-table.js';
import { PoolView } from './pool.js';
import { connectMessagePort } from '../../xenstore/transport/message-port.js';

/** What the hypervisor needs from a xenstored (src/xenstore's XenstoreServer fits). */
export interface XenstoreWiring {
  /** An in-process client connection for `domid`. */
  connect(domid: DomId): XenStore;
  /** Serve `domid` over a MessagePort (the worker holds the other end). */
  attachPort(port: MessagePort, domid: DomId): void;
  introduceDomain?(domid: DomId): unknown;
  /** Drop the domain's watches and transactions; fire @releaseDomain. */
  releaseDomain?(domid: DomId): unknown;
}

/** What a worker domain receives in `workerData`. */
export interface DomainWorkerData {
  readonly kind: 'xenpv-sim-domain';
  readonly name: string;
  readonly domid: DomId;
  readonly memory: SharedLayout['memory'];
  readonly layout: Omit<SharedLayout, 'memory'>;
  /** The domain's xenstore connection, when the hypervisor has a xenstored. */
  readonly xenstorePort?: MessagePort;
  /** Anything the creator passed for the domain's own code. */
  readonly data?: unknown;
}

export interface SimPlatform extends Platform {
  readonly name: string;
  readonly layout: SharedLayout;
  readonly evtchn: SimEventChannels;
  readonly grants: SimGrantTable;
}

/** A XenStore that refuses everything: the hypervisor was made without a xenstored. */
export function noXenstore(domid: DomId): XenStore {
  const fail = (): Promise<never> => Promise.reject(new UnsupportedError(`domain ${domid}: simulation has no xenstored`));
  return {
    read: fail,
    tryRead: fail,
    write: fail,
    mkdir: fail,
    rm: fail,
    directory: fail,
    getPermissions: fail,
    setPermissions: fail,
    watch: fail,
    transaction: fail,
    getDomainPath: fail,
    close: () => Promise.resolve(),
  };
}

/**
 * The domain's private slice of scratch: scratch is split evenly between the
 * directory's slots (64-byte aligned), slot s getting slice s.
 */
export function scratchArena(view: PoolView, domid: DomId): Arena {
  const slot = view.slotOf(domid);
  const { scratchBase, scratchBytes } = view.layout;
  const slice = Math.floor(scratchBytes / view.maxDomains / 64) * 64;
  return new Arena(scratchBase + slot * slice, slice);
}

export function buildPlatform(
  name: string,
  layout: SharedLayout,
  domid: DomId,
  xenstore: XenStore,
  evtchnOptions: EvtchnOptions = {},
): SimPlatform {
  const view = new PoolView(layout);
  return {
    name,
    domid,
    layout,
    memory: layout.memory,
    scratch: scratchArena(view, domid),
    xenstore,
    evtchn: new SimEventChannels(view, domid, evtchnOptions),
    grants: new SimGrantTable(view, domid),
  };
}

export interface WorkerPlatformOptions extends EvtchnOptions {
  /** Client over the xenstore MessagePort. Default: src/xenstore's connectMessagePort. */
  connectXenstore?: (port: MessagePort) => XenStore;
}

/**
 * Inside a domain's worker: the platform for this domain, and the creator's
 * `data`. Throws if this thread was not started by `Hypervisor.createDomain`.
 */
export function platformFromWorkerData(opts: WorkerPlatformOptions = {}, wd: unknown = threadWorkerData): SimPlatform & { data: unknown } {
  const d = wd as DomainWorkerData | undefined;
  if (d?.kind !== 'xenpv-sim-domain') throw new UnsupportedError('this thread was not started as a simulated domain');
  const layout = layoutOf(d.memory, d.layout);
  const connect = opts.connectXenstore ?? connectMessagePort;
  const xs = d.xenstorePort !== undefined ? connect(d.xenstorePort) : noXenstore(d.domid);
  return { ...buildPlatform(d.name, layout, d.domid, xs, opts), data: d.data };
}
