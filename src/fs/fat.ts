/**
 * FAT12/16/32 over a BlockDevice: `fatfs` (npm, 0.10.8) for reading,
 * writing files and mkdir, our own modules for what it lacks. This module
 * is the adapter: it checks the boot sector, gives fatfs a sector driver
 * over a ByteDisk, and fills in what fatfs leaves undone:
 *
 * - fatfs writes only the first FAT; every write into FAT #1 is mirrored
 *   into the other copies here (FAT #1 first, then the copies), so
 *   `fsck.fat` finds the FATs equal.
 * - fatfs never updates the FAT32 FSInfo sector; `close()` writes the free
 *   cluster count counted from the FAT (fat-fsinfo.ts).
 * - fatfs reads the end-of-chain mark 0x?FF8 as "reserved" (see
 *   `patchEndOfChain`).
 * - fatfs gives a directory made in the root a '..' entry pointing at the
 *   root's cluster; the FAT spec (and fsck.fat) want 0 there. Its
 *   directory initialiser is wrapped once to pass 0 (see `patchDotDot`).
 * - unlink, rmdir, rename and zero-length files (fatfs has none of them,
 *   and gives every new file a cluster) are ours: fat-ops.ts over
 *   fat-dir.ts (entries, long names) and fat-table.ts (cluster chains).
 *
 * fatfs caches FAT sectors, directory sectors, cluster lists and entries
 * by path for as long as a volume is open, so our writes would leave it
 * stale. Hence: fatfs calls run under a shared lock, ours under an
 * exclusive one (lock.ts), and after any of ours that wrote, the fatfs
 * volume is dropped and opened afresh. Read streams open the file per
 * chunk, so they never hold a descriptor of a dropped volume.
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { ReadOnlyError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';
import { ByteDisk } from './byte-disk.js';
import { FileSystemError, mapLibraryError } from './errors.js';
import { parseFatBoot, type FatGeometry } from './fat-boot.js';
import { updateFsInfo } from './fat-fsinfo.js';
import { FatOps } from './fat-ops.js';
import { SharedExclusiveLock } from './lock.js';
import { normalizeFsPath } from './paths.js';
import { CHUNK, chunkedReadStream } from './read-stream.js';
import type { FileSystem, FsStats, ReadStreamOptions } from './types.js';

type Cb<T = unknown> = (err: unknown, value?: T) => void;
/** What we use of fatfs's callback API (it has no types of its own). */
interface FatLibFs {
  on(ev: 'ready' | 'error', fn: (e?: unknown) => void): FatLibFs;
  readdir(path: string, cb: Cb<string[]>): void;
  fstat(fd: number, cb: Cb<{ size: number; mtime: Date; isFile(): boolean; isDirectory(): boolean }>): void;
  readFile(path: string, cb: Cb<Buffer>): void;
  writeFile(path: string, data: Buffer, cb: Cb): void;
  mkdir(path: string, cb: Cb): void;
  open(path: string, flags: string, cb: Cb<number>): void;
  read(fd: number, buf: Buffer, off: number, len: number, pos: number, cb: (e: unknown, n?: number) => void): void;
  close(fd: number, cb: Cb): void;
}
interface SectorDriver {
  /** Set by the first write: close() then updates FSInfo. */
  dirty: boolean;
  sectorSize: number;
  numSectors: number;
  readSectors(i: number, dest: Buffer, cb: Cb): void;
  writeSectors?: (i: number, data: Buffer, cb: Cb) => void;
}

interface FatLib {
  createFileSystem(driver: SectorDriver, opts: object): FatLibFs;
}
let lib: FatLib | undefined;
function fatfs(): FatLib {
  if (lib !== undefined) return lib;
  const require = createRequire(import.meta.url);
  patchDotDot(require('fatfs/dir.js') as FatDirModule);
  patchEndOfChain(require('fatfs/structs.js') as FatStructsModule);
  lib = require('fatfs') as FatLib;
  return lib;
}

