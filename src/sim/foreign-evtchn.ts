/**
 * One domain's event channels when some of its peers are foreign (another
 * process, reached over a ForeignEventChannels socket) and the rest are
 * simulated domains (SimEventChannels in the shared pool). Ports to a
 * remote domid with an attached link go over that link; every other port
 * stays in the simulation.
 *
 * ```
 *                       RoutedEventChannels (domid D)
 *   allocUnbound(R) ──► links.has(R) ? link(R) : local
 *                       owner: port ──► the set that holds it
 *   notify/mask/...(P) ─► owner(P)
 *
 *   one number space:   local   1 2 . 4 . .        a port number is the number
 *                       link(7) . . 3 . 5 .        of the set that holds it,
 *                       link(9) . . . . . 6        never held by two sets
 * ```
 * The port number a driver publishes in xenstore is the one the peer binds
 * to, so ports are never renamed. Instead, both kinds of set hand out the
 * lowest free port; before opening a port in one set, the router holds
 * placeholders there for every lower number another set already uses, so
 * the next port that set hands out is free everywhere.
 */
import type { DomId, EventChannels, Port } from '../platform/types.js';
import { DOMID_SELF } from '../platform/types.js';
import { EvtchnError } from '../platform/sim/errors.js';
import type { ForeignEventChannels } from './evtchn-socket.js';

export class RoutedEventChannels implements EventChannels {
  private readonly links = new Map<DomId, ForeignEventChannels>();
  private readonly owner = new Map<Port, EventChannels>();
  private disposed = false;

  constructor(private readonly local: EventChannels) {}

  get domid(): DomId {
    return this.local.domid;
  }

  /**
   * Route ports to `link.remoteDomid` over `link` from now on. A link to
   * the same domain that is still connected is refused; a dead one is
   * replaced (its ports stay with it, unbound, until closed).
   */
  attach(link: ForeignEventChannels): void {
    if (link.domid !== this.domid) {
      throw new EvtchnError('wrong-domain', `link is for domain ${link.domid}, not ${this.domid}`);
    }
    const old = this.links.get(link.remoteDomid);
    if (old?.connected) throw new EvtchnError('wrong-domain', `domain ${link.remoteDomid} already has a live link`);
    this.links.set(link.remoteDomid, link);
  }

  /** The link to `remote`, if one is attached. */
  linkTo(remote: DomId): ForeignEventChannels | undefined {
    return this.links.get(remote);
  }

  allocUnbound(remote: DomId): Port {
    const set = this.setFor(remote);
    return this.open(set, () => set.allocUnbound(remote));
  }

  bindInterdomain(remote: DomId, remotePort: Port): Port {
    const set = this.setFor(remote);
    return this.open(set, () => set.bindInterdomain(remote, remotePort));
  }

  notify(port: Port): void {
    this.ownerOf(port, 'notify').notify(port);
  }

  setHandler(port: Port, handler: ((port: Port) => void) | null): void {
    this.ownerOf(port, 'setHandler').setHandler(port, handler);
  }

  mask(port: Port): void {
    this.ownerOf(port, 'mask').mask(port);
  }

  unmask(port: Port): void {
    this.ownerOf(port, 'unmask').unmask(port);
  }

  close(port: Port): void {
    const set = this.ownerOf(port, 'close');
    this.owner.delete(port);
    // A disposed link already dropped its ports; everything else still holds it.
    if (set.openPorts().includes(port)) set.close(port);
  }

  /** Ports this domain opened through the router and has not closed. */
  openPorts(): Port[] {
    return [...this.owner.keys()].sort((a, b) => a - b);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.owner.clear();
    for (const link of this.links.values()) link.dispose();
    this.links.clear();
    this.local.dispose();
  }

  // ------------------------------------------------------------ internals

  private setFor(remote: DomId): EventChannels {
    if (this.disposed) throw new EvtchnError('disposed', `event channels of domain ${this.domid} were disposed`);
    return this.links.get(remote) ?? this.local;
  }

  private ownerOf(port: Port, what: string): EventChannels {
    const set = this.owner.get(port);
    if (set === undefined) throw new EvtchnError('bad-port', `${what}: port ${port} is not open`);
    return set;
  }

  /** Open a port in `set` with `openPort`, at a number no other set uses. */
  private open(set: EventChannels, openPort: () => Port): Port {
    const placeholderFor = set === this.local ? DOMID_SELF : (set as ForeignEventChannels).remoteDomid;
    const held: Port[] = [];
    try {
      // Both kinds of set hand out their lowest free port: hold every number
      // another set owns, until the next free one is free everywhere.
      for (;;) {
        const p = set.allocUnbound(placeholderFor);
        if (!this.owner.has(p)) {
          set.close(p);
          break;
        }
        held.push(p);
      }
      const port = openPort();
      if (this.owner.has(port)) {
        set.close(port);
        throw new EvtchnError('exhausted', `port ${port} is already held by another channel set of domain ${this.domid}`);
      }
      this.owner.set(port, set);
      return port;
    } finally {
      for (const p of held) set.close(p);
    }
  }
}
