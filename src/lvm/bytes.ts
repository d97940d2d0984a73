/**
 * Byte-addressed I/O over a BlockDevice of any sector size. LVM2 places its
 * structures at byte offsets (a label in one 512-byte sector, a 512-byte
 * mda_header, text at any offset); on a 4096-byte-sector device these do
 * not fall on sector boundaries, so a write reads the covering sectors,
 * patches them and writes them back.
 */
import type { BlockDevice } from '../block/types.js';

function span(dev: BlockDevice, offset: bigint, length: number): { first: bigint; count: number; skip: number } {
  const size = BigInt(dev.info().sectorSize);
  const first = offset / size;
  const end = (offset + BigInt(length) + size - 1n) / size;
  return { first, count: Number(end - first), skip: Number(offset - first * size) };
}

/** Reads `length` bytes at byte `offset`. Rejects with the device's errors (`out-of-range` past the end). */
export async function readBytes(dev: BlockDevice, offset: bigint, length: number): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const { first, count, skip } = span(dev, offset, length);
  const buf = new Uint8Array(count * dev.info().sectorSize);
  await dev.read(first, [buf]);
  return buf.subarray(skip, skip + length);
}

/** Writes `data` at byte `offset`, read-modify-write for the partial sectors at either end. */
export async function writeBytes(dev: BlockDevice, offset: bigint, data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  const sectorSize = dev.info().sectorSize;
  const { first, count, skip } = span(dev, offset, data.length);
  const buf = new Uint8Array(count * sectorSize);
  if (skip !== 0 || (skip + data.length) % sectorSize !== 0) await dev.read(first, [buf]);
  buf.set(data, skip);
  await dev.write(first, [buf]);
}
