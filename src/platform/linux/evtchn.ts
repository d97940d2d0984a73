/**
 * EventChannels over /dev/xen/evtchn (see evtchn-device.ts for the device).
 *
 * One read loop per instance waits for fired ports off the main thread
 * (a threadpool read) and dispatches them here. The kernel disables a port
 * when it fires; that is our "pending" state, and writing the port back
 * ("unmask" at the device) is clearing it:
 *
 *   fired, unmasked, handler set  -> write port back, then call the handler
 *                                    (an event during the handler fires again)
 *   fired, masked or no handler   -> held pending (still disabled in the
 *                                    kernel); unmask()/setHandler() deliver it
 *
 * So the contract's "clears the pending bit first, then calls the handler;
 * events that arrive while masked are held pending and delivered on unmask"
 * holds, and a masked port costs the kernel nothing. One difference from the
 * simulation: events held while masked may be delivered twice (the first
 * sits in the kernel's ring, a later one in Xen's pending bit of the disabled
 * port, which fires when we enable it), never zero times.
 *
 * dispose() must end a read that is blocked in the kernel: a loopback pair
 * (an unbound port for ourselves, and a port bound to it) is made at start;
 * notifying one end makes the read return, and only then is the file closed
 * (closing an fd another thread is reading from would let the number be
 * reused under it).
 */
import { constants } from 'node:os';
import type { DomId, EventChannels, Port } from '../types.js';
import { DOMID_SELF } from '../types.js';
import { NativeError } from '../../native/errors.js';
import { EvtchnError } from '../sim/errors.js';
import type { EvtchnDevice } from './evtchn-device.js';
import { evtchnError } from './errors.js';

/** Whether the kernel holds an event for the port (it disables a port when it fires). */
enum Delivery {
  /** Enabled: the next event is read by the loop. */
  Armed,
  /** Fired and disabled in the kernel; waiting for unmask or a handler. */
  Pending,
}

enum Mask {
  Unmasked,
  Masked,
}

interface PortRecord {
  handler: ((port: Port) => void) | null;
  mask: Mask;
  delivery: Delivery;
}

enum LoopState {
  Running,
  Disposing,
  Closed,
}

export interface LinuxEvtchnOptions {
  /** Called when a handler throws or the read loop fails. Default: rethrow on a later macrotask. */
  onError?: (err: unknown, port: Port | undefined) => void;
}

export class LinuxEventChannels implements EventChannels {
  private readonly ports = new Map<Port, PortRecord>();
  private readonly wake: { listen: Port; kick: Port };
  private state = LoopState.Running;
  private readonly onError: (err: unknown, port: Port | undefined) => void;
  /** Settles when the read loop has ended and the device is closed. */
  readonly closed: Promise<void>;

  constructor(readonly domid: DomId, private readonly dev: EvtchnDevice, opts: LinuxEvtchnOptions = {}) {
    this.onError = opts.onError ?? ((err) => setImmediate(() => { throw err; }));
    let listen: Port;
    try {
      listen = dev.bindUnboundPort(DOMID_SELF);
    } catch (err) {
      throw evtchnError('binding the wake-up port', err);
    }
    try {
      this.wake = { listen, kick: dev.bindInterdomain(DOMID_SELF, listen) };
    } catch (err) {
      dev.unbind(listen);
      throw evtchnError('binding the wake-up port', err);
    }
    this.closed = this.readLoop();
  }

  // ------------------------------------------------------------- ports

  private record(port: Port): PortRecord {
    if (this.state !== LoopState.Running) throw new EvtchnError('disposed', `event channels of domain ${this.domid} were disposed`);
    const rec = Number.isInteger(port) ? this.ports.get(port) : undefined;
    if (rec === undefined) throw new EvtchnError('bad-port', `port ${port} is not open here`);
    return rec;
  }

  private live(): void {
    if (this.state !== LoopState.Running) throw new EvtchnError('disposed', `event channels of domain ${this.domid} were disposed`);
  }

  private add(port: Port): Port {
    this.ports.set(port, { handler: null, mask: Mask.Unmasked, delivery: Delivery.Armed });
    return port;
  }

  allocUnbound(remote: DomId): Port {
    this.live();
    try {
      return this.add(this.dev.bindUnboundPort(remote));
    } catch (err) {
      throw evtchnError(`allocUnbound(${remote})`, err);
    }
  }

  bindInterdomain(remote: DomId, remotePort: Port): Port {
    this.live();
    try {
      return this.add(this.dev.bindInterdomain(remote, remotePort));
    } catch (err) {
      // Xen: EINVAL = the remote port is not unbound, or not allocated for us.
      throw evtchnError(`bindInterdomain(${remote}, ${remotePort})`, err, 'not-unbound');
    }
  }

