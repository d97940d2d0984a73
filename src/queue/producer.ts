/**
 * The producer side: group commit of pushes. Pushes that arrive while a
 * commit is in flight wait and go out together in the next one, so N
 * concurrent pushes cost two flushes, not 2N.
 *
 * One commit, and what each step orders:
 *   1. write the records (from a sector boundary, padded to the next one)
 *   2. flush     the records are durable before any position covering them
 *                is: a published position never points at unwritten data
 *   3. write the producer slot (seq + 1) with the new position
 *   4. flush     the position is durable before a push is acknowledged: an
 *                acknowledged item survives a crash
 * A crash before 4 loses only unacknowledged pushes; their records are
 * overwritten by the next producer, which starts from the durable position.
 */
import { InvalidArgumentError, IoError } from '../errors.js';
import type { QueueArea } from './area.js';
import {
  CONSUMER_SLOTS, MAGIC_CONSUMER, MAGIC_ITEM, MAGIC_PAD, MAGIC_PRODUCER, PRODUCER_SLOTS,
  RECORD_HEADER, encodeRecord, recordBytes, recordStart,
} from './format.js';

/** A commit stops adding items past this many bytes (one item may exceed it alone). */
const BATCH_BYTES = 4 << 20;

interface Pending {
  readonly item: Uint8Array;
  resolve(accepted: boolean): void;
  reject(err: unknown): void;
}

interface Plan {
  readonly count: number;
  /** Offsets of the records in the commit buffer. */
  readonly offsets: number[];
  /** Where the last record ends (before padding). */
  readonly end: bigint;
  /** The commit's end: `end` rounded up to a sector. */
  readonly next: bigint;
}

export class Producer {
  #position: bigint;
  #seq: bigint;
  /** The consumer position last seen (a lower bound: the consumer only moves forward). */
  #consumer: bigint;
  readonly #pending: Pending[] = [];
  #committing = false;
  #failed: unknown;

  constructor(private readonly area: QueueArea, slot: { seq: bigint; position: bigint }, consumer: bigint) {
    this.#position = slot.position;
    this.#seq = slot.seq;
    this.#consumer = consumer;
  }

  get position(): bigint {
    return this.#position;
  }

  /** Largest payload one item may have in this queue. */
  get maxItemBytes(): number {
    const S = this.area.sectorSize;
    const room = Number(this.area.dataBytes) - S - RECORD_HEADER; // a commit starts on a sector and pads to one
    return Math.min(0xffff_ffff, Math.max(0, room - (room % 8)));
  }

  /** The consumer (in this process) moved: space up to `position` is free. */
  noteConsumer(position: bigint): void {
    if (position > this.#consumer) this.#consumer = position;
  }

  /** Resolves true once `item` is durable, false when the queue is full. */
  push(item: Uint8Array): Promise<boolean> {
    if (!(item instanceof Uint8Array)) return Promise.reject(new InvalidArgumentError('item', 'must be a Uint8Array'));
    if (item.length > this.maxItemBytes) {
      return Promise.reject(new InvalidArgumentError('item', `${item.length} bytes does not fit this queue (at most ${this.maxItemBytes})`));
    }
    if (this.#failed !== undefined) return Promise.reject(this.#failedError());
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#committing) void this.#run();
    });
  }

  #failedError(): IoError {
    return new IoError('queue: an earlier commit failed; reopen the queue', { cause: this.#failed });
  }

  async #run(): Promise<void> {
    this.#committing = true;
    try {
      while (this.#pending.length > 0) await this.#commit();
    } finally {
      this.#committing = false;
    }
  }

  #plan(free: bigint): Plan {
    const S = BigInt(this.area.sectorSize);
    const offsets: number[] = [];
    let end = this.#position;
    let next = this.#position;
    for (const p of this.#pending) {
      const at = recordStart(end, this.area.sectorSize);
      const e = at + BigInt(recordBytes(p.item.length));
      const n = ((e + S - 1n) / S) * S;
      if (n - this.#position > free) break;
      if (offsets.length > 0 && n - this.#position > BigInt(BATCH_BYTES)) break;
      offsets.push(Number(at - this.#position));
      end = e;
      next = n;
    }
    return { count: offsets.length, offsets, end, next };
  }

  async #commit(): Promise<void> {
    const area = this.area;
    let plan = this.#plan(area.dataBytes - (this.#position - this.#consumer));
    if (plan.count < this.#pending.length) {
      // Short of space as far as we know: learn how far the consumer got (it
      // may be another process), then plan again.
      try {
        const seen = await area.readSlot(MAGIC_CONSUMER, CONSUMER_SLOTS);
        this.noteConsumer(seen.position);
      } catch (err) {
        this.#fail(err, this.#pending.splice(0));
        return;
      }
      plan = this.#plan(area.dataBytes - (this.#position - this.#consumer));
    }
    if (plan.count === 0) {
      // Full. Everything queued behind the first item is refused too, so a
      // later, smaller item never overtakes it.
      for (const p of this.#pending.splice(0)) p.resolve(false);
      return;
    }
    const batch = this.#pending.splice(0, plan.count);
    const start = this.#position;
    const buf = new Uint8Array(Number(plan.next - start));
    batch.forEach((p, i) => {
      const off = plan.offsets[i]!;
      encodeRecord(buf.subarray(off), MAGIC_ITEM, area.queueId, start + BigInt(off), p.item);
    });
    const padAt = recordStart(plan.end, area.sectorSize);
    if (padAt < plan.next) {
      const off = Number(padAt - start);
      encodeRecord(buf.subarray(off), MAGIC_PAD, area.queueId, padAt, new Uint8Array(0), Number(plan.next - padAt) - RECORD_HEADER);
    }
    try {
      await area.writeData(start, buf);
      // records durable /before/ the position that publishes them
      await area.flush();
      const seq = this.#seq + 1n;
      await area.writeSlot(MAGIC_PRODUCER, PRODUCER_SLOTS, { seq, position: plan.next });
      // position durable /before/ the pushes are acknowledged
      await area.flush();
      this.#seq = seq;
      this.#position = plan.next;
    } catch (err) {
      this.#fail(err, [...batch, ...this.#pending.splice(0)]);
      return;
    }
    for (const p of batch) p.resolve(true);
  }

  /** After a failed write or flush the on-disk state is unknown: refuse everything until reopened. */
  #fail(err: unknown, waiting: Pending[]): void {
    this.#failed = err;
    for (const p of waiting) p.reject(err);
  }
}
