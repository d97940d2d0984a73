/**
 * Requests waiting for a ring slot, in order. Requests orphaned by a
 * reconnect go back to the front, so they are re-issued before newer ones.
 */
import { BLKIF_OP_READ, BLKIF_OP_WRITE, XEN_PAGE_SIZE } from '../blkif/constants.js';
import { dataRequest, type RingRequest } from './request.js';

export class RequestQueue {
  private items: RingRequest[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(reqs: readonly RingRequest[]): void {
    for (const r of reqs) this.items.push(r);
  }

  /** Put `reqs` back at the front, keeping their order. */
  unshift(reqs: readonly RingRequest[]): void {
    if (reqs.length === 0) return;
    this.items = [...reqs, ...this.items.slice(this.head)];
    this.head = 0;
  }

  /** Remove and return up to `n` requests from the front. */
  take(n: number): RingRequest[] {
    const end = Math.min(this.head + n, this.items.length);
    const out = this.items.slice(this.head, end);
    this.head = end;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  drain(): RingRequest[] {
    return this.take(this.length);
  }

  /**
   * After a reconnect the new backend may take fewer pages per request (no
   * indirect): cut any waiting request that is too big, within its IoOp.
   */
  resplit(maxPages: number): void {
    const out: RingRequest[] = [];
    for (const r of this.drain()) {
      if (r.nPages <= maxPages || (r.op !== BLKIF_OP_READ && r.op !== BLKIF_OP_WRITE)) {
        out.push(r);
        continue;
      }
      const maxBytes = maxPages * XEN_PAGE_SIZE;
      const parts: RingRequest[] = [];
      for (let off = 0; off < r.byteLength; off += maxBytes) {
        const len = Math.min(maxBytes, r.byteLength - off);
        parts.push(dataRequest(r.io, r.op, r.wireSector + BigInt(off / 512), r.byteOffset + off, len, Math.ceil(len / XEN_PAGE_SIZE)));
      }
      r.io.expect(parts.length - 1);
      out.push(...parts);
    }
    this.items = out;
    this.head = 0;
  }
}
