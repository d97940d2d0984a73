/**
 * Writing new metadata text the way LVM2's _vg_write_raw, _vg_precommit_raw
 * and _vg_commit_raw do (lib/format_text/format-text.c).
 *
 * Where the new copy goes in an area's circular buffer:
 *
 *   area.start
 *   │ 512       old copy          new copy (512-aligned)                  size
 *   ├────────┬─────┬───────────┬──┬────────────────────────────────────────┤
 *   │ header │     │ old text  │0…│ new text ──────────────────────────────│→ wraps
 *   └────────┴─────┴───────────┴──┴────────────────────────────────────────┘
 *            ↑ text that does not fit before `size` continues here
 *
 * - The new copy starts at the first 512-byte boundary after the old copy's
 *   last byte; back at 512 (just after the header) if that is within 512
 *   bytes of the end.
 * - A single copy may be at most (size - 512) / 2 - 512 bytes, so that two
 *   copies always fit; old and new must not overlap.
 * - The text is written with a trailing NUL (counted in raw_locn.size and
 *   its checksum) and zero-padded to the next 512-byte boundary.
 *
 * Order, over every area of every PV in the VG:
 *   1. write the new text into each area (raw_locn slots still name the old
 *      text: a crash here leaves the old metadata in force);
 *   2. precommit: slot 1 := new location, in each area's header;
 *   3. commit: slot 0 := new location, slot 1 := 0. From here on LVM2 reads
 *      the new text.
 * Every area is checked (header re-read, room for the text) before the
 * first byte is written, so a refusal writes nothing.
 */
import type { BlockDevice } from '../block/types.js';
import { IoError } from '../errors.js';
import { readBytes, writeBytes } from './bytes.js';
import { calcCrc, INITIAL_CRC } from './crc.js';
import { NoSpaceError } from './errors.js';
import { decodeMdaHeader, encodeMdaHeader, EMPTY_LOCN, MDA_HEADER_SIZE, type MdaHeader, type RawLocn } from './layout.js';

/** An area we will write: its device, and the header as we last read or wrote it. */
export interface MdaTarget {
  readonly device: BlockDevice;
  readonly header: MdaHeader;
}

const ALIGN = 512n;

/** Largest single copy of text (with its NUL) an area of `size` bytes takes. */
export function maxTextSize(size: bigint): bigint {
  return (size - BigInt(MDA_HEADER_SIZE)) / 2n - 512n;
}

/** First and last byte (inclusive, from area start) of a copy; `wrap` bytes continue after the header. */
function extent(h: MdaHeader, offset: bigint, size: bigint): { start: bigint; last: bigint; wrap: bigint } {
  if (offset + size > h.size) {
    const wrap = offset + size - h.size;
    return { start: offset, last: wrap + BigInt(MDA_HEADER_SIZE) - 1n, wrap };
  }
  return { start: offset, last: offset + size - 1n, wrap: 0n };
}

/** _next_rlocn_offset with 512-byte alignment. */
function nextOffset(h: MdaHeader, old: RawLocn | undefined): bigint {
  if (old === undefined) return BigInt(MDA_HEADER_SIZE);
  const { last } = extent(h, old.offset, old.size);
  if (h.size - last < ALIGN) return BigInt(MDA_HEADER_SIZE);
  let next = last + 1n;
  if (next % ALIGN !== 0n) next += ALIGN - (next % ALIGN);
  if (next > h.size - ALIGN) return BigInt(MDA_HEADER_SIZE);
  return next;
}

/** The overlap test of _vg_write_raw: true iff the two copies share a byte. */
function overlaps(o: { start: bigint; last: bigint; wrap: bigint }, n: { start: bigint; last: bigint; wrap: bigint }): boolean {
  if (n.wrap && o.wrap) return true;
  if (!n.wrap && !o.wrap) return !((n.start > o.last && n.last > n.start) || (n.start < o.start && n.last < o.start));
  if (o.wrap && !n.wrap) return !(o.last < n.start && n.start < n.last && n.last < o.start);
  return !(n.last < o.start && o.start < o.last && o.last < n.start);
}

interface Plan {
  readonly target: MdaTarget;
  readonly locn: RawLocn;
  readonly writes: ReadonlyArray<{ at: bigint; bytes: Uint8Array }>;
}

