/**
 * One FAT directory, read whole from the device for one operation: its
 * entry sets (long-name entries + the 8.3 entry they belong to), lookup by
 * name, deleting a set, adding one. Written from the FAT specification
 * (fatgen103, "FAT Directory Structure" and "FAT Long Directory Entries").
 *
 *   8.3 entry (32 bytes)
 *   offset size field            offset size field
 *   0      11   Name             20     2    FstClusHI (FAT32)
 *   11     1    Attr             22     2    WrtTime
 *   12     1    NTRes            24     2    WrtDate
 *   13     1    CrtTimeTenth     26     2    FstClusLO
 *   14     2    CrtTime          28     4    FileSize
 *   16     2    CrtDate
 *   18     2    LstAccDate
 *
 *   Name[0] = 0xE5: deleted slot; 0x00: this slot and all after it are free.
 *   A set on disk:  [LFN n|0x40] [LFN n-1] ... [LFN 1] [8.3 entry]
 *
 *   where:  FAT12/16 root   a fixed run of sectors after the FATs
 *           any other       the cluster chain from its first cluster
 */
import type { SectorIo } from './byte-disk.js';
import { FileSystemError } from './errors.js';
import type { FatTable } from './fat-table.js';
import { ATTR_LFN, ENTRY, LAST_LFN, longEntries, longEntryPart, makeShortName, shortNameChecksum, shortNameText } from './fat-names.js';

export const ATTR_DIRECTORY = 0x10;
const ATTR_VOLUME = 0x08;
const DELETED = 0xe5;
/** The spec's limit: a directory holds at most 65536 slots. */
const MAX_SLOTS = 65536;

export interface DirRecord {
  /** The long name when a valid set precedes the entry, else the 8.3 text. */
  readonly name: string;
  readonly shortText: string;
  /** First slot of the set (the first long entry, or the 8.3 entry itself). */
  readonly firstSlot: number;
  /** Slot of the 8.3 entry. */
  readonly slot: number;
  /** The 32 bytes of the 8.3 entry. */
  readonly raw: Uint8Array;
  readonly isDirectory: boolean;
  readonly cluster: number;
  readonly size: number;
  /** '.' or '..'. */
  readonly dot: boolean;
}

export class FatDirectory {
  private constructor(
    private readonly disk: SectorIo,
    private readonly table: FatTable,
    /** 0: the FAT12/16 fixed root. */
    readonly firstCluster: number,
    /** Byte position on the device of each cluster (or the one fixed root run). */
    private readonly runs: number[],
    private readonly runBytes: number,
    private bytes: Uint8Array,
  ) {}

  /** Reads the directory starting at `firstCluster` (0 or the FAT32 root cluster: the root). */
  static async open(disk: SectorIo, table: FatTable, firstCluster: number): Promise<FatDirectory> {
    const g = table.geo;
    const ss = g.bytesPerSector;
    if (firstCluster === 0 && g.fatType !== 'fat32') {
      const bytes = new Uint8Array(g.rootDirSectors * ss);
      await disk.read(bytes, 0, bytes.length, g.rootDirSector * ss);
      return new FatDirectory(disk, table, 0, [g.rootDirSector * ss], bytes.length, bytes);
    }
    const first = firstCluster === 0 ? g.rootCluster : firstCluster;
    const clusters = await table.chain(first);
    const cb = g.sectorsPerCluster * ss;
    if (clusters.length * cb > MAX_SLOTS * ENTRY) throw new FileSystemError('corrupt', `the directory at cluster ${first} is longer than 65536 entries`);
    const bytes = new Uint8Array(clusters.length * cb);
    const runs = clusters.map((c) => FatDirectory.clusterPos(table, c));
    for (let i = 0; i < runs.length; i++) await disk.read(bytes, i * cb, cb, runs[i]!);
    return new FatDirectory(disk, table, first, runs, cb, bytes);
  }

  private static clusterPos(table: FatTable, c: number): number {
    const g = table.geo;
    return (g.dataSector + (c - 2) * g.sectorsPerCluster) * g.bytesPerSector;
  }

  private get slots(): number {
    return this.bytes.length / ENTRY;
  }

  private slot(i: number): Uint8Array {
    return this.bytes.subarray(i * ENTRY, (i + 1) * ENTRY);
  }

