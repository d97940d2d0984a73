/**
 * The consumer side: reads records from the consumer position up to the
 * producer position it last saw (re-reading the producer's slots when it
 * runs dry: the producer may be another process), checks each one, and
 * publishes its own position when items are consumed.
 *
 * Delivery is at least once: an item is consumed when `advance` resolves;
 * a consumer that crashes between `peek` and `advance` sees the item again.
 */
import { IoError } from '../errors.js';
import type { QueueArea } from './area.js';
import {
  MAGIC_CONSUMER, MAGIC_ITEM, MAGIC_PAD, MAGIC_PRODUCER, PRODUCER_SLOTS, CONSUMER_SLOTS,
  RECORD_HEADER, decodeRecordHeader, recordBytes, recordStart, recordValid,
} from './format.js';

/** Read ahead this much of the live region at a time (small items come many per read). */
const READ_AHEAD = 256 << 10;

interface Peeked {
  readonly item: Uint8Array;
  /** The position just after the item. */
  readonly next: bigint;
}

export class Consumer {
  #position: bigint;
  #seq: bigint;
  /** Where scanning resumes: the position, or past padding already skipped. */
  #scan: bigint;
  /** The producer position last seen (a lower bound). */
  #producer: bigint;
  #peeked: Peeked[] = [];
  #cache: { start: bigint; bytes: Uint8Array } | undefined;

  constructor(private readonly area: QueueArea, slot: { seq: bigint; position: bigint }, producer: bigint) {
    this.#position = slot.position;
    this.#seq = slot.seq;
    this.#scan = slot.position;
    this.#producer = producer;
  }

  get position(): bigint {
    return this.#position;
  }

  /** The producer (in this process) published up to `position`. */
  noteProducer(position: bigint): void {
    if (position > this.#producer) this.#producer = position;
  }

  /** The `index`-th unconsumed item (0 = next), or undefined if there are not that many yet. */
  async peekAt(index: number): Promise<Uint8Array | undefined> {
    while (this.#peeked.length <= index) {
      const next = await this.#readNext();
      if (next === undefined) return undefined;
      this.#peeked.push(next);
    }
    return this.#peeked[index]!.item;
  }

  /**
   * Consumes the first `count` peeked items: publishes the new position
   * and flushes. Returns how many were consumed (fewer only if fewer were
   * peeked).
   */
  async advance(count: number): Promise<number> {
    const n = Math.min(count, this.#peeked.length);
    if (n === 0) return 0;
    const position = this.#peeked[n - 1]!.next;
    const seq = this.#seq + 1n;
    // Every byte of the consumed items was read (the reads resolved) /before/
    // this write frees their space for the producer.
    await this.area.writeSlot(MAGIC_CONSUMER, CONSUMER_SLOTS, { seq, position });
    // consumption durable /before/ advance resolves: after a crash the items
    // do not come back, and the producer never overwrites live items
    await this.area.flush();
    this.#seq = seq;
    this.#position = position;
    if (n === this.#peeked.length) this.#scan = position;
    this.#peeked = this.#peeked.slice(n);
    return n;
  }

  async #readNext(): Promise<Peeked | undefined> {
    const last = this.#peeked[this.#peeked.length - 1];
    let at = last?.next ?? this.#scan;
    for (;;) {
      // Skip first: the skip may land exactly on the producer position.
      at = recordStart(at, this.area.sectorSize);
      if (at >= this.#producer) {
        this.noteProducer((await this.area.readSlot(MAGIC_PRODUCER, PRODUCER_SLOTS)).position);
        if (at >= this.#producer) return undefined;
      }
      const head = await this.#bytes(at, RECORD_HEADER);
      const h = decodeRecordHeader(head);
      const room = this.#producer - at - BigInt(RECORD_HEADER);
      if ((h.magic !== MAGIC_ITEM && h.magic !== MAGIC_PAD) || BigInt(h.length) > room) {
        throw this.#corrupt(at, `no record (magic 0x${h.magic.toString(16)}, length ${h.length})`);
      }
      if (h.magic === MAGIC_PAD) {
        if (!recordValid(this.area.queueId, at, head, new Uint8Array(0))) throw this.#corrupt(at, 'padding fails its checksum');
        at += BigInt(RECORD_HEADER + h.length);
        if (last === undefined) this.#scan = at;
        continue;
      }
      const payload = (await this.#bytes(at + BigInt(RECORD_HEADER), h.length)).slice();
      if (!recordValid(this.area.queueId, at, head, payload)) throw this.#corrupt(at, 'item fails its checksum');
      return { item: payload, next: at + BigInt(recordBytes(h.length)) };
    }
  }

  #corrupt(at: bigint, what: string): IoError {
    return new IoError(`queue: ${what} at position ${at} (live region ${this.#position}..${this.#producer}): the device lost or tore a published write`);
  }

  /** `length` bytes at `position` (inside the live region), through the read-ahead window. */
  async #bytes(position: bigint, length: number): Promise<Uint8Array> {
    const c = this.#cache;
    if (c !== undefined && position >= c.start && position + BigInt(length) <= c.start + BigInt(c.bytes.length)) {
      const off = Number(position - c.start);
      return c.bytes.subarray(off, off + length);
    }
    // Live data never changes until consumed, so the window may span up to
    // the producer position; it stays within one lap of the ring.
    const live = this.#producer - position;
    const want = BigInt(Math.max(length, READ_AHEAD));
    let span = want < live ? want : live;
    // Whole sectors are read from the one holding `position`: stay within one lap.
    const lap = this.area.dataBytes - position % BigInt(this.area.sectorSize);
    if (span > lap) span = lap;
    const { bytes, offset } = await this.area.readData(position, Number(span));
    this.#cache = { start: position - BigInt(offset), bytes };
    return bytes.subarray(offset, offset + length);
  }
}
