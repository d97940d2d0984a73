/**
 * Simulated event channels (Xen 2-level ABI, one page per domain in the
 * shared pool). Any thread may notify any domain's port by writing that
 * domain's page with atomics; each domain waits on its own wake word.
 *
 * ```
 *  Event-channel page (one per domain slot)
 *  0        4          64               96               128        1024                 4096
 *  +--------+--- ... --+----------------+----------------+-- ... ---+--------------------+
 *  | wake   | reserved | pending u32[8] | mask u32[8]    | reserved | port word u32[256] |
 *  | i32    |          | bit p = port p | bit p = port p |          |                    |
 *  +--------+--- ... --+----------------+----------------+-- ... ---+--------------------+
 *
 *  Port word (u32)
 *  31             17 16             2 1     0
 *  +----------------+----------------+-------+
 *  | remote port    | remote domid   | state |   state: PortState
 *  +----------------+----------------+-------+
 * ```
 * `wake` is bumped by a notifier after it sets a pending bit of an unmasked
 * port; a waiter loads `wake`, scans, and sleeps only while `wake` still
 * holds the value it loaded, so no notify between scan and sleep is lost.
 * Port 0 is never allocated (as in Xen).
 */
import type { DomId, EventChannels, Port } from '../types.js';
import { DOMID_SELF } from '../types.js';
import { EvtchnError } from './errors.js';
import type { PoolView } from './pool.js';
import { debug } from '../../util/debug.js';

const log = debug('xenpv:evtchn');

/** Atomics.waitAsync (ES2024; Node 16+), typed here because lib is ES2022. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitAsyncResult }).waitAsync;

export const NR_EVTCHN_PORTS = 256;
const OFF_WAKE = 0;
const OFF_PENDING = 64;
const OFF_MASK = 96;
const OFF_PORTS = 1024;
const BITMAP_WORDS = NR_EVTCHN_PORTS / 32;

/** Port states, as stored in a port word. */
export enum PortState {
  Free = 0,
  Unbound = 1,
  Interdomain = 2,
  /** Claimed by its owner while a bind is in progress. */
  Reserved = 3,
}

export const packPort = (state: PortState, remoteDomid: DomId, remotePort: Port): number =>
  (state | ((remoteDomid & 0x7fff) << 2) | ((remotePort & 0x7fff) << 17)) >>> 0;
export const portState = (w: number): PortState => (w & 3) as PortState;
export const portRemoteDomid = (w: number): DomId => (w >>> 2) & 0x7fff;
export const portRemotePort = (w: number): Port => (w >>> 17) & 0x7fff;

/** u32 indices of one domain's event-channel page. */
class EvtchnPage {
  readonly wake: number;
  readonly pending: number;
  readonly mask: number;
  readonly ports: number;
  constructor(view: PoolView, frame: number) {
    const a = view.addr(frame);
    this.wake = (a + OFF_WAKE) >>> 2;
    this.pending = (a + OFF_PENDING) >>> 2;
    this.mask = (a + OFF_MASK) >>> 2;
    this.ports = (a + OFF_PORTS) >>> 2;
  }
}

export interface EvtchnOptions {
  /** Iterations to spin on the wake word before sleeping. Default 0. */
  spin?: number;
  /** Called when a handler throws. Default: rethrow on a later macrotask. */
  onHandlerError?: (err: unknown, port: Port) => void;
}

enum LoopState {
  Idle,
  Running,
}

export class SimEventChannels implements EventChannels {
  private readonly page: EvtchnPage;
  private readonly peers = new Map<number, EvtchnPage>(); // slot -> page
  private readonly handlers = new Map<Port, (port: Port) => void>();
  private loop = LoopState.Idle;
  private disposed = false;
  spin: number;
  private readonly onHandlerError: (err: unknown, port: Port) => void;