  /** Slot index of the first 0x00 entry (all slots from there are free), or the slot count. */
  private end(): number {
    for (let i = 0; i < this.slots; i++) if (this.bytes[i * ENTRY] === 0) return i;
    return this.slots;
  }

  /** Every entry set, '.' and '..' included (flagged), volume labels and orphaned long entries left out. */
  records(): DirRecord[] {
    const out: DirRecord[] = [];
    const end = this.end();
    let lfn: { first: number; sum: number; next: number; parts: string[] } | undefined;
    for (let i = 0; i < end; i++) {
      const e = this.slot(i);
      if (e[0] === DELETED) {
        lfn = undefined;
        continue;
      }
      if ((e[11]! & 0x3f) === ATTR_LFN) {
        const ord = e[0]! & 0x1f;
        if (e[0]! & LAST_LFN) lfn = ord >= 1 ? { first: i, sum: e[13]!, next: ord - 1, parts: [] } : undefined;
        else if (lfn === undefined || ord !== lfn.next || e[13] !== lfn.sum || ord === 0) {
          lfn = undefined;
          continue;
        } else lfn.next--;
        lfn?.parts.unshift(longEntryPart(e));
        continue;
      }
      const set = lfn;
      lfn = undefined;
      if ((e[11]! & ATTR_VOLUME) !== 0) continue;
      const name11 = e.subarray(0, 11);
      const valid = set !== undefined && set.next === 0 && set.sum === shortNameChecksum(name11);
      const v = new DataView(e.buffer, e.byteOffset, ENTRY);
      const hi = this.table.geo.fatType === 'fat32' ? v.getUint16(20, true) : 0;
      const shortText = shortNameText(name11);
      out.push({
        name: valid ? set.parts.join('') : shortText,
        shortText,
        firstSlot: valid ? set.first : i,
        slot: i,
        raw: e.slice(),
        isDirectory: (e[11]! & ATTR_DIRECTORY) !== 0,
        cluster: (hi << 16) | v.getUint16(26, true),
        size: v.getUint32(28, true),
        dot: shortText === '.' || shortText === '..',
      });
    }
    return out;
  }

  /** The set named `name` (long or 8.3 name, case-insensitive, as FAT compares). */
  find(name: string): DirRecord | undefined {
    const want = name.toUpperCase();
    return this.records().find((r) => !r.dot && (r.name.toUpperCase() === want || r.shortText === want));
  }

  /** True when nothing but '.' and '..' is left. */
  isEmpty(): boolean {
    return this.records().every((r) => r.dot);
  }

