/**
 * Event channels to a *foreign* domain (another process) over one unix
 * stream socket, behind the EventChannels interface. Local port numbers are
 * ours; the peer's are learnt from EVTCHN_MSG_BIND (see evtchn-wire.ts).
 *
 * ```
 *  us (ForeignEventChannels)                peer process
 *  allocUnbound(peer) -> P   --xenstore-->  reads P, binds local Q
 *  P: Unbound                <-- BIND(P,Q)  
 *  P: Interdomain(Q)
 *  notify(P)                 --- SEND(Q) -> Q pending
 *  handler(P)                <-- SEND(P) -- notify(Q)
 *  close(P)                  -- CLOSE(Q) -> Q unbound
 *  socket gone               ............  every port Unbound, onPeerGone
 * ```
 * A hostile or dead peer can only make ports unbound: unknown ports and
 * bogus binds are ignored (a bogus bind is answered with CLOSE), an unknown
 * op ends the link. Handlers are never called after close()/dispose().
 * Delivery is asynchronous (from the socket's data event, or a microtask
 * for events held while masked or without a handler).
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import type { DomId, EventChannels, Port } from '../platform/types.js';
import { ForeignEvtchnError } from '../native/errors.js';
import { decodeEvtchnMessage, encodeEvtchnMessage, EvtchnMsg, EVTCHN_MSG_BYTES } from './evtchn-wire.js';

export enum ForeignPortState {
  /** Allocated by allocUnbound, or the peer's end closed / the link died. */
  Unbound = 1,
  /** Connected to the peer's port `remotePort`. */
  Interdomain = 2,
}

interface PortEntry {
  state: ForeignPortState;
  remotePort: Port;
  handler: ((port: Port) => void) | null;
  masked: boolean;
  pending: boolean;
  bindWaiters: Array<() => void>;
}

/** Highest local port handed out (Xen's 2-level ABI limit on x86_64). */
const MAX_PORTS = 4096;

export class ForeignEventChannels implements EventChannels {
  private readonly ports = new Map<Port, PortEntry>();
  private rx: Buffer = Buffer.alloc(0);
  private linkUp = true;
  private disposed = false;
  private readonly goneCallbacks: Array<(reason: string) => void> = [];

