/**
 * One client connection to the simulated xenstored: a unix socket (dom0),
 * an in-process channel or a MessagePort (any domid). Owns its parser, its
 * transactions; its watches live in the core's WatchTable.
 */
import type { DomId } from '../../platform/types.js';
import { XsFramingError, XsOp, XsParser, encodeMessage, nulTerminatedBytes, type XsMessage } from '../wire.js';
import type { Principal } from './permissions.js';
import type { Transaction } from './transactions.js';
import type { WatchOwner } from './watches.js';

/** Where a connection's outgoing bytes go. */
export interface ConnSink {
  write(bytes: Uint8Array): void;
  /** Bytes written but not yet taken by the peer (0 if the transport cannot tell). */
  queuedBytes(): number;
  close(): void;
}

/** What a connection needs from the server core. */
export interface ConnHost {
  handle(conn: Connection, type: number, reqId: number, txId: number, payload: Uint8Array): void;
  dropped(conn: Connection, reason: string): void;
  targetOf(domid: DomId): DomId | undefined;
  readonly outputLimit: number;
}

export enum ConnState { Open, Closed }

export class Connection implements WatchOwner {
  private readonly parser = new XsParser();
  readonly transactions = new Map<number, Transaction>();
  state = ConnState.Open;

  constructor(readonly id: number, readonly domid: DomId, private readonly sink: ConnSink, private readonly host: ConnHost) {}

  get who(): Principal {
    return { domid: this.domid, privileged: this.domid === 0, target: this.host.targetOf(this.domid) };
  }

  /**
   * Bytes from the peer. A framing violation closes the connection (as
   * xenstored does), after the requests that came before it are handled.
   */
  receive(chunk: Uint8Array): void {
    if (this.state === ConnState.Closed) return;
    let msgs: readonly XsMessage[];
    let violation: Error | undefined;
    try {
      msgs = this.parser.push(chunk);
    } catch (err) {
      violation = err as Error;
      msgs = err instanceof XsFramingError ? err.parsed : [];
    }
    for (const m of msgs) {
      // A reply may have overflowed the output quota and closed us.
      if ((this.state as ConnState) === ConnState.Closed) return;
      this.host.handle(this, m.type, m.reqId, m.txId, m.payload);
    }
    if (violation) this.host.dropped(this, violation.message);
  }

  reply(type: number, reqId: number, txId: number, payload: Uint8Array): void {
    this.send(encodeMessage(type, reqId, txId, payload));
  }

  /** `path` and `token` are byte strings (one char per byte, see wire.ts latin1): sent byte for byte. */
  sendWatchEvent(path: string, token: string): void {
    const payload = nulTerminatedBytes([path, token]);
    // An event that cannot be framed (path + token > 4096) is dropped: watches may be lossy, never oversized.
    if (payload.length <= 4096) this.send(encodeMessage(XsOp.XS_WATCH_EVENT, 0, 0, payload));
  }

  private send(bytes: Uint8Array): void {
    if (this.state === ConnState.Closed) return;
    this.sink.write(bytes);
    if (this.sink.queuedBytes() > this.host.outputLimit) this.host.dropped(this, 'peer is not reading its replies');
  }

  /** Close the transport; the host forgets the connection through `dropped`. */
  close(): void {
    if (this.state === ConnState.Closed) return;
    this.state = ConnState.Closed;
    this.transactions.clear();
    this.sink.close();
  }
}
