/**
 * The FAT boot sector (BIOS parameter block), as far as the adapter needs
 * it: to check a volume before fatfs sees it, and to mirror FAT writes.
 *
 *   offset size field                 offset size field (FAT32 only)
 *   11     2    BytsPerSec            36     4    FATSz32
 *   13     1    SecPerClus            44     4    RootClus
 *   14     2    RsvdSecCnt            48     2    FSInfo
 *   16     1    NumFATs
 *   17     2    RootEntCnt
 *   19     2    TotSec16
 *   22     2    FATSz16               510    2    0x55 0xAA signature
 *   32     4    TotSec32
 *
 *   | reserved (RsvdSecCnt) | FAT #1 (FATSz) | FAT #2 ... | root dir (FAT12/16) | data |
 */
import { FileSystemError } from './errors.js';

export interface FatGeometry {
  readonly bytesPerSector: number;
  readonly sectorsPerCluster: number;
  readonly reservedSectors: number;
  readonly fatCount: number;
  /** Sectors per FAT copy. */
  readonly fatSectors: number;
  readonly totalSectors: number;
  readonly fatType: 'fat12' | 'fat16' | 'fat32';
  /** Data clusters, numbered 2 .. clusters + 1. */
  readonly clusters: number;
  /** FAT32: sector of the FSInfo structure (0: none). */
  readonly fsInfoSector: number;
  /** FAT12/16: first sector and sector count of the fixed root directory (FAT32: 0, 0). */
  readonly rootDirSector: number;
  readonly rootDirSectors: number;
  /** FAT32: first cluster of the root directory (FAT12/16: 0). */
  readonly rootCluster: number;
  /** Sector of cluster 2. */
  readonly dataSector: number;
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** Parses and checks the BPB; `corrupt` when it is not a FAT volume fatfs can use. */
export function parseFatBoot(b: Uint8Array): FatGeometry {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.byteLength < 512 || b[510] !== 0x55 || b[511] !== 0xaa) throw new FileSystemError('corrupt', 'no FAT boot sector (0x55AA signature missing)');
  const bytesPerSector = v.getUint16(11, true);
  const sectorsPerCluster = b[13]!;
  const reservedSectors = v.getUint16(14, true);
  const fatCount = b[16]!;
  const rootEntries = v.getUint16(17, true);
  const totalSectors = v.getUint16(19, true) || v.getUint32(32, true);
  const fatSectors = v.getUint16(22, true) || v.getUint32(36, true);
  if (bytesPerSector === 0) throw new FileSystemError('corrupt', 'BytsPerSec is 0 (exFAT, which fatfs does not read)');
  if (!isPow2(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096) throw new FileSystemError('corrupt', `BytsPerSec ${bytesPerSector} is not 512..4096`);
  if (!isPow2(sectorsPerCluster)) throw new FileSystemError('corrupt', `SecPerClus ${sectorsPerCluster} is not a power of two`);
  if (reservedSectors === 0 || fatCount === 0 || fatSectors === 0 || totalSectors === 0) {
    throw new FileSystemError('corrupt', 'RsvdSecCnt, NumFATs, FATSz and TotSec must be non-zero');
  }
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataStart = reservedSectors + fatCount * fatSectors + rootSectors;
  if (dataStart >= totalSectors) throw new FileSystemError('corrupt', 'the FATs and root directory fill the whole volume');
  const clusters = Math.floor((totalSectors - dataStart) / sectorsPerCluster);
  // Microsoft's rule (fatgen103), which fatfs applies too.
  const fatType = clusters < 4085 ? 'fat12' : clusters < 65525 ? 'fat16' : 'fat32';
  const fsInfoSector = fatType === 'fat32' ? v.getUint16(48, true) : 0;
  const rootCluster = fatType === 'fat32' ? v.getUint32(44, true) & 0x0fffffff : 0;
  if (fatType === 'fat32' && (rootCluster < 2 || rootCluster > clusters + 1)) throw new FileSystemError('corrupt', `RootClus ${rootCluster} is not a data cluster`);
  if (fatType !== 'fat32' && rootSectors === 0) throw new FileSystemError('corrupt', 'RootEntCnt is 0 on a FAT12/16 volume');
  return {
    bytesPerSector, sectorsPerCluster, reservedSectors, fatCount, fatSectors, totalSectors, fatType, clusters, fsInfoSector,
    rootDirSector: fatType === 'fat32' ? 0 : reservedSectors + fatCount * fatSectors,
    rootDirSectors: fatType === 'fat32' ? 0 : rootSectors,
    rootCluster,
    dataSector: dataStart,
  };
}
