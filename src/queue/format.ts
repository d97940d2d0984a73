/**
 * On-disk format of the persistent queue: pure encode/decode, no I/O.
 * All integers little-endian. `S` is the device's sector size.
 *
 *  sector 0        1         2         3         4        5..7     8 (DATA_START)          end
 *  +--------------+---------+---------+---------+---------+--------+---------------------------+
 *  | superblock   | prod    | prod    | cons    | cons    | unused | data area: a byte ring of |
 *  | (format only)| slot 0  | slot 1  | slot 0  | slot 1  |        | dataSectors * S bytes     |
 *  +--------------+---------+---------+---------+---------+--------+---------------------------+
 *
 * Positions are u64 byte counts since the queue was formatted; they only
 * grow. Position p lives at byte (p mod dataBytes) of the data area. The
 * items in [consumer, producer) are live; producer − consumer ≤ dataBytes.
 *
 * The producer writes only its two slots, the consumer only its two: two
 * processes never write the same sector. Each side writes sequence number
 * `seq` into slot `seq mod 2`, so a torn slot write leaves the other slot —
 * the previous, durable position — intact; a reader takes the valid slot
 * (magic, queue id, CRC) with the higher `seq`.
 *
 * Superblock (sector 0; the rest of the sector is zero):
 *   0  magic        8 bytes "XPVQUEUE"
 *   8  version      u32 = 1
 *  12  sectorSize   u32
 *  16  queueId      u64   random at format: slots and records of an earlier
 *                         format of the same device never validate
 *  24  dataStart    u64   first sector of the data area
 *  32  dataSectors  u64
 *  40  reserved     20 bytes, zero
 *  60  crc32c       u32 over bytes 0..59
 *
 * Position slot (one sector each; the rest of the sector is zero):
 *   0  magic     u32 "XQPR" (producer) or "XQCO" (consumer)
 *   4  version   u32 = 1
 *   8  queueId   u64
 *  16  seq       u64
 *  24  position  u64
 *  32  crc32c    u32 over bytes 0..31
 *
 * Record (in the data area, at an 8-byte aligned position):
 *   0  magic     u32 "XQIT" (item) or "XQPD" (padding)
 *   4  length    u32 item: payload bytes; padding: bytes skipped after the header
 *   8  crc32c    u32 over queueId u64 ‖ position u64 ‖ bytes 0..7 ‖ payload
 *  12  reserved  u32 = 0
 *  16  payload, then zero fill to the next multiple of 8
 *
 *  The position in the CRC makes a record left over from an earlier lap of
 *  the ring (same place, position − dataBytes) fail its check.
 *
 *  Placement rules (writer and reader apply the same ones):
 *  - a record never starts in the last 15 bytes of a sector (fewer than
 *    RECORD_HEADER bytes left): the position skips to the next sector;
 *  - the producer publishes only whole sectors: each commit starts at a
 *    sector boundary and ends with a padding record (or a skip) up to the
 *    next one, so a sector holding published items is never written again.
 */
import { crc32c } from './crc32c.js';

export const DATA_START = 8n;
export const PRODUCER_SLOTS = 1n;
export const CONSUMER_SLOTS = 3n;
export const VERSION = 1;
export const SUPERBLOCK_BYTES = 64;
export const SLOT_BYTES = 36;
export const RECORD_HEADER = 16;
export const RECORD_ALIGN = 8;

const MAGIC_SUPER = new TextEncoder().encode('XPVQUEUE');
export const MAGIC_PRODUCER = 0x52505158; // "XQPR" read as u32 LE
export const MAGIC_CONSUMER = 0x4f435158; // "XQCO"
export const MAGIC_ITEM = 0x54495158; // "XQIT"
export const MAGIC_PAD = 0x44505158; // "XQPD"

export interface Superblock {
  readonly sectorSize: number;
  readonly queueId: bigint;
  readonly dataStart: bigint;
  readonly dataSectors: bigint;
}

export interface Slot {
  readonly seq: bigint;
  readonly position: bigint;
}

export type SlotKind = typeof MAGIC_PRODUCER | typeof MAGIC_CONSUMER;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function encodeSuperblock(sb: Superblock): Uint8Array {
  const out = new Uint8Array(sb.sectorSize);
  const v = view(out);
  out.set(MAGIC_SUPER, 0);
  v.setUint32(8, VERSION, true);
  v.setUint32(12, sb.sectorSize, true);
  v.setBigUint64(16, sb.queueId, true);
  v.setBigUint64(24, sb.dataStart, true);
  v.setBigUint64(32, sb.dataSectors, true);
  v.setUint32(60, crc32c(out.subarray(0, 60)), true);
  return out;
}