/** fatfs's dir.js: `init(vol, dirInfo, cb)` writes '.' and '..' of a new directory. */
interface FatDirModule {
  init(vol: { rootDirectoryChain: unknown }, dirInfo: { parent?: { chain: unknown } }, cb: Cb): void;
  _xenpvPatched?: boolean;
}

/**
 * A directory whose parent is the root must say cluster 0 in '..'
 * (fatgen103, "FAT Directory Structure"). fatfs binds `dir.init` when a
 * volume becomes ready, so wrapping the module's function before any volume
 * is opened fixes every volume; the wrapper hands it a parent whose
 * `firstCluster` is 0 (the only field of the parent that init reads).
 */
function patchDotDot(dir: FatDirModule): void {
  if (dir._xenpvPatched) return;
  const init = dir.init;
  dir.init = function (vol, dirInfo, cb) {
    const parent = dirInfo.parent;
    const fixed = parent !== undefined && parent.chain === vol.rootDirectoryChain ? { ...dirInfo, parent: { ...parent, chain: { firstCluster: 0 } } } : dirInfo;
    return init.call(this, vol, fixed, cb);
  };
  dir._xenpvPatched = true;
}

/** fatfs's structs.js: the FAT status constants vol.js compares with. */
interface FatStructsModule {
  fatStat: { eofMin: number };
}

/**
 * End of chain is any value from 0x?FF8 up (fatgen103), but fatfs tests
 * `status > prefix + eofMin`, so the smallest, 0x0FFFFFF8, which mkfs.fat
 * writes for the FAT32 root directory, reads as "reserved": growing the
 * root past its first cluster then fails with EIO. vol.js reads `eofMin`
 * at that one comparison only, so one less makes it `>=` 0x?FF8.
 */
function patchEndOfChain(structs: FatStructsModule): void {
  if (structs.fatStat.eofMin === 0xf8) structs.fatStat.eofMin = 0xf7;
}

/** True when sector 0 parses as a FAT boot sector. */
export async function looksLikeFat(disk: ByteDisk): Promise<boolean> {
  if (disk.sizeBytes < 512) return false;
  const b = new Uint8Array(512);
  await disk.read(b, 0, 512, 0);
  try {
    parseFatBoot(b);
    return true;
  } catch {
    return false;
  }
}

/** Opens the FAT volume on `device` (no partition table). Typed errors; nothing is written on failure. */
export async function openFat(device: BlockDevice): Promise<FileSystem> {
  const disk = new ByteDisk(device);
  const boot = new Uint8Array(512);
  if (disk.sizeBytes < 512) throw new FileSystemError('too-small', `a ${disk.sizeBytes}-byte device cannot hold a FAT volume`);
  await disk.read(boot, 0, 512, 0);
  const geo = parseFatBoot(boot);
  if (geo.totalSectors * geo.bytesPerSector > disk.sizeBytes) {
    throw new FileSystemError('too-small', `the FAT volume has ${geo.totalSectors * geo.bytesPerSector} bytes, the device ${disk.sizeBytes}`);
  }
  const writable = disk.writable;
  const driver = sectorDriver(disk, geo, writable);
  return new FatFileSystem(await mountFatfs(disk, driver, writable), disk, geo, driver, writable);
}

/** A fatfs volume over `driver`, once it has read the boot sector. */
async function mountFatfs(disk: ByteDisk, driver: SectorDriver, writable: boolean): Promise<FatLibFs> {
  const lib = fatfs().createFileSystem(driver, {
    ro: !writable,
    noatime: true, // reads never write
    umask: 0o022,
    uid: 0,
    gid: 0,
  });
  await new Promise<void>((resolve, reject) => {
    lib.on('ready', () => resolve()).on('error', (e) => reject(mapLibraryError(e, undefined, () => disk.takeError())));
  });
  return lib;
}

