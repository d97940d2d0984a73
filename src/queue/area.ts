/**
 * The queue's view of its BlockDevice: position slots and the data ring,
 * addressed in positions (bytes), turned into sector I/O here and nowhere
 * else. Shared by the producer and the consumer side.
 */
import type { BlockDevice } from '../block/types.js';
import { IoError } from '../errors.js';
import { decodeSlot, encodeSlot, newestSlot, type Slot, type SlotKind, type Superblock } from './format.js';

export class QueueArea {
  readonly sectorSize: number;
  readonly queueId: bigint;
  /** Bytes in the data ring. */
  readonly dataBytes: bigint;
  readonly #S: bigint;
  readonly #dataStart: bigint;
  readonly #flushes: boolean;

  constructor(readonly dev: BlockDevice, sb: Superblock) {
    this.sectorSize = sb.sectorSize;
    this.#S = BigInt(sb.sectorSize);
    this.queueId = sb.queueId;
    this.#dataStart = sb.dataStart;
    this.dataBytes = sb.dataSectors * this.#S;
    // A device without flush (none built in today) gives whatever durability it has.
    this.#flushes = dev.info().features.flush;
  }

  /** The newest valid slot of `kind` at `base`; `io` if neither slot validates. */
  async readSlot(kind: SlotKind, base: bigint): Promise<Slot> {
    const two = new Uint8Array(this.sectorSize * 2);
    await this.dev.read(base, [two]);
    const slot = newestSlot(
      decodeSlot(kind, this.queueId, two.subarray(0, this.sectorSize)),
      decodeSlot(kind, this.queueId, two.subarray(this.sectorSize)),
    );
    if (slot === undefined) throw new IoError(`queue: both position slots at sector ${base} are invalid (device corrupt or not this queue)`);
    return slot;
  }

  /** Writes `slot` into slot `seq mod 2` at `base`: the other slot keeps the previous position. */
  writeSlot(kind: SlotKind, base: bigint, slot: Slot): Promise<void> {
    return this.dev.write(base + (slot.seq & 1n), [encodeSlot(kind, this.queueId, slot, this.sectorSize)]);
  }

  flush(): Promise<void> {
    return this.#flushes ? this.dev.flush() : Promise.resolve();
  }

  /**
   * Writes `bytes` (whole sectors, at most the ring) at sector-aligned
   * `position`, in two writes when it wraps past the end of the ring.
   */
  async writeData(position: bigint, bytes: Uint8Array): Promise<void> {
    const at = position % this.dataBytes;
    const first = Number(this.dataBytes - at < BigInt(bytes.length) ? this.dataBytes - at : BigInt(bytes.length));
    const writes = [this.dev.write(this.#dataStart + at / this.#S, [bytes.subarray(0, first)])];
    if (first < bytes.length) writes.push(this.dev.write(this.#dataStart, [bytes.subarray(first)]));
    // Both halves belong to one commit; the flush after them orders them together.
    await Promise.all(writes);
  }

  /** Reads the whole sectors covering [position, position + length) (length ≤ ring); returns them and the offset of `position` in them. */
  async readData(position: bigint, length: number): Promise<{ bytes: Uint8Array; offset: number }> {
    const S = this.#S;
    const start = (position / S) * S;
    const offset = Number(position - start);
    const total = Number(((position + BigInt(length) + S - 1n) / S) * S - start);
    const bytes = new Uint8Array(total);
    const at = start % this.dataBytes;
    const first = Number(this.dataBytes - at < BigInt(total) ? this.dataBytes - at : BigInt(total));
    const reads = [this.dev.read(this.#dataStart + at / S, [bytes.subarray(0, first)])];
    if (first < total) reads.push(this.dev.read(this.#dataStart, [bytes.subarray(first)]));
    await Promise.all(reads);
    return { bytes, offset };
  }
}
