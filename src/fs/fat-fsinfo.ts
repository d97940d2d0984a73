/**
 * The FAT32 FSInfo sector, which fatfs never updates: after writes its
 * free-cluster count is wrong, and fsck.fat says so. `updateFsInfo` counts
 * the free clusters in FAT #1 and stores the count and a next-free hint.
 *
 *   offset size  field
 *   0      4     LeadSig   0x41615252
 *   484    4     StrucSig  0x61417272
 *   488    4     Free_Count  (0xFFFFFFFF = unknown)
 *   492    4     Nxt_Free    (0xFFFFFFFF = unknown)
 *   508    4     TrailSig  0xAA550000
 */
import type { ByteDisk } from './byte-disk.js';
import type { FatGeometry } from './fat-boot.js';

const LEAD_SIG = 0x41615252;
const STRUC_SIG = 0x61417272;
const TRAIL_SIG = 0xaa550000;

/** Counts free clusters in FAT #1; rewrites FSInfo when it is there and valid. No-op for FAT12/16. */
export async function updateFsInfo(disk: ByteDisk, geo: FatGeometry): Promise<void> {
  if (geo.fatType !== 'fat32' || geo.fsInfoSector === 0 || geo.fsInfoSector >= geo.reservedSectors) return;
  const ss = geo.bytesPerSector;
  const info = new Uint8Array(ss);
  await disk.read(info, 0, ss, geo.fsInfoSector * ss);
  const iv = new DataView(info.buffer);
  // A sector that is not FSInfo is left alone.
  if (iv.getUint32(0, true) !== LEAD_SIG || iv.getUint32(484, true) !== STRUC_SIG || iv.getUint32(508, true) !== TRAIL_SIG) return;
  const fatBytes = (geo.clusters + 2) * 4;
  const fat = new Uint8Array(Math.ceil(fatBytes / ss) * ss);
  await disk.read(fat, 0, fat.length, geo.reservedSectors * ss);
  const fv = new DataView(fat.buffer);
  let free = 0;
  let next = 0xffffffff;
  for (let c = 2; c < geo.clusters + 2; c++) {
    if ((fv.getUint32(c * 4, true) & 0x0fffffff) === 0) {
      free++;
      if (next === 0xffffffff) next = c;
    }
  }
  iv.setUint32(488, free, true);
  iv.setUint32(492, next, true);
  await disk.write(info, 0, ss, geo.fsInfoSector * ss);
}