function plan(target: MdaTarget, text: Uint8Array, checksum: number, vg: string): Plan {
  const h = target.header;
  const size = BigInt(text.length);
  const max = maxTextSize(h.size);
  if (size > max) {
    throw new NoSpaceError(`metadata of VG ${vg} (${size} bytes) exceeds the ${max}-byte maximum of the metadata area at byte ${h.start}`);
  }
  const slot0 = h.rawLocns[0];
  const old = slot0.offset === 0n && slot0.size === 0n ? undefined : slot0;
  const offset = nextOffset(h, old);
  const n = extent(h, offset, size);
  if (old !== undefined && overlaps(extent(h, old.offset, old.size), n)) {
    throw new NoSpaceError(`metadata of VG ${vg} (${size} bytes) does not fit beside the current copy in the area at byte ${h.start}`);
  }
  // Zero-pad to a 512-byte boundary (the wrapped piece, if any, is the padded one).
  const pad = (b: Uint8Array, at: bigint): Uint8Array => {
    const over = Number((at + BigInt(b.length)) % ALIGN);
    if (over === 0) return b;
    const out = new Uint8Array(b.length + 512 - over);
    out.set(b);
    return out;
  };
  const first = Number(size - n.wrap);
  const at1 = h.start + offset;
  const writes = n.wrap === 0n
    ? [{ at: at1, bytes: pad(text, at1) }]
    : [
        { at: at1, bytes: text.subarray(0, first) },
        { at: h.start + BigInt(MDA_HEADER_SIZE), bytes: pad(text.subarray(first), h.start + BigInt(MDA_HEADER_SIZE)) },
      ];
  return { target, locn: { offset, size, checksum, flags: 0 }, writes };
}

async function flushAll(devices: Iterable<BlockDevice>): Promise<void> {
  for (const d of devices) if (d.info().features.flush) await d.flush();
}

function sameLocn(a: RawLocn, b: RawLocn): boolean {
  return a.offset === b.offset && a.size === b.size && a.checksum === b.checksum && a.flags === b.flags;
}

/**
 * Writes `text` (without NUL) as the VG's new metadata into every target.
 * Returns the targets' new headers in the same order. Throws NoSpaceError
 * (nothing written) if an area is too small, IoError (nothing written) if
 * an area's header changed since it was read.
 */
export async function commitText(targets: readonly MdaTarget[], textWithoutNul: string, vg: string): Promise<MdaTarget[]> {
  const text = new Uint8Array(Buffer.byteLength(textWithoutNul, 'latin1') + 1);
  Buffer.from(text.buffer).write(textWithoutNul, 'latin1');
  const checksum = calcCrc(INITIAL_CRC, text);

  // Check everything first: nothing is written unless every area can take the text.
  for (const t of targets) {
    const now = decodeMdaHeader(await readBytes(t.device, t.header.start, MDA_HEADER_SIZE), t.header.start);
    if (!sameLocn(now.rawLocns[0], t.header.rawLocns[0]) || now.size !== t.header.size) {
      throw new IoError(`metadata area at byte ${t.header.start} changed since it was read (another writer?); reopen the volume group`);
    }
  }
  const plans = targets.map((t) => plan(t, text, checksum, vg));
  const devices = new Set(targets.map((t) => t.device));

  // 1. The text: slots still name the old copy, so a crash here changes nothing.
  for (const p of plans) for (const w of p.writes) await writeBytes(p.target.device, w.at, w.bytes);
  // The text must be durable before any header points at it.
  await flushAll(devices);

  // 2. Precommit: slot 1 names the new copy, slot 0 still the old one.
  for (const p of plans) {
    const h = p.target.header;
    await writeBytes(p.target.device, h.start, encodeMdaHeader({ ...h, rawLocns: [h.rawLocns[0], p.locn] }));
  }
  await flushAll(devices);

  // 3. Commit: slot 0 names the new copy; the precommit slot is cleared.
  const done: MdaTarget[] = [];
  for (const p of plans) {
    const header: MdaHeader = { ...p.target.header, rawLocns: [p.locn, EMPTY_LOCN] };
    await writeBytes(p.target.device, header.start, encodeMdaHeader(header));
    done.push({ device: p.target.device, header });
  }
  await flushAll(devices);
  return done;
}
