/**
 * One registered watch on the client side: an async iterator of events.
 * Pending events are coalesced by path (xenstore allows spurious and merged
 * events), so a consumer that lags holds at most one event per path.
 */
import type { XsWatch, XsWatchEvent } from '../platform/types.js';

export class WatchQueue implements XsWatch {
  private readonly queue: XsWatchEvent[] = [];
  private waiter: ((r: IteratorResult<XsWatchEvent>) => void) | undefined;
  private ended = false;

  constructor(readonly path: string, readonly token: string, private readonly doUnwatch: () => Promise<void>) {}

  push(ev: XsWatchEvent): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: ev, done: false });
      return;
    }
    if (!this.queue.some((q) => q.path === ev.path)) this.queue.push(ev);
  }

  /** No more events; a waiting consumer finishes. */
  end(): void {
    this.ended = true;
    this.queue.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  unwatch(): Promise<void> { return this.doUnwatch(); }

  next(): Promise<IteratorResult<XsWatchEvent>> {
    const ev = this.queue.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  [Symbol.asyncIterator](): AsyncIterator<XsWatchEvent> {
    return {
      next: () => this.next(),
      // Leaving a for-await loop does not unregister: call unwatch() for that.
      return: async () => ({ value: undefined, done: true }),
    };
  }
}
