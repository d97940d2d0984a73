/**
 * FAT12/16/32 over a BlockDevice through `fatfs` (npm, 0.10.8). This
 * module is the adapter: it checks the boot sector, gives fatfs a sector
 * driver over a ByteDisk, and fills in what fatfs leaves undone at the
 * sector level:
 *
 * - fatfs writes only the first FAT; every write into FAT #1 is mirrored
 *   into the other copies here (FAT #1 first, then the copies), so
 *   `fsck.fat` finds the FATs equal.
 * - fatfs never updates the FAT32 FSInfo sector; `close()` writes the free
 *   cluster count counted from the FAT (fat-fsinfo.ts).
 * - fatfs gives a directory made in the root a '..' entry pointing at the
 *   root's cluster; the FAT spec (and fsck.fat) want 0 there. Its
 *   directory initialiser is wrapped once to pass 0 (see `patchDotDot`).
 *
 * What fatfs 0.10.8 does not have, and this adapter refuses with
 * `FileSystemError` reason `unsupported` instead of writing it ourselves:
 * unlink, rename, rmdir (its README lists them as "Coming Soon"), and
 * zero-length files (fatfs gives a new file a cluster, which fsck.fat then
 * reports as a size/chain mismatch).
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { ReadOnlyError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';
import { ByteDisk } from './byte-disk.js';
import { FileSystemError, mapLibraryError } from './errors.js';
import { parseFatBoot, type FatGeometry } from './fat-boot.js';
import { updateFsInfo } from './fat-fsinfo.js';
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
  return new FatFileSystem(lib, disk, geo, driver, writable);
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

class FatFileSystem implements FileSystem {
  readonly kind = 'fat' as const;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly lib: FatLibFs,
    private readonly disk: ByteDisk,
    private readonly geo: FatGeometry,
    private readonly driver: SectorDriver,
    readonly writable: boolean,
  ) {}

  private async run<T>(path: string | undefined, fn: (cb: Cb<T>) => void): Promise<T> {
    if (this.closed) throw new FileSystemError('invalid-path', 'the file system is closed');
    this.disk.takeError();
    try {
      return await call(fn);
    } catch (err) {
      throw mapLibraryError(err, path, () => this.disk.takeError());
    }
  }

  private checkWritable(): void {
    if (!this.writable) throw new ReadOnlyError('the file system is on a read-only device');
  }

  async readdir(path: string): Promise<string[]> {
    const p = normalizeFsPath(path);
    const st = await this.stat(p);
    if (!st.isDirectory()) throw new FileSystemError('not-a-directory', `${p} is not a directory`, { path: p });
    return (await this.run<string[]>(p, (cb) => this.lib.readdir(p, cb))).sort();
  }

  async stat(path: string): Promise<FsStats> {
    const p = normalizeFsPath(path);
    if (p === '/') return { size: 0, mtime: new Date(0), ino: 0, isFile: () => false, isDirectory: () => true };
    // fatfs's own stat refuses directories; its internal '\\r' flag opens either.
    const fd = await this.run<number>(p, (cb) => this.lib.open(p, '\\r', cb));
    let s: { size: number; mtime: Date; isFile(): boolean; isDirectory(): boolean };
    try {
      s = await this.run(p, (cb) => this.lib.fstat(fd, cb));
    } finally {
      await call((cb) => this.lib.close(fd, cb)).catch(() => undefined);
    }
    const dir = s.isDirectory();
    return { size: dir ? 0 : s.size, mtime: s.mtime, ino: 0, isFile: () => !dir, isDirectory: () => dir };
  }

  async readFile(path: string): Promise<Buffer> {
    const p = normalizeFsPath(path);
    const st = await this.stat(p);
    if (st.isDirectory()) throw new FileSystemError('is-a-directory', `${p} is a directory`, { path: p });
    return this.run<Buffer>(p, (cb) => this.lib.readFile(p, cb));
  }

  createReadStream(path: string, options: ReadStreamOptions = {}): Readable {
    return chunkedReadStream(this, path, options, async (p, start, endExclusive, push) => {
      const fd = await this.run<number>(p, (cb) => this.lib.open(p, 'r', cb));
      try {
        let pos = start;
        while (pos < endExclusive) {
          const buf = Buffer.alloc(Math.min(CHUNK, endExclusive - pos));
          const n = await this.run<number>(p, (cb) => this.lib.read(fd, buf, 0, buf.length, pos, cb));
          if (!n) break;
          pos += n;
          if (!(await push(buf.subarray(0, n)))) return;
        }
      } finally {
        await call((cb) => this.lib.close(fd, cb)).catch(() => undefined);
      }
    });
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    this.checkWritable();
    const p = normalizeFsPath(path);
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length === 0) throw new FileSystemError('unsupported', 'fatfs 0.10.8 cannot write a zero-length file cleanly', { path: p });
    await this.run(p, (cb) => this.lib.writeFile(p, buf, cb));
  }

  async mkdir(path: string): Promise<void> {
    this.checkWritable();
    const p = normalizeFsPath(path);
    await this.run(p, (cb) => this.lib.mkdir(p, cb));
  }

  async unlink(path: string): Promise<void> {
    this.checkWritable();
    throw new FileSystemError('unsupported', 'fatfs 0.10.8 has no unlink', { path: normalizeFsPath(path) });
  }

  async rename(from: string, _to: string): Promise<void> {
    this.checkWritable();
    throw new FileSystemError('unsupported', 'fatfs 0.10.8 has no rename', { path: normalizeFsPath(from) });
  }

  close(): Promise<void> {
    // fatfs writes through (no write cache): the device has every FAT
    // sector, so FSInfo can be counted from it, then the device flushed.
    this.closed ??= (async () => {
      if (!this.writable || !this.driver.dirty) return;
      try {
        await updateFsInfo(this.disk, this.geo);
      } catch (err) {
        throw mapLibraryError(err, undefined, () => this.disk.takeError());
      }
      await this.disk.flush();
    })();
    return this.closed;
  }
}