  /** `includeDying`: the hypervisor cleaning up after a destroyed domain. */
  constructor(private readonly view: PoolView, readonly domid: DomId, opts: EvtchnOptions = {}, includeDying = false) {
    const slot = view.slotOf(domid, includeDying);
    if (slot < 0) throw new EvtchnError('no-domain', `domain ${domid} does not exist`);
    this.page = new EvtchnPage(view, view.slotInfo(slot).evtchnFrame);
    this.spin = opts.spin ?? 0;
    this.onHandlerError =
      opts.onHandlerError ??
      ((err) => {
        setImmediate(() => {
          throw err;
        });
      });
  }

  // ------------------------------------------------------------ port table

  private live(): void {
    if (this.disposed) throw new EvtchnError('disposed', `event channels of domain ${this.domid} were disposed`);
  }

  private pageOf(domid: DomId): EvtchnPage {
    const slot = this.view.slotOf(domid === DOMID_SELF ? this.domid : domid);
    if (slot < 0) throw new EvtchnError('no-domain', `domain ${domid} does not exist`);
    return this.pageOfSlot(slot);
  }

  private pageOfSlot(slot: number): EvtchnPage {
    let p = this.peers.get(slot);
    if (p === undefined) {
      p = new EvtchnPage(this.view, this.view.slotInfo(slot).evtchnFrame);
      this.peers.set(slot, p);
    }
    return p;
  }

  private word(port: Port): number {
    return Atomics.load(this.view.u32, this.page.ports + port);
  }

  private checkPort(port: Port): number {
    if (!Number.isInteger(port) || port <= 0 || port >= NR_EVTCHN_PORTS) {
      throw new EvtchnError('bad-port', `port ${port} out of range`);
    }
    const w = this.word(port);
    if (portState(w) === PortState.Free) throw new EvtchnError('bad-port', `port ${port} is not open`);
    return w;
  }

  /** Claim a free port with `word`, after clearing its stale pending and mask bits. */
  private claim(word: number): Port {
    const u32 = this.view.u32;
    for (let p = 1; p < NR_EVTCHN_PORTS; p++) {
      if (Atomics.load(u32, this.page.ports + p) !== PortState.Free) continue;
      const bit = 1 << (p & 31);
      // Clear leftovers of a previous user before the port is published below.
      Atomics.and(u32, this.page.pending + (p >>> 5), ~bit);
      Atomics.and(u32, this.page.mask + (p >>> 5), ~bit);
      if (Atomics.compareExchange(u32, this.page.ports + p, PortState.Free, word) === PortState.Free) return p;
    }
    throw new EvtchnError('exhausted', `domain ${this.domid} has no free event-channel port`);
  }

  allocUnbound(remote: DomId): Port {
    this.live();
    const rd = remote === DOMID_SELF ? this.domid : remote;
    this.pageOf(rd); // the remote domain must exist
    const port = this.claim(packPort(PortState.Unbound, rd, 0));
    if (log.enabled) log(`dom${this.domid}: port ${port} unbound for dom${rd}`);
    return port;
  }

  bindInterdomain(remote: DomId, remotePort: Port): Port {
    this.live();
    const rd = remote === DOMID_SELF ? this.domid : remote;
    const peer = this.pageOf(rd);
    if (!Number.isInteger(remotePort) || remotePort <= 0 || remotePort >= NR_EVTCHN_PORTS) {
      throw new EvtchnError('bad-port', `remote port ${remotePort} out of range`);
    }
    const local = this.claim(packPort(PortState.Reserved, 0, 0));
    const expect = packPort(PortState.Unbound, this.domid, 0);
    // The bind is this one compare-exchange: it succeeds only on an unbound
    // port allocated for us, so two binders cannot both win.
    const seen = Atomics.compareExchange(this.view.u32, peer.ports + remotePort, expect, packPort(PortState.Interdomain, this.domid, local));
    if (seen !== expect) {
      Atomics.store(this.view.u32, this.page.ports + local, PortState.Free);
      if (portState(seen) !== PortState.Unbound) {
        throw new EvtchnError('not-unbound', `port ${remotePort} of domain ${rd} is not unbound`);
      }
      throw new EvtchnError('wrong-domain', `port ${remotePort} of domain ${rd} was allocated for domain ${portRemoteDomid(seen)}, not ${this.domid}`);
    }
    Atomics.store(this.view.u32, this.page.ports + local, packPort(PortState.Interdomain, rd, remotePort));
    if (log.enabled) log(`dom${this.domid}: port ${local} bound to dom${rd} port ${remotePort}`);
    return local;
  }