function sectorDriver(disk: ByteDisk, geo: FatGeometry, writable: boolean): SectorDriver {
  const ss = geo.bytesPerSector;
  const fatStart = geo.reservedSectors;
  const fatEnd = fatStart + geo.fatSectors;
  const done = (cb: Cb, value?: unknown) => [() => cb(null, value), (e: unknown) => cb(e)] as const;
  const driver: SectorDriver = {
    dirty: false,
    sectorSize: ss,
    numSectors: geo.totalSectors,
    readSectors(i, dest, cb) {
      disk.read(dest, 0, dest.length, i * ss).then(...done(cb, dest));
    },
    writeSectors: writable
      ? (i, data, cb) => {
          driver.dirty = true;
          void (async () => {
            await disk.write(data, 0, data.length, i * ss);
            // The part of this write inside FAT #1 goes to every other copy,
            // after FAT #1 itself (a crash in between leaves copy #1 newest,
            // which is the one fsck.fat and fatfs use).
            const lo = Math.max(i, fatStart);
            const hi = Math.min(i + data.length / ss, fatEnd);
            if (lo < hi) {
              const part = data.subarray((lo - i) * ss, (hi - i) * ss);
              for (let k = 1; k < geo.fatCount; k++) await disk.write(part, 0, part.length, (lo + k * geo.fatSectors) * ss);
            }
          })().then(...done(cb));
        }
      : undefined,
  };
  return driver;
}

function call<T>(fn: (cb: Cb<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v as T))));
}

type LibStats = { size: number; mtime: Date; isFile(): boolean; isDirectory(): boolean };

class FatFileSystem implements FileSystem {
  readonly kind = 'fat' as const;
  private closed: Promise<void> | undefined;
  private readonly lock = new SharedExclusiveLock();
  private readonly ops: FatOps;
  /** Writes made by our own operations; `fresh` is the count fatfs was last opened at. */
  private ourWrites = 0;
  private fresh = 0;

  constructor(
    private lib: FatLibFs,
    private readonly disk: ByteDisk,
    private readonly geo: FatGeometry,
    private readonly driver: SectorDriver,
    readonly writable: boolean,
  ) {
    const io = {
      read: (b: Uint8Array, o: number, l: number, p: number) => disk.read(b, o, l, p),
      write: (b: Uint8Array, o: number, l: number, p: number) => {
        this.ourWrites++;
        driver.dirty = true;
        return disk.write(b, o, l, p);
      },
    };
    this.ops = new FatOps(io, geo);
  }