  notify(port: Port): void {
    this.record(port);
    try {
      this.dev.notify(port);
    } catch (err) {
      throw evtchnError(`notify(${port})`, err);
    }
  }

  setHandler(port: Port, handler: ((port: Port) => void) | null): void {
    const rec = this.record(port);
    rec.handler = handler;
    if (handler !== null) this.deliverLater(port);
  }

  mask(port: Port): void {
    this.record(port).mask = Mask.Masked;
  }

  unmask(port: Port): void {
    this.record(port).mask = Mask.Unmasked;
    this.deliverLater(port);
  }

  close(port: Port): void {
    this.record(port);
    this.ports.delete(port);
    try {
      this.dev.unbind(port);
    } catch (err) {
      throw evtchnError(`close(${port})`, err);
    }
  }

  openPorts(): Port[] {
    return [...this.ports.keys()].sort((a, b) => a - b);
  }

  dispose(): void {
    if (this.state !== LoopState.Running) return;
    this.state = LoopState.Disposing;
    for (const port of this.ports.keys()) {
      try { this.dev.unbind(port); } catch { /* gone already: nothing to release */ }
    }
    this.ports.clear();
    try {
      // Wakes the read loop, which unbinds the pair and closes the device.
      this.dev.notify(this.wake.kick);
    } catch (err) {
      this.onError(evtchnError('waking the read loop', err), undefined);
    }
  }

  // ---------------------------------------------------------- delivery

  /** Deliver a held event on a later macrotask, as the simulation does. */
  private deliverLater(port: Port): void {
    const rec = this.ports.get(port);
    if (rec === undefined || rec.delivery !== Delivery.Pending) return;
    setImmediate(() => this.deliver([port]));
  }

  /** Re-enable each deliverable port (one write), then run its handler. */
  private deliver(fired: readonly Port[]): void {
    const ready: [Port, (port: Port) => void][] = [];
    for (const port of fired) {
      const rec = this.ports.get(port);
      if (rec === undefined || rec.delivery !== Delivery.Pending) continue;
      if (rec.mask === Mask.Masked || rec.handler === null) continue; // held pending
      rec.delivery = Delivery.Armed;
      ready.push([port, rec.handler]);
    }
    if (ready.length === 0) return;
    try {
      // Enabled before the handlers run: an event sent while one runs fires again.
      this.dev.unmask(ready.map(([p]) => p));
    } catch (err) {
      this.onError(evtchnError('unmask', err), undefined);
    }
    for (const [port, handler] of ready) {
      try {
        handler(port);
      } catch (err) {
        this.onError(err, port);
      }
    }
  }

  private async readLoop(): Promise<void> {
    while (this.state === LoopState.Running) {
      let fired: number[];
      try {
        fired = await this.dev.readPorts();
      } catch (err) {
        if (this.state !== LoopState.Running) break;
        if (err instanceof NativeError && err.errno === constants.errno.EFBIG) {
          this.recoverOverflow();
          continue;
        }
        this.onError(evtchnError('reading the evtchn device', err), undefined);
        break;
      }
      const user: Port[] = [];
      for (const port of fired) {
        if (port === this.wake.listen || port === this.wake.kick) {
          this.rearmWake(port);
          continue;
        }
        const rec = this.ports.get(port);
        if (rec !== undefined) rec.delivery = Delivery.Pending;
        user.push(port);
      }
      if (this.state === LoopState.Running) this.deliver(user);
    }
    this.shutdown();
  }

  private rearmWake(port: Port): void {
    if (this.state !== LoopState.Running) return;
    try { this.dev.unmask([port]); } catch (err) { this.onError(evtchnError('unmask', err), port); }
  }

  /** The kernel's ring overflowed and events were dropped: reset it and treat every port as fired. */
  private recoverOverflow(): void {
    try {
      this.dev.reset();
    } catch (err) {
      this.onError(evtchnError('IOCTL_EVTCHN_RESET', err), undefined);
    }
    for (const rec of this.ports.values()) rec.delivery = Delivery.Pending;
    this.rearmWake(this.wake.listen);
    this.deliver([...this.ports.keys()]);
  }

  private shutdown(): void {
    if (this.state === LoopState.Closed) return;
    this.state = LoopState.Closed;
    for (const p of [this.wake.kick, this.wake.listen]) {
      try { this.dev.unbind(p); } catch { /* closing the file releases it too */ }
    }
    try { this.dev.close(); } catch (err) { this.onError(err, undefined); }
  }
}
