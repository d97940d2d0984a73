/**
 * The file allocation table, for the operations we do ourselves (unlink,
 * rename, rmdir, empty files): walking, freeing and allocating cluster
 * chains. One `FatTable` lives for one operation: FAT #1 sectors are read
 * when first touched and kept, changed in memory, and `flush()` writes the
 * changed sectors to FAT #1, then to every other copy, so nothing is ever
 * read from a cache older than the operation.
 *
 *   entry of cluster n      FAT12: 12 bits at byte n + n/2 (odd n: high 12 bits of the pair)
 *                           FAT16: 16 bits at byte 2n
 *                           FAT32: low 28 bits at byte 4n (the top 4 bits are kept as found)
 *   value  0                free
 *          2 .. clusters+1  next cluster of the chain
 *          >= EOC_MIN       end of chain (0xFF8 / 0xFFF8 / 0x0FFFFFF8)
 *          BAD              bad cluster (0xFF7 / 0xFFF7 / 0x0FFFFFF7)
 */
import type { SectorIo } from './byte-disk.js';
import { FileSystemError } from './errors.js';
import type { FatGeometry } from './fat-boot.js';

const EOC_MIN = { fat12: 0xff8, fat16: 0xfff8, fat32: 0x0ffffff8 } as const;
const EOC = { fat12: 0xfff, fat16: 0xffff, fat32: 0x0fffffff } as const;

export class FatTable {
  private readonly sectors = new Map<number, Uint8Array>();
  private readonly dirty = new Set<number>();
  private nextHint = 2;

  constructor(private readonly disk: SectorIo, readonly geo: FatGeometry) {}

  /** Byte offset of cluster n's entry inside one FAT copy. */
  private offset(n: number): number {
    const t = this.geo.fatType;
    return t === 'fat12' ? n + (n >>> 1) : t === 'fat16' ? n * 2 : n * 4;
  }

  private async byteAt(off: number): Promise<{ sector: Uint8Array; at: number; index: number }> {
    const ss = this.geo.bytesPerSector;
    const index = Math.floor(off / ss);
    let sector = this.sectors.get(index);
    if (sector === undefined) {
      sector = new Uint8Array(ss);
      await this.disk.read(sector, 0, ss, (this.geo.reservedSectors + index) * ss);
      this.sectors.set(index, sector);
    }
    return { sector, at: off % ss, index };
  }

  /** The bytes of an entry, which for FAT12 may straddle two sectors. */
  private async bytes(n: number): Promise<number[]> {
    const off = this.offset(n);
    const width = this.geo.fatType === 'fat12' ? 2 : this.geo.fatType === 'fat16' ? 2 : 4;
    const out: number[] = [];
    for (let i = 0; i < width; i++) {
      const { sector, at } = await this.byteAt(off + i);
      out.push(sector[at]!);
    }
    return out;
  }

  private async setBytes(n: number, values: number[]): Promise<void> {
    const off = this.offset(n);
    for (let i = 0; i < values.length; i++) {
      const { sector, at, index } = await this.byteAt(off + i);
      sector[at] = values[i]!;
      this.dirty.add(index);
    }
  }

  private checkCluster(n: number): void {
    if (!Number.isInteger(n) || n < 2 || n > this.geo.clusters + 1) throw new FileSystemError('corrupt', `cluster ${n} is outside 2..${this.geo.clusters + 1}`);
  }

  async get(n: number): Promise<number> {
    this.checkCluster(n);
    const b = await this.bytes(n);
    switch (this.geo.fatType) {
      case 'fat12': {
        const pair = b[0]! | (b[1]! << 8);
        return n & 1 ? pair >>> 4 : pair & 0xfff;
      }
      case 'fat16':
        return b[0]! | (b[1]! << 8);
      case 'fat32':
        return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) & 0x0fffffff;
    }
  }

  async set(n: number, value: number): Promise<void> {
    this.checkCluster(n);
    const t = this.geo.fatType;
    if (t === 'fat12') {
      const b = await this.bytes(n);
      const pair = b[0]! | (b[1]! << 8);
      const next = n & 1 ? (pair & 0x000f) | (value << 4) : (pair & 0xf000) | value;
      await this.setBytes(n, [next & 0xff, (next >>> 8) & 0xff]);
    } else if (t === 'fat16') {
      await this.setBytes(n, [value & 0xff, value >>> 8]);
    } else {
      const high = (await this.bytes(n))[3]! & 0xf0; // reserved bits stay as found
      await this.setBytes(n, [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, ((value >>> 24) & 0x0f) | high]);
    }
  }

  isEnd(value: number): boolean {
    return value >= EOC_MIN[this.geo.fatType];
  }

  /**
   * The clusters of the chain starting at `first` (none for 0), checked
   * whole before anyone frees it: every link in range, not free, not bad,
   * no loop. `corrupt` otherwise.
   */
  async chain(first: number): Promise<number[]> {
    if (first === 0) return [];
    const out: number[] = [];
    const seen = new Set<number>();
    let c = first;
    for (;;) {
      this.checkCluster(c);
      if (seen.has(c)) throw new FileSystemError('corrupt', `the cluster chain from ${first} loops at ${c}`);
      seen.add(c);
      out.push(c);
      const v = await this.get(c);
      if (this.isEnd(v)) return out;
      if (v === 0 || v === EOC_MIN[this.geo.fatType] - 1 || v < 2 || v > this.geo.clusters + 1) {
        throw new FileSystemError('corrupt', `cluster ${c} of the chain from ${first} links to ${v}`);
      }
      c = v;
    }
  }

  /** Marks every cluster of `clusters` free (a chain from `chain()`). */
  async free(clusters: readonly number[]): Promise<void> {
    for (const c of clusters) await this.set(c, 0);
  }

  /** Finds a free cluster, marks it end-of-chain, links it after `after` (if given). `no-space` when none. */
  async allocate(after?: number): Promise<number> {
    const total = this.geo.clusters;
    for (let i = 0; i < total; i++) {
      const c = 2 + ((this.nextHint - 2 + i) % total);
      if ((await this.get(c)) !== 0) continue;
      await this.set(c, EOC[this.geo.fatType]);
      if (after !== undefined) await this.set(after, c);
      this.nextHint = c + 1 > total + 1 ? 2 : c + 1;
      return c;
    }
    throw new FileSystemError('no-space', 'no free cluster left on the FAT volume');
  }

  /** Writes the changed sectors: FAT #1 first, then each copy (a crash in between leaves FAT #1 newest, the one readers use). */
  async flush(): Promise<void> {
    const ss = this.geo.bytesPerSector;
    const changed = [...this.dirty].sort((a, b) => a - b);
    for (let k = 0; k < this.geo.fatCount; k++) {
      for (const i of changed) {
        const s = this.sectors.get(i)!;
        await this.disk.write(s, 0, ss, (this.geo.reservedSectors + k * this.geo.fatSectors + i) * ss);
      }
    }
    this.dirty.clear();
  }
}