  constructor(
    private readonly socket: Socket,
    readonly domid: DomId,
    readonly remoteDomid: DomId,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.linkDown('socket error'));
    socket.on('close', () => this.linkDown('peer closed the connection'));
  }

  /** True while the socket to the peer is open. */
  get connected(): boolean {
    return this.linkUp;
  }

  /** Called once when the link to the peer dies (all ports are then Unbound). */
  onPeerGone(cb: (reason: string) => void): void {
    if (!this.linkUp) queueMicrotask(() => cb('link already down'));
    else this.goneCallbacks.push(cb);
  }

  allocUnbound(remote: DomId): Port {
    this.checkRemote(remote);
    return this.newPort(ForeignPortState.Unbound, 0);
  }

  bindInterdomain(remote: DomId, remotePort: Port): Port {
    this.checkRemote(remote);
    if (!Number.isInteger(remotePort) || remotePort <= 0 || remotePort > 0xffffffff) {
      throw new ForeignEvtchnError(`bindInterdomain: bad remote port ${remotePort}`);
    }
    if (!this.linkUp) throw new ForeignEvtchnError('bindInterdomain: link to the peer is down');
    const port = this.newPort(ForeignPortState.Interdomain, remotePort);
    this.send(EvtchnMsg.EVTCHN_MSG_BIND, remotePort, port);
    return port;
  }

  notify(port: Port): void {
    const e = this.entry(port, 'notify');
    // As EVTCHNOP_send: an unbound port silently drops the event.
    if (e.state === ForeignPortState.Interdomain) this.send(EvtchnMsg.EVTCHN_MSG_SEND, e.remotePort, 0);
  }

  setHandler(port: Port, handler: ((port: Port) => void) | null): void {
    const e = this.entry(port, 'setHandler');
    e.handler = handler;
    if (handler && e.pending && !e.masked) this.deliverLater(port);
  }

  mask(port: Port): void {
    this.entry(port, 'mask').masked = true;
  }

  unmask(port: Port): void {
    const e = this.entry(port, 'unmask');
    e.masked = false;
    if (e.pending && e.handler) this.deliverLater(port);
  }

  close(port: Port): void {
    const e = this.entry(port, 'close');
    if (e.state === ForeignPortState.Interdomain && this.linkUp) {
      this.send(EvtchnMsg.EVTCHN_MSG_CLOSE, e.remotePort, 0);
    }
    this.ports.delete(port);
    this.wakeBindWaiters(e);
  }

  openPorts(): Port[] {
    return [...this.ports.keys()].sort((a, b) => a - b);
  }

  /** State of a local port, or undefined if it is not open. */
  portState(port: Port): ForeignPortState | undefined {
    return this.ports.get(port)?.state;
  }

  /** The peer's port our `port` is bound to, if Interdomain. */
  remotePortOf(port: Port): Port | undefined {
    const e = this.ports.get(port);
    return e?.state === ForeignPortState.Interdomain ? e.remotePort : undefined;
  }

  /**
   * Resolve when the peer has bound to `port` (allocUnbound side). Rejects
   * if the port is closed, the link dies, or `timeoutMs` passes first.
   */
  waitBound(port: Port, timeoutMs = 10_000): Promise<void> {
    const e = this.entry(port, 'waitBound');
    if (e.state === ForeignPortState.Interdomain) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        e.bindWaiters = e.bindWaiters.filter((w) => w !== waiter);
        reject(new ForeignEvtchnError(`port ${port}: peer did not bind within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (): void => {
        clearTimeout(timer);
        if (e.state === ForeignPortState.Interdomain && this.ports.get(port) === e) resolve();
        else reject(new ForeignEvtchnError(`port ${port}: closed or link down before the peer bound`));
      };
      e.bindWaiters.push(waiter);
    });
  }

  dispose(): void {
    if (this.disposed) return;
    for (const port of this.openPorts()) this.close(port);
    this.disposed = true;
    this.linkDown('disposed');
    // end() flushes the CLOSE messages written above, then the socket goes.
    this.socket.end(() => this.socket.destroy());
  }

  // ------------------------------------------------------------ internals

  private checkRemote(remote: DomId): void {
    if (this.disposed) throw new ForeignEvtchnError('event channels disposed');
    if (remote !== this.remoteDomid) {
      throw new ForeignEvtchnError(`this link reaches domain ${this.remoteDomid}, not ${remote}`);
    }
  }

  private newPort(state: ForeignPortState, remotePort: Port): Port {
    for (let p = 1; p < MAX_PORTS; p++) {
      if (!this.ports.has(p)) {
        this.ports.set(p, { state, remotePort, handler: null, masked: false, pending: false, bindWaiters: [] });
        return p;
      }
    }
    throw new ForeignEvtchnError(`no free port (limit ${MAX_PORTS})`);
  }

  private entry(port: Port, what: string): PortEntry {
    const e = this.ports.get(port);
    if (!e) throw new ForeignEvtchnError(`${what}: port ${port} is not open`);
    return e;
  }

  private send(op: EvtchnMsg, port: Port, arg: number): void {
    if (!this.linkUp) return;
    this.socket.write(encodeEvtchnMessage({ op, port, arg }));
  }

  private onData(chunk: Buffer): void {
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    let at = 0;
    while (this.linkUp && this.rx.length - at >= EVTCHN_MSG_BYTES) {
      const m = decodeEvtchnMessage(this.rx, at);
      at += EVTCHN_MSG_BYTES;
      if (!m) {
        this.socket.destroy();
        this.linkDown('peer sent an unknown message');
        return;
      }
      this.receive(m.op, m.port, m.arg);
    }
    this.rx = this.rx.subarray(at);
  }

  private receive(op: EvtchnMsg, port: Port, arg: number): void {
    const e = this.ports.get(port);
    switch (op) {
      case EvtchnMsg.EVTCHN_MSG_BIND:
        if (e && e.state === ForeignPortState.Unbound && arg !== 0) {
          e.state = ForeignPortState.Interdomain;
          e.remotePort = arg;
          this.wakeBindWaiters(e);
        } else if (arg !== 0) {
          // Bind to a port that is not ours to give: tell the peer its end is dead.
          this.send(EvtchnMsg.EVTCHN_MSG_CLOSE, arg, 0);
        }
        return;
      case EvtchnMsg.EVTCHN_MSG_SEND:
        if (!e || e.state !== ForeignPortState.Interdomain) return;
        e.pending = true;
        if (e.handler && !e.masked) this.deliver(port, e);
        return;
      case EvtchnMsg.EVTCHN_MSG_CLOSE:
        if (e && e.state === ForeignPortState.Interdomain) {
          e.state = ForeignPortState.Unbound;
          e.remotePort = 0;
        }
        return;
    }
  }

  /** Clear the pending bit first, then call the handler (a new event re-sets it). */
  private deliver(port: Port, e: PortEntry): void {
    if (this.disposed || this.ports.get(port) !== e || !e.handler || e.masked || !e.pending) return;
    e.pending = false;
    e.handler(port);
  }

  private deliverLater(port: Port): void {
    const e = this.ports.get(port);
    if (e) queueMicrotask(() => this.deliver(port, e));
  }

  private wakeBindWaiters(e: PortEntry): void {
    const waiters = e.bindWaiters;
    e.bindWaiters = [];
    for (const w of waiters) w();
  }

  private linkDown(reason: string): void {
    if (!this.linkUp) return;
    this.linkUp = false;
    for (const e of this.ports.values()) {
      e.state = ForeignPortState.Unbound;
      e.remotePort = 0;
      this.wakeBindWaiters(e);
    }
    const cbs = this.goneCallbacks.splice(0);
    for (const cb of cbs) cb(reason);
  }
}

/** A listening unix socket that hands out one ForeignEventChannels per peer connection. */
export class ForeignEvtchnListener {
  private readonly queue: Socket[] = [];
  private readonly waiters: Array<(s: Socket) => void> = [];
  private closed = false;

  private constructor(private readonly server: Server, readonly path: string) {
    server.on('connection', (s) => {
      const w = this.waiters.shift();
      if (w) w(s);
      else this.queue.push(s);
    });
  }

  /** Listen on `path` (a stale socket file there is removed first). */
  static listen(path: string): Promise<ForeignEvtchnListener> {
    try { unlinkSync(path); } catch { /* none */ }
    const server = createServer();
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new ForeignEvtchnError(`cannot listen on ${path}: ${err.message}`, { cause: err })));
      server.listen(path, () => resolve(new ForeignEvtchnListener(server, path)));
    });
  }

  /** Wait for the next peer to connect; its link is between `domid` (us) and `remoteDomid`. */
  accept(domid: DomId, remoteDomid: DomId, timeoutMs = 10_000): Promise<ForeignEventChannels> {
    if (this.closed) return Promise.reject(new ForeignEvtchnError('listener closed'));
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(new ForeignEventChannels(ready, domid, remoteDomid));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(take);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new ForeignEvtchnError(`no peer connected to ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      const take = (s: Socket): void => {
        clearTimeout(timer);
        resolve(new ForeignEventChannels(s, domid, remoteDomid));
      };
      this.waiters.push(take);
    });
  }

  /** Stop listening and remove the socket file (accepted links stay up). */
  close(): Promise<void> {
    this.closed = true;
    for (const s of this.queue.splice(0)) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Connect to a peer listening on `path`. */
export function connectForeignEventChannels(path: string, domid: DomId, remoteDomid: DomId): Promise<ForeignEventChannels> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('error', (err) => reject(new ForeignEvtchnError(`cannot connect to ${path}: ${err.message}`, { cause: err })));
    s.once('connect', () => resolve(new ForeignEventChannels(s, domid, remoteDomid)));
  });
}