  /** One fatfs call on the current volume (the caller holds the lock). */
  private async lib$<T>(path: string | undefined, fn: (lib: FatLibFs, cb: Cb<T>) => void): Promise<T> {
    this.disk.takeError();
    try {
      return await call<T>((cb) => fn(this.lib, cb));
    } catch (err) {
      throw mapLibraryError(err, path, () => this.disk.takeError());
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new FileSystemError('invalid-path', 'the file system is closed');
  }

  private shared<T>(fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    return this.lock.runShared(fn);
  }

  /** Alone on the volume; fatfs is reopened afterwards if we wrote anything (even when `fn` failed half-way). */
  private exclusive<T>(path: string, fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    if (!this.writable) return Promise.reject(new ReadOnlyError('the file system is on a read-only device'));
    return this.lock.runExclusive(async () => {
      this.disk.takeError();
      try {
        return await fn();
      } catch (err) {
        throw mapLibraryError(err, path, () => this.disk.takeError());
      } finally {
        await this.refresh();
      }
    });
  }

  /** Drops fatfs's volume (and with it every cache) when our writes changed the device since it was opened. */
  private async refresh(): Promise<void> {
    if (this.fresh === this.ourWrites) return;
    this.lib = await mountFatfs(this.disk, this.driver, this.writable);
    this.fresh = this.ourWrites;
  }

  private async statLocked(p: string): Promise<FsStats> {
    if (p === '/') return { size: 0, mtime: new Date(0), ino: 0, isFile: () => false, isDirectory: () => true };
    // fatfs's own stat refuses directories; its internal '\\r' flag opens either.
    const fd = await this.lib$<number>(p, (lib, cb) => lib.open(p, '\\r', cb));
    let s: LibStats;
    try {
      s = await this.lib$<LibStats>(p, (lib, cb) => lib.fstat(fd, cb));
    } finally {
      await call((cb) => this.lib.close(fd, cb)).catch(() => undefined);
    }
    const dir = s.isDirectory();
    return { size: dir ? 0 : s.size, mtime: s.mtime, ino: 0, isFile: () => !dir, isDirectory: () => dir };
  }

  async readdir(path: string): Promise<string[]> {
    const p = normalizeFsPath(path);
    return this.shared(async () => {
      const st = await this.statLocked(p);
      if (!st.isDirectory()) throw new FileSystemError('not-a-directory', `${p} is not a directory`, { path: p });
      return (await this.lib$<string[]>(p, (lib, cb) => lib.readdir(p, cb))).sort();
    });
  }

  async stat(path: string): Promise<FsStats> {
    const p = normalizeFsPath(path);
    return this.shared(() => this.statLocked(p));
  }

  async readFile(path: string): Promise<Buffer> {
    const p = normalizeFsPath(path);
    return this.shared(async () => {
      const st = await this.statLocked(p);
      if (st.isDirectory()) throw new FileSystemError('is-a-directory', `${p} is a directory`, { path: p });
      if (st.size === 0) return Buffer.alloc(0); // cluster 0: nothing for fatfs to follow
      return this.lib$<Buffer>(p, (lib, cb) => lib.readFile(p, cb));
    });
  }

  createReadStream(path: string, options: ReadStreamOptions = {}): Readable {
    return chunkedReadStream(this, path, options, async (p, start, endExclusive, push) => {
      let pos = start;
      while (pos < endExclusive) {
        // Each chunk opens the file on the current volume (see the top of this file).
        const chunk = await this.shared(async () => {
          const fd = await this.lib$<number>(p, (lib, cb) => lib.open(p, 'r', cb));
          try {
            const buf = Buffer.alloc(Math.min(CHUNK, endExclusive - pos));
            const n = await this.lib$<number>(p, (lib, cb) => lib.read(fd, buf, 0, buf.length, pos, cb));
            return buf.subarray(0, n ?? 0);
          } finally {
            await call((cb) => this.lib.close(fd, cb)).catch(() => undefined);
          }
        });
        if (chunk.length === 0) break;
        pos += chunk.length;
        if (!(await push(chunk))) return;
      }
    });
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const p = normalizeFsPath(path);
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.exclusive(p, async () => {
      if (buf.length === 0) return this.ops.writeEmpty(p);
      if (await this.ops.prepareWrite(p)) await this.refresh();
      await this.lib$(p, (lib, cb) => lib.writeFile(p, buf, cb));
    });
  }

  async mkdir(path: string): Promise<void> {
    const p = normalizeFsPath(path);
    await this.exclusive(p, async () => {
      await this.ops.checkCreate(p);
      await this.lib$(p, (lib, cb) => lib.mkdir(p, cb));
    });
  }

  async unlink(path: string): Promise<void> {
    const p = normalizeFsPath(path);
    await this.exclusive(p, () => this.ops.unlink(p));
  }

  async rmdir(path: string): Promise<void> {
    const p = normalizeFsPath(path);
    await this.exclusive(p, () => this.ops.rmdir(p));
  }

  async rename(from: string, to: string): Promise<void> {
    const a = normalizeFsPath(from);
    const b = normalizeFsPath(to);
    await this.exclusive(a, () => this.ops.rename(a, b));
  }

  close(): Promise<void> {
    // After every call queued before it. fatfs writes through (no write
    // cache): the device has every FAT sector, so FSInfo can be counted
    // from it, then the device flushed.
    this.closed ??= this.lock.runExclusive(async () => {
      if (!this.writable || !this.driver.dirty) return;
      try {
        await updateFsInfo(this.disk, this.geo);
      } catch (err) {
        throw mapLibraryError(err, undefined, () => this.disk.takeError());
      }
      await this.disk.flush();
    });
    return this.closed;
  }
}
