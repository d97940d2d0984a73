/**
 * Reading one physical volume: its label, the header of each metadata area
 * and the committed metadata text each area holds (the text may wrap from
 * the end of the area's circular buffer back to just after its header).
 */
import { InvalidArgumentError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';
import { readBytes } from './bytes.js';
import { calcCrc, INITIAL_CRC } from './crc.js';
import { CorruptMetadataError } from './errors.js';
import {
  decodeLabel,
  decodeMdaHeader,
  hasLabelId,
  LABEL_SCAN_SECTORS,
  MDA_HEADER_SIZE,
  RAW_LOCN_IGNORED,
  SECTOR,
  type MdaHeader,
  type PvLabel,
  type RawLocn,
} from './layout.js';

/** One metadata area of a PV, as read. */
export interface MdaRead {
  readonly device: BlockDevice;
  /** Byte offset of the area's header on the device. */
  readonly start: bigint;
  /** Undefined iff the header is corrupt (then `error` says why). */
  readonly header?: MdaHeader;
  /** Slot 0 carries RAW_LOCN_IGNORED: LVM2 neither reads nor writes this area. */
  readonly ignored: boolean;
  /** The committed text, without its trailing NUL; undefined if none, ignored or corrupt. */
  readonly text?: string;
  readonly error?: CorruptMetadataError;
}

export interface PvRead {
  readonly device: BlockDevice;
  readonly label: PvLabel;
  readonly mdas: readonly MdaRead[];
}

function deviceBytes(dev: BlockDevice): bigint {
  const i = dev.info();
  return i.sizeSectors * BigInt(i.sectorSize);
}

/** Finds and decodes the label; `invalid-argument` naming `device` if there is none. */
export async function readLabel(dev: BlockDevice): Promise<PvLabel> {
  const scan = BigInt(LABEL_SCAN_SECTORS * SECTOR);
  const size = deviceBytes(dev);
  const head = await readBytes(dev, 0n, Number(size < scan ? size : scan));
  for (let n = 0; (n + 1) * SECTOR <= head.length; n++) {
    const sector = head.subarray(n * SECTOR, (n + 1) * SECTOR);
    if (hasLabelId(sector)) return decodeLabel(sector, n);
  }
  throw new InvalidArgumentError('device', `not an LVM2 physical volume: no LABELONE label in its first ${LABEL_SCAN_SECTORS} sectors`);
}

/** Checks that slot `r` of `h` lies in the area and returns its [offset, length] pieces (two if it wraps). */
export function textPieces(h: MdaHeader, r: RawLocn): Array<{ offset: bigint; length: number }> {
  // The same bounds _vg_read_raw_area checks before it trusts a raw_locn.
  if (r.offset < BigInt(MDA_HEADER_SIZE) || r.offset >= h.size || r.size > h.size - BigInt(MDA_HEADER_SIZE) || r.size === 0n) {
    throw new CorruptMetadataError('mda_header', `metadata location (offset ${r.offset}, size ${r.size}) lies outside the ${h.size}-byte area at byte ${h.start}`);
  }
  const end = r.offset + r.size;
  if (end <= h.size) return [{ offset: h.start + r.offset, length: Number(r.size) }];
  const wrap = end - h.size;
  return [
    { offset: h.start + r.offset, length: Number(r.size - wrap) },
    { offset: h.start + BigInt(MDA_HEADER_SIZE), length: Number(wrap) },
  ];
}

async function readText(dev: BlockDevice, h: MdaHeader, r: RawLocn): Promise<string> {
  const parts = await Promise.all(textPieces(h, r).map((p) => readBytes(dev, p.offset, p.length)));
  let crc = INITIAL_CRC;
  for (const p of parts) crc = calcCrc(crc, p);
  if (crc !== r.checksum) {
    throw new CorruptMetadataError('metadata', `text at byte ${h.start + r.offset} (${r.size} bytes) fails its checksum`);
  }
  // latin1 maps each byte to one code unit, so strings we keep (tags,
  // descriptions) are written back byte for byte.
  const text = Buffer.concat(parts).toString('latin1');
  const nul = text.indexOf('\0');
  return nul < 0 ? text : text.slice(0, nul);
}

async function readMda(dev: BlockDevice, start: bigint, areaSize: bigint): Promise<MdaRead> {
  let header: MdaHeader;
  try {
    if (start + areaSize > deviceBytes(dev) || areaSize < BigInt(MDA_HEADER_SIZE)) {
      throw new CorruptMetadataError('pv_header', `metadata area [${start}, ${start + areaSize}) does not fit on the device`);
    }
    header = decodeMdaHeader(await readBytes(dev, start, MDA_HEADER_SIZE), start);
    if (header.size !== areaSize) {
      throw new CorruptMetadataError('mda_header', `area size ${header.size} differs from the label's ${areaSize}`);
    }
  } catch (err) {
    if (err instanceof CorruptMetadataError) return { device: dev, start, ignored: false, error: err };
    throw err;
  }
  const slot0 = header.rawLocns[0];
  if ((slot0.flags & RAW_LOCN_IGNORED) !== 0) return { device: dev, start, header, ignored: true };
  if (slot0.offset === 0n && slot0.size === 0n) return { device: dev, start, header, ignored: false };
  try {
    return { device: dev, start, header, ignored: false, text: await readText(dev, header, slot0) };
  } catch (err) {
    if (err instanceof CorruptMetadataError) return { device: dev, start, header, ignored: false, error: err };
    throw err;
  }
}

/** Reads a PV's label and metadata areas. Corrupt areas are reported in `mdas[i].error`, a corrupt label throws. */
export async function readPv(dev: BlockDevice): Promise<PvRead> {
  const label = await readLabel(dev);
  const mdas: MdaRead[] = [];
  for (const m of label.metadataAreas) mdas.push(await readMda(dev, m.offset, m.size));
  return { device: dev, label, mdas };
}
