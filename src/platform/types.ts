/**
 * The three services drivers need from Xen, as interfaces. Drivers import
 * only this file; `sim/` (simulated hypervisor) and `linux/` (/dev/xen) each
 * implement it.
 *
 * Addresses are byte offsets into the shared memory (see src/memory/layout.ts):
 * the Wasm engine works on granted and mapped pages in place.
 */
import type { Arena } from '../memory/layout.js';

export type DomId = number;
export const DOMID_SELF = 0x7ff0;

// ---------------------------------------------------------------- xenstore

/** One permission entry; the first entry of a node's list names its owner
 *  and the access everyone else gets (xenstore.txt "PERMISSIONS"). */
export interface XsPerm {
  domid: DomId;
  perm: 'n' | 'r' | 'w' | 'b';
}

export interface XsWatchEvent {
  path: string;
  token: string;
}

/** A registered watch: an async iterator of events, closed by `unwatch()`. */
export interface XsWatch extends AsyncIterable<XsWatchEvent> {
  readonly path: string;
  readonly token: string;
  unwatch(): Promise<void>;
}

/** Operations valid inside and outside a transaction. `tx` 0 = none. */
export interface XsOps {
  read(path: string): Promise<string>;
  /** read, but `undefined` for ENOENT. */
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string | Uint8Array): Promise<void>;
  mkdir(path: string): Promise<void>;
  rm(path: string): Promise<void>;
  directory(path: string): Promise<string[]>;
  getPermissions(path: string): Promise<XsPerm[]>;
  setPermissions(path: string, perms: XsPerm[]): Promise<void>;
}

export interface XenStore extends XsOps {
  /** Register a watch; the first event (xenstored's immediate one) arrives at once. */
  watch(path: string, token?: string): Promise<XsWatch>;
  /**
   * Run `fn` in a transaction; commit; on EAGAIN retry (bounded, default 16).
   * If `fn` throws, the transaction is aborted and the error rethrown.
   */
  transaction<T>(fn: (tx: XsOps) => Promise<T>, opts?: { maxRetries?: number }): Promise<T>;
  getDomainPath(domid: DomId): Promise<string>;
  /** Close the connection: pending requests reject with `disconnected`, watches end. */
  close(): Promise<void>;
}

// ---------------------------------------------------------- event channels

export type Port = number;

export interface EventChannels {
  readonly domid: DomId;
  /** EVTCHNOP_alloc_unbound: a local port that `remote` may bind to. */
  allocUnbound(remote: DomId): Port;
  /** EVTCHNOP_bind_interdomain: connect to `remotePort` of `remote`. */
  bindInterdomain(remote: DomId, remotePort: Port): Port;
  /** EVTCHNOP_send: mark the peer's port pending and wake it. */
  notify(port: Port): void;
  /**
   * Deliver the port's events to `handler` (null stops delivery). A delivery
   * clears the pending bit first, then calls the handler; events that arrive
   * while masked are held pending and delivered on unmask.
   */
  setHandler(port: Port, handler: ((port: Port) => void) | null): void;
  mask(port: Port): void;
  unmask(port: Port): void;
  /** EVTCHNOP_close. The peer's end becomes unbound. */
  close(port: Port): void;
  /** Ports this domain holds open (for leak checks). */
  openPorts(): Port[];
  /** Close every port and stop waiting. */
  dispose(): void;
}

// ------------------------------------------------------------- grant table

/** Pages this domain shares with one foreign domain. */
export interface GrantedPages {
  readonly domid: DomId;
  readonly grefs: readonly number[];
  /** Byte address of each page in shared memory. */
  readonly addresses: readonly number[];
  readonly readOnly: boolean;
}

/** Foreign pages mapped into this domain. */
export interface ForeignMapping {
  readonly domid: DomId;
  readonly grefs: readonly number[];
  readonly addresses: readonly number[];
  readonly readOnly: boolean;
}

export interface GrantTable {
  readonly domid: DomId;
  /**
   * Allocate `count` fresh pages and grant them to `domid` (gntalloc's
   * IOCTL_GNTALLOC_ALLOC_GREF). Pages come zeroed, and as one contiguous
   * run of memory (`addresses[i] = addresses[0] + i * 4096`): a multi-page
   * ring is addressed as one block.
   */
  grantPages(domid: DomId, count: number, readOnly?: boolean): GrantedPages;
  /**
   * End access and free the pages. Throws GrantError (code `grant`) and frees
   * nothing if the peer still has any of them mapped.
   */
  ungrantPages(pages: GrantedPages): void;
  /**
   * Map pages granted by `domid` (gntdev). Checks, as the hypervisor does:
   * the entry permits access, names this domain, is writable unless
   * `readOnly`. Throws GrantError on any failure, mapping nothing.
   */
  mapForeign(domid: DomId, grefs: readonly number[], readOnly: boolean): ForeignMapping;
  unmapForeign(mapping: ForeignMapping): void;
  /** Counts for leak checks. */
  activeGrants(): number;
  activeMappings(): number;
}

/** What a driver needs from its platform. */
export interface Platform {
  readonly domid: DomId;
  readonly memory: WebAssembly.Memory;
  /** Private scratch for this domain's engine tables (ring state, descriptors,
   *  shadows): never shared with a peer. Each domain gets a disjoint range. */
  readonly scratch: Arena;
  readonly xenstore: XenStore;
  readonly evtchn: EventChannels;
  readonly grants: GrantTable;
}