  /** Writes slots [from, to) to the device, one 32-byte slot at a time, in order. */
  private async writeSlots(from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      const at = i * ENTRY;
      const run = Math.floor(at / this.runBytes);
      await this.disk.write(this.bytes, at, ENTRY, this.runs[run]! + (at % this.runBytes));
    }
  }

  /**
   * Marks the set deleted (0xE5): the long entries first, the 8.3 entry
   * last, so a crash in between leaves a valid 8.3-only entry, never an
   * entry without a name.
   */
  async remove(r: DirRecord): Promise<void> {
    for (let i = r.firstSlot; i <= r.slot; i++) this.bytes[i * ENTRY] = DELETED;
    await this.writeSlots(r.firstSlot, r.slot + 1);
  }

  /**
   * Adds a set for `name` whose 8.3 entry carries bytes 11..31 of `fields`
   * (attributes, times, cluster, size) under a short name unique in this
   * directory. Uses the first run of free slots; grows a cluster-chain
   * directory by zeroed clusters when there is none (`no-space` for a full
   * FAT12/16 root). Returns the new record.
   */
  async add(name: string, fields: Uint8Array): Promise<DirRecord> {
    const taken = new Set(this.records().map((r) => r.shortText));
    const short = makeShortName(name, taken);
    const set = [...longEntries(name, shortNameChecksum(short))];
    const entry = fields.slice(0, ENTRY);
    entry.set(short, 0);
    entry[12] = 0; // NTRes case bits: the long name carries the case
    set.push(entry);
    const at = await this.freeRun(set.length);
    const oldEnd = this.end();
    set.forEach((e, k) => this.bytes.set(e, (at + k) * ENTRY));
    // Taking slots at the 0x00 end mark: the slot after the run becomes the
    // new end mark, written before the entries so the directory never reads on into stale bytes.
    if (at + set.length > oldEnd && at + set.length < this.slots) {
      this.bytes.fill(0, (at + set.length) * ENTRY, (at + set.length + 1) * ENTRY);
      await this.writeSlots(at + set.length, at + set.length + 1);
    }
    await this.writeSlots(at, at + set.length); // long entries first, the 8.3 entry last
    return this.records().find((r) => r.slot === at + set.length - 1)!;
  }

  /** First slot of `n` consecutive free slots, growing the directory if it must. */
  private async freeRun(n: number): Promise<number> {
    for (;;) {
      const end = this.end();
      let run = 0;
      for (let i = 0; i < this.slots; i++) {
        run = i >= end || this.bytes[i * ENTRY] === DELETED ? run + 1 : 0;
        if (run === n) return i - n + 1;
      }
      await this.grow();
    }
  }

  /**
   * One more cluster: zeroed on the device, then linked into the chain and
   * the FAT written (every copy), before any entry is put in it.
   */
  private async grow(): Promise<void> {
    if (this.firstCluster === 0) throw new FileSystemError('no-space', 'the FAT12/16 root directory is full');
    if (this.slots + this.runBytes / ENTRY > MAX_SLOTS) throw new FileSystemError('no-space', 'a FAT directory holds at most 65536 entries');
    const chain = await this.table.chain(this.firstCluster);
    const c = await this.table.allocate(chain[chain.length - 1]);
    const pos = FatDirectory.clusterPos(this.table, c);
    const zeros = new Uint8Array(this.runBytes);
    await this.disk.write(zeros, 0, zeros.length, pos);
    await this.table.flush();
    this.runs.push(pos);
    const bigger = new Uint8Array(this.bytes.length + this.runBytes);
    bigger.set(this.bytes);
    this.bytes = bigger;
  }

  /** Rewrites the 8.3 entry of `r` with `raw` (same name; new cluster, size, times). */
  async update(r: DirRecord, raw: Uint8Array): Promise<void> {
    this.bytes.set(raw.subarray(11, ENTRY), r.slot * ENTRY + 11);
    await this.writeSlots(r.slot, r.slot + 1);
  }

  /** Points this directory's '..' (slot 1) at `parentCluster` (0 for the root). */
  async setDotDot(parentCluster: number): Promise<void> {
    const e = this.slot(1);
    if (shortNameText(e.subarray(0, 11)) !== '..') throw new FileSystemError('corrupt', `the directory at cluster ${this.firstCluster} has no '..' entry`);
    const v = new DataView(e.buffer, e.byteOffset, ENTRY);
    v.setUint16(26, parentCluster & 0xffff, true);
    if (this.table.geo.fatType === 'fat32') v.setUint16(20, parentCluster >>> 16, true);
    await this.writeSlots(1, 2);
  }
}

/** `fields` for an 8.3 entry with `attr`, first cluster, size, and all three times set to `now` (local time, as FAT keeps it). */
export function entryFields(attr: number, cluster: number, size: number, now = new Date()): Uint8Array {
  const e = new Uint8Array(ENTRY);
  const v = new DataView(e.buffer);
  const date = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >>> 1);
  e[11] = attr;
  e[13] = (now.getSeconds() & 1) * 100 + Math.floor(now.getMilliseconds() / 10);
  v.setUint16(14, time, true);
  v.setUint16(16, date, true);
  v.setUint16(18, date, true);
  v.setUint16(20, cluster >>> 16, true);
  v.setUint16(22, time, true);
  v.setUint16(24, date, true);
  v.setUint16(26, cluster & 0xffff, true);
  v.setUint32(28, size, true);
  return e;
}

/** A copy of an 8.3 entry's bytes with a new first cluster, size and write time. */
export function withContent(raw: Uint8Array, cluster: number, size: number, now = new Date()): Uint8Array {
  const e = raw.slice();
  const fresh = entryFields(0, cluster, size, now);
  e.set(fresh.subarray(20, 32), 20); // FstClusHI, WrtTime, WrtDate, FstClusLO, FileSize
  e[11] = e[11]! | 0x20; // ARCHIVE: changed since the last backup
  return e;
}
