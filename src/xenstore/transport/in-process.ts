/**
 * In-process transport: a pair of duplex byte channels in one thread. Bytes
 * sent on one end arrive at the other in a later microtask, batched, so
 * neither side re-enters the other synchronously.
 */
import type { XsTransport } from './types.js';

/**
 * A microtask without queueMicrotask's per-call AsyncResource (a visible
 * share of a simulated request's CPU). Same queue, same FIFO order; the
 * callbacks here do not throw (both ends catch what they parse).
 */
const resolved = Promise.resolve();
const microtask = (fn: () => void): void => { void resolved.then(fn); };

class ChannelEnd implements XsTransport {
  peer!: ChannelEnd;
  private dataCb: ((chunk: Uint8Array) => void) | undefined;
  private closeCb: ((err?: Error) => void) | undefined;
  private inbox: Uint8Array[] = [];
  private scheduled = false;
  closed = false;

  constructor(private readonly copy: boolean) {}

  send(bytes: Uint8Array): void {
    if (this.closed || this.peer.closed) return;
    this.peer.deliver(this.copy ? bytes.slice() : bytes);
  }
  onData(cb: (chunk: Uint8Array) => void): void { this.dataCb = cb; }
  onClose(cb: (err?: Error) => void): void { this.closeCb = cb; }
  close(): void {
    if (this.closed) return;
    this.finish();
    this.peer.finish();
  }

  private deliver(bytes: Uint8Array): void {
    this.inbox.push(bytes);
    if (this.scheduled) return;
    this.scheduled = true;
    microtask(() => {
      this.scheduled = false;
      const batch = this.inbox;
      this.inbox = [];
      for (const b of batch) { if (!this.closed) this.dataCb?.(b); }
    });
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox = [];
    const cb = this.closeCb;
    queueMicrotask(() => cb?.());
  }
}

/**
 * Two connected ends: what one sends, the other receives. Sent bytes are
 * copied (the sender may reuse its buffer), unless `handOver`: for two ends
 * whose senders never touch a buffer again once sent and whose receivers
 * never keep a chunk (XenstoreServer.connect: a client and a server
 * connection, which send fresh encodeMessage() buffers and copy out what
 * they parse). That copy was one of a request's seven allocations.
 */
export function createChannelPair(opts: { handOver?: boolean } = {}): [XsTransport, XsTransport] {
  const a = new ChannelEnd(!opts.handOver);
  const b = new ChannelEnd(!opts.handOver);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