  notify(port: Port): void {
    this.live();
    const w = this.checkPort(port);
    if (portState(w) !== PortState.Interdomain) return; // unbound: nobody to tell (Xen returns 0)
    let peer: EvtchnPage;
    try {
      peer = this.pageOf(portRemoteDomid(w));
    } catch {
      return; // the peer is being destroyed; its cleanup unbinds this port
    }
    const rp = portRemotePort(w);
    if (log.enabled) log(`dom${this.domid}: notify port ${port} -> dom${portRemoteDomid(w)} port ${rp}`);
    const bit = 1 << (rp & 31);
    const u32 = this.view.u32;
    // Pending before the mask check and the wake bump: a waiter that sees the
    // new wake value (or an unmasker that clears the mask) then sees the bit.
    const old = Atomics.or(u32, peer.pending + (rp >>> 5), bit);
    if ((old & bit) !== 0) return; // already pending: its waker has run or will run
    if ((Atomics.load(u32, peer.mask + (rp >>> 5)) & bit) !== 0) return; // masked: unmask delivers
    Atomics.add(this.view.i32, peer.wake, 1);
    Atomics.notify(this.view.i32, peer.wake);
  }

  mask(port: Port): void {
    this.live();
    this.checkPort(port);
    Atomics.or(this.view.u32, this.page.mask + (port >>> 5), 1 << (port & 31));
  }

  unmask(port: Port): void {
    this.live();
    this.checkPort(port);
    const bit = 1 << (port & 31);
    // Mask cleared before pending is read: a notifier that saw the mask set
    // had already set pending, so we see it here and deliver.
    Atomics.and(this.view.u32, this.page.mask + (port >>> 5), ~bit);
    if ((Atomics.load(this.view.u32, this.page.pending + (port >>> 5)) & bit) !== 0) this.kick();
  }

  close(port: Port): void {
    this.live();
    this.checkPort(port);
    if (log.enabled) log(`dom${this.domid}: close port ${port}`);
    this.release(port);
  }

  private release(port: Port): void {
    this.handlers.delete(port);
    const old = Atomics.exchange(this.view.u32, this.page.ports + port, PortState.Free);
    Atomics.and(this.view.u32, this.page.pending + (port >>> 5), ~(1 << (port & 31)));
    if (portState(old) !== PortState.Interdomain) return;
    const rd = portRemoteDomid(old);
    const slot = this.view.slotOf(rd, true);
    if (slot < 0) return;
    const peer = this.pageOfSlot(slot);
    // The peer end becomes unbound, still reserved for us -- unless the peer
    // closed it concurrently, in which case the compare-exchange just fails.
    Atomics.compareExchange(
      this.view.u32,
      peer.ports + portRemotePort(old),
      packPort(PortState.Interdomain, this.domid, port),
      packPort(PortState.Unbound, this.domid, 0),
    );
  }

  openPorts(): Port[] {
    const out: Port[] = [];
    for (let p = 1; p < NR_EVTCHN_PORTS; p++) if (portState(this.word(p)) !== PortState.Free) out.push(p);
    return out;
  }

  /** The port's state as the hypervisor sees it (tests, diagnostics). */
  describe(port: Port): { state: PortState; remoteDomid: DomId; remotePort: Port } {
    const w = this.word(port);
    return { state: portState(w), remoteDomid: portRemoteDomid(w), remotePort: portRemotePort(w) };
  }

  dispose(): void {
    if (this.disposed) return;
    // Re-scan until quiet: a bind racing the first pass is closed by the next.
    for (let ports = this.openPorts(); ports.length > 0; ports = this.openPorts()) {
      for (const p of ports) this.release(p);
    }
    this.handlers.clear();
    this.disposed = true;
    this.kick();
  }

