/**
 * In-process transport: a pair of duplex byte channels in one thread. Bytes
 * sent on one end arrive at the other in a later microtask, batched, so
 * neither side re-enters the other synchronously.
 */
import type { XsTransport } from './types.js';

class ChannelEnd implements XsTransport {
  peer!: ChannelEnd;
  private dataCb: ((chunk: Uint8Array) => void) | undefined;
  private closeCb: ((err?: Error) => void) | undefined;
  private inbox: Uint8Array[] = [];
  private scheduled = false;
  closed = false;

  send(bytes: Uint8Array): void {
    if (this.closed || this.peer.closed) return;
    this.peer.deliver(bytes.slice());
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
    queueMicrotask(() => {
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

/** Two connected ends: what one sends, the other receives. */
export function createChannelPair(): [XsTransport, XsTransport] {
  const a = new ChannelEnd();
  const b = new ChannelEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