/** The superblock in `sector`, or a reason it is not one. */
export function decodeSuperblock(sector: Uint8Array): Superblock | string {
  if (sector.length < SUPERBLOCK_BYTES) return 'sector too small';
  for (let i = 0; i < MAGIC_SUPER.length; i++) if (sector[i] !== MAGIC_SUPER[i]) return 'no XPVQUEUE magic';
  const v = view(sector);
  if (v.getUint32(60, true) !== crc32c(sector.subarray(0, 60))) return 'superblock checksum mismatch';
  const version = v.getUint32(8, true);
  if (version !== VERSION) return `unsupported version ${version}`;
  return {
    sectorSize: v.getUint32(12, true),
    queueId: v.getBigUint64(16, true),
    dataStart: v.getBigUint64(24, true),
    dataSectors: v.getBigUint64(32, true),
  };
}

export function encodeSlot(kind: SlotKind, queueId: bigint, slot: Slot, sectorSize: number): Uint8Array {
  const out = new Uint8Array(sectorSize);
  const v = view(out);
  v.setUint32(0, kind, true);
  v.setUint32(4, VERSION, true);
  v.setBigUint64(8, queueId, true);
  v.setBigUint64(16, slot.seq, true);
  v.setBigUint64(24, slot.position, true);
  v.setUint32(32, crc32c(out.subarray(0, 32)), true);
  return out;
}

/** The slot in `sector` if it is a valid slot of this kind and queue, else undefined. */
export function decodeSlot(kind: SlotKind, queueId: bigint, sector: Uint8Array): Slot | undefined {
  const v = view(sector);
  if (v.getUint32(0, true) !== kind || v.getUint32(4, true) !== VERSION) return undefined;
  if (v.getBigUint64(8, true) !== queueId) return undefined;
  if (v.getUint32(32, true) !== crc32c(sector.subarray(0, 32))) return undefined;
  return { seq: v.getBigUint64(16, true), position: v.getBigUint64(24, true) };
}

/** Of two slot reads, the valid one with the higher sequence number. */
export function newestSlot(a: Slot | undefined, b: Slot | undefined): Slot | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.seq > a.seq ? b : a;
}

/** Bytes a record with `length` payload bytes occupies (header, payload, fill). */
export function recordBytes(length: number): number {
  return RECORD_HEADER + Math.ceil(length / RECORD_ALIGN) * RECORD_ALIGN;
}

/** Where a record at or after `position` starts (the skip rule). */
export function recordStart(position: bigint, sectorSize: number): bigint {
  const left = BigInt(sectorSize) - (position % BigInt(sectorSize));
  return left < BigInt(RECORD_HEADER) ? position + left : position;
}

function recordCrc(queueId: bigint, position: bigint, head: Uint8Array, payload: Uint8Array): number {
  const pre = new Uint8Array(16);
  view(pre).setBigUint64(0, queueId, true);
  view(pre).setBigUint64(8, position, true);
  return crc32c(payload, crc32c(head.subarray(0, 8), crc32c(pre)));
}

/** Writes the record for `payload` at `out[0..]`, to live at `position`. */
export function encodeRecord(out: Uint8Array, magic: number, queueId: bigint, position: bigint, payload: Uint8Array, padLength = 0): void {
  const v = view(out);
  v.setUint32(0, magic, true);
  v.setUint32(4, magic === MAGIC_PAD ? padLength : payload.length, true);
  v.setUint32(12, 0, true);
  out.set(payload, RECORD_HEADER);
  v.setUint32(8, recordCrc(queueId, position, out, payload), true);
}

export interface RecordHeader {
  readonly magic: number;
  readonly length: number;
  readonly crc: number;
}

export function decodeRecordHeader(head: Uint8Array): RecordHeader {
  const v = view(head);
  return { magic: v.getUint32(0, true), length: v.getUint32(4, true), crc: v.getUint32(8, true) };
}

/** Whether the record (header bytes + payload) at `position` passes its checksum. */
export function recordValid(queueId: bigint, position: bigint, head: Uint8Array, payload: Uint8Array): boolean {
  return view(head).getUint32(8, true) === recordCrc(queueId, position, head, payload);
}