  // -------------------------------------------------------------- delivery

  /** Bump our own wake word so a sleeping waiter (sync or async) re-scans. */
  private kick(): void {
    Atomics.add(this.view.i32, this.page.wake, 1);
    Atomics.notify(this.view.i32, this.page.wake);
  }

  /** Test-and-clear pending bits of unmasked ports (only those with handlers unless `all`). */
  private collect(all: boolean): Port[] {
    const u32 = this.view.u32;
    const out: Port[] = [];
    for (let w = 0; w < BITMAP_WORDS; w++) {
      let ready = Atomics.load(u32, this.page.pending + w) & ~Atomics.load(u32, this.page.mask + w);
      while (ready !== 0) {
        const bit = ready & -ready;
        ready ^= bit;
        const port = w * 32 + (31 - Math.clz32(bit));
        if (!all && !this.handlers.has(port)) continue;
        // Pending is cleared before the handler runs: a notify during the
        // handler sets it again and is delivered on the next scan.
        if ((Atomics.and(u32, this.page.pending + w, ~bit) & bit) !== 0) out.push(port);
      }
    }
    return out;
  }

  private dispatch(ports: Port[]): void {
    for (const p of ports) {
      const h = this.handlers.get(p);
      if (h === undefined) continue;
      if (log.enabled) log(`dom${this.domid}: event on port ${p}`);
      try {
        h(p);
      } catch (err) {
        this.onHandlerError(err, p);
      }
    }
  }

  /** Spin up to `spin` iterations for `wake` to move off `seen`. */
  private spinOn(seen: number): boolean {
    for (let i = 0; i < this.spin; i++) if (Atomics.load(this.view.i32, this.page.wake) !== seen) return true;
    return false;
  }

  /**
   * Blocking wait (workers; uses Atomics.wait): returns the unmasked pending
   * ports, cleared, after calling their handlers; [] on timeout or dispose.
   */
  waitForEvents(timeoutMs = Infinity): Port[] {
    const deadline = performance.now() + timeoutMs;
    const i32 = this.view.i32;
    while (!this.disposed) {
      // Loaded before the scan: a notify after the scan changes it, so the
      // wait below returns at once instead of sleeping through the event.
      const seen = Atomics.load(i32, this.page.wake);
      const ports = this.collect(true);
      if (ports.length > 0) {
        this.dispatch(ports);
        return ports;
      }
      if (this.spinOn(seen)) continue;
      const left = deadline - performance.now();
      if (left <= 0) return [];
      Atomics.wait(i32, this.page.wake, seen, left === Infinity ? undefined : left);
    }
    return [];
  }

  /** Non-blocking: deliver what is pending now (all unmasked ports). */
  poll(): Port[] {
    const ports = this.collect(true);
    this.dispatch(ports);
    return ports;
  }

  setHandler(port: Port, handler: ((port: Port) => void) | null): void {
    this.live();
    this.checkPort(port);
    if (handler === null) {
      this.handlers.delete(port);
      if (this.handlers.size === 0) this.kick(); // let the loop see it has nothing to do
      return;
    }
    this.handlers.set(port, handler);
    if (this.loop === LoopState.Idle) void this.run();
    else this.kick(); // something may already be pending for this port
  }

  /** The async delivery loop (Atomics.waitAsync): runs while handlers exist. */
  private async run(): Promise<void> {
    this.loop = LoopState.Running;
    const i32 = this.view.i32;
    let busy = 0; // scans since the loop last gave the event loop a turn
    try {
      while (!this.disposed && this.handlers.size > 0) {
        const seen = Atomics.load(i32, this.page.wake); // before the scan, as in waitForEvents
        this.dispatch(this.collect(false));
        if (this.spinOn(seen) && ++busy < 64) continue;
        const r = waitAsync(i32, this.page.wake, seen);
        busy = 0;
        if (r.async) await r.value;
        else await new Promise<void>((resolve) => setImmediate(resolve)); // busy: let other tasks run
      }
    } finally {
      this.loop = LoopState.Idle;
    }
  }
}
