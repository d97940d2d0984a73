/**
 * LVM2's binary on-disk structures (lib/label/label.h,
 * lib/format_text/layout.h), all little-endian. Byte offsets and sizes are
 * in bytes unless a name says sectors (LVM2's sectors are always 512 bytes,
 * whatever the device's own sector size).
 *
 * The label: one 512-byte sector among the first four of the PV.
 *
 *   0   id[8]        "LABELONE"
 *   8   sector u64   number of this sector (0..3)
 *   16  crc u32      calc_crc(INITIAL_CRC, bytes 20..511)
 *   20  offset u32   where pv_header starts, from the label's start (32)
 *   24  type[8]      "LVM2 001"
 *   32  pv_header:
 *         uuid[32]                 PV id, 32 characters without dashes
 *         device_size u64          bytes
 *         disk_locn[]  data areas   {offset u64, size u64}, ends with {0, 0}
 *         disk_locn[]  metadata areas (mda_header offsets), ends with {0, 0}
 *         pv_header_extension (if room): version u32, flags u32,
 *         disk_locn[]  bootloader areas, ends with {0, 0}
 *
 * A metadata area starts with one 512-byte mda_header; the rest of the area
 * is a circular buffer of metadata text.
 *
 *   0   checksum u32   calc_crc(INITIAL_CRC, bytes 4..511)
 *   4   magic[16]      " LVM2 x[5A%r0N*>"
 *   20  version u32    1
 *   24  start u64      absolute byte offset of this header on the PV
 *   32  size u64       size of the whole metadata area, header included
 *   40  raw_locn[0]    committed text: {offset u64 (from `start`), size u64,
 *                      checksum u32 (calc_crc of the text), flags u32}
 *   64  raw_locn[1]    precommitted text (zero outside a commit)
 *   88  raw_locn[2]    {0...}: end of the list
 */
import { calcCrc, INITIAL_CRC } from './crc.js';
import { CorruptMetadataError } from './errors.js';

export const SECTOR = 512;
export const LABEL_ID = 'LABELONE';
export const LABEL_TYPE = 'LVM2 001';
/** LABEL_SCAN_SECTORS: the label lies in one of sectors 0..3. */
export const LABEL_SCAN_SECTORS = 4;
export const FMTT_MAGIC = ' LVM2 x[5A%r0N*>';
export const FMTT_VERSION = 1;
export const MDA_HEADER_SIZE = 512;
/** RAW_LOCN_IGNORED: the metadata area is not used (pvchange --metadataignore). */
export const RAW_LOCN_IGNORED = 1;
const RAW_LOCN_SIZE = 24;
const RAW_LOCN_AT = 40;

export interface DiskLocn {
  /** Bytes from the start of the PV. */
  readonly offset: bigint;
  /** Bytes; 0 in a data area means "to the end of the device". */
  readonly size: bigint;
}

export interface PvLabel {
  /** The sector (0..3) holding the label. */
  readonly sector: number;
  /** PV uuid in the dashed form the metadata text uses (6-4-4-4-4-4-6). */
  readonly uuid: string;
  readonly deviceSize: bigint;
  readonly dataAreas: readonly DiskLocn[];
  readonly metadataAreas: readonly DiskLocn[];
}

export interface RawLocn {
  readonly offset: bigint;
  readonly size: bigint;
  readonly checksum: number;
  readonly flags: number;
}

export interface MdaHeader {
  readonly start: bigint;
  readonly size: bigint;
  /** Slot 0 (committed) and slot 1 (precommitted). */
  readonly rawLocns: readonly [RawLocn, RawLocn];
}

export const EMPTY_LOCN: RawLocn = { offset: 0n, size: 0n, checksum: 0, flags: 0 };

const ascii = (b: Uint8Array): string => String.fromCharCode(...b);
const UUID_GROUPS = [6, 4, 4, 4, 4, 4, 6];

/** 32 characters → the dashed form (id_write_format). */
export function formatUuid(raw: string): string {
  const out: string[] = [];
  let at = 0;
  for (const n of UUID_GROUPS) {
    out.push(raw.slice(at, at + n));
    at += n;
  }
  return out.join('-');
}

/** True iff `sector` (512 bytes) carries a label id; the CRC is checked by decodeLabel. */
export function hasLabelId(sector: Uint8Array): boolean {
  return ascii(sector.subarray(0, 8)) === LABEL_ID;
}

/**
 * Decodes the label in `sector` (the 512 bytes of sector `n`). Throws
 * CorruptMetadataError for a wrong sector number, CRC, type or a pv_header
 * whose lists run off the sector.
 */
export function decodeLabel(sector: Uint8Array, n: number): PvLabel {
  const dv = new DataView(sector.buffer, sector.byteOffset, SECTOR);
  if (dv.getBigUint64(8, true) !== BigInt(n)) {
    throw new CorruptMetadataError('label', `label in sector ${n} says it is in sector ${dv.getBigUint64(8, true)}`);
  }
  const crc = calcCrc(INITIAL_CRC, sector.subarray(20, SECTOR));
  if (crc !== dv.getUint32(16, true)) {
    throw new CorruptMetadataError('label', `checksum ${hex(dv.getUint32(16, true))} does not match the label's content (${hex(crc)})`);
  }
  const type = ascii(sector.subarray(24, 32));
  if (type !== LABEL_TYPE) throw new CorruptMetadataError('label', `type ${JSON.stringify(type)} is not ${LABEL_TYPE}`);
  const at = dv.getUint32(20, true);
  if (at < 32 || at + 40 + 16 > SECTOR) throw new CorruptMetadataError('pv_header', `offset ${at} lies outside the label sector`);
  const uuid = ascii(sector.subarray(at, at + 32));
  if (!/^[0-9A-Za-z!#]{32}$/.test(uuid)) throw new CorruptMetadataError('pv_header', `uuid ${JSON.stringify(uuid)} is malformed`);
  const deviceSize = dv.getBigUint64(at + 32, true);
  let p = at + 40;
  const list = (what: string): DiskLocn[] => {
    const out: DiskLocn[] = [];
    for (;;) {
      if (p + 16 > SECTOR) throw new CorruptMetadataError('pv_header', `${what} list runs off the label sector`);
      const offset = dv.getBigUint64(p, true);
      const size = dv.getBigUint64(p + 8, true);
      p += 16;
      if (offset === 0n && size === 0n) return out;
      out.push({ offset, size });
    }
  };
  const dataAreas = list('data area');
  const metadataAreas = list('metadata area');
  return { sector: n, uuid: formatUuid(uuid), deviceSize, dataAreas, metadataAreas };
}

/**
 * Decodes an mda_header found at byte `at`. Throws CorruptMetadataError for
 * a bad checksum, magic, version, start or size (raw_parse_mda_header).
 */
export function decodeMdaHeader(block: Uint8Array, at: bigint): MdaHeader {
  const dv = new DataView(block.buffer, block.byteOffset, MDA_HEADER_SIZE);
  const crc = calcCrc(INITIAL_CRC, block.subarray(4, MDA_HEADER_SIZE));
  if (crc !== dv.getUint32(0, true)) {
    throw new CorruptMetadataError('mda_header', `checksum ${hex(dv.getUint32(0, true))} at byte ${at} does not match its content (${hex(crc)})`);
  }
  if (ascii(block.subarray(4, 20)) !== FMTT_MAGIC) throw new CorruptMetadataError('mda_header', `wrong magic at byte ${at}`);
  const version = dv.getUint32(20, true);
  if (version !== FMTT_VERSION) throw new CorruptMetadataError('mda_header', `version ${version} at byte ${at} is not ${FMTT_VERSION}`);
  const start = dv.getBigUint64(24, true);
  if (start !== at) throw new CorruptMetadataError('mda_header', `says it starts at byte ${start}, found at ${at}`);
  const size = dv.getBigUint64(32, true);
  if (size < BigInt(MDA_HEADER_SIZE)) throw new CorruptMetadataError('mda_header', `area size ${size} is smaller than its header`);
  const slot = (i: number): RawLocn => {
    const o = RAW_LOCN_AT + i * RAW_LOCN_SIZE;
    return {
      offset: dv.getBigUint64(o, true),
      size: dv.getBigUint64(o + 8, true),
      checksum: dv.getUint32(o + 16, true),
      flags: dv.getUint32(o + 20, true),
    };
  };
  return { start, size, rawLocns: [slot(0), slot(1)] };
}

/** Encodes an mda_header (512 bytes) with its checksum, as _raw_write_mda_header does. */
export function encodeMdaHeader(h: MdaHeader): Uint8Array {
  const block = new Uint8Array(MDA_HEADER_SIZE);
  const dv = new DataView(block.buffer);
  for (let i = 0; i < 16; i++) block[4 + i] = FMTT_MAGIC.charCodeAt(i);
  dv.setUint32(20, FMTT_VERSION, true);
  dv.setBigUint64(24, h.start, true);
  dv.setBigUint64(32, h.size, true);
  h.rawLocns.forEach((r, i) => {
    const o = RAW_LOCN_AT + i * RAW_LOCN_SIZE;
    dv.setBigUint64(o, r.offset, true);
    dv.setBigUint64(o + 8, r.size, true);
    dv.setUint32(o + 16, r.checksum, true);
    dv.setUint32(o + 20, r.flags, true);
  });
  dv.setUint32(0, calcCrc(INITIAL_CRC, block.subarray(4)), true);
  return block;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
