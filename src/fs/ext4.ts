/**
 * ext2/3/4 over a BlockDevice through `ext2fs` (npm; e2fsprogs' libext2fs
 * compiled to WebAssembly with Asyncify). This module is the whole adapter:
 * a ByteDisk as the library's disk, paths checked before the library sees
 * them, and its errors turned into ours. Everything on disk is libext2fs's.
 *
 * The library holds one Wasm instance for the process and runs its calls
 * one at a time; several mounts share it.
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { ReadOnlyError, XenpvError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';
import { ByteDisk } from './byte-disk.js';
import { FileSystemError, mapLibraryError } from './errors.js';
import { WriteOverlay } from './overlay.js';
import { normalizeFsPath } from './paths.js';
import { CHUNK, chunkedReadStream } from './read-stream.js';
import type { FileSystem, FsStats, ReadStreamOptions } from './types.js';

/** What we use of ext2fs's fs.promises (it has no types of its own). */
interface Ext2Promises {
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<{ size: number; mtime: Date; ino: number; isFile(): boolean; isDirectory(): boolean }>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  mkdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Returns a FileHandle; its `fd` goes to read/close below. */
  open(path: string, flags: string): Promise<{ readonly fd: number }>;
  close(fd: number): Promise<void>;
  read(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<{ bytesRead: number }>;
}
interface Ext2Mounted {
  promises: Ext2Promises;
}
interface Ext2Lib {
  mount(disk: unknown, offset: number): Promise<Ext2Mounted>;
  umount(fs: Ext2Mounted): Promise<void>;
}

let lib: Ext2Lib | undefined;
function ext2fs(): Ext2Lib {
  if (lib !== undefined) return lib;
  // Loaded on first use: it instantiates a 370 KB Wasm module. Its
  // Emscripten glue installs process-wide 'uncaughtException' and
  // 'unhandledRejection' listeners that re-throw; they are not ours to
  // keep (they change how the host process dies), so they are removed.
  const before = new Set([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
  lib = createRequire(import.meta.url)('ext2fs') as Ext2Lib;
  for (const l of process.listeners('uncaughtException')) if (!before.has(l)) process.removeListener('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection')) if (!before.has(l)) process.removeListener('unhandledRejection', l);
  return lib;
}

/**
 * libext2fs' own error codes (lib/ext2fs/ext2_err.et, EXT2_ET_BASE =
 * 2133571328) that the library passes through as errno, and the POSIX code
 * each means here.
 */
const EXT2_ET: Record<number, string> = {
  2133571400: 'ENOSPC', // EXT2_ET_BLOCK_ALLOC_FAIL
  2133571401: 'ENOSPC', // EXT2_ET_INODE_ALLOC_FAIL
  2133571402: 'ENOTDIR', // EXT2_ET_NO_DIRECTORY
  2133571404: 'ENOENT', // EXT2_ET_FILE_NOT_FOUND
  2133571407: 'EEXIST', // EXT2_ET_DIR_EXISTS
};

/** ext2fs errors carry `errno`: the library's table first, then ERRNO names. */
function ext2Error(err: unknown): unknown {
  const errno = (err as { errno?: unknown } | null)?.errno;
  const code = typeof errno === 'number' ? EXT2_ET[errno] : undefined;
  return code === undefined ? err : Object.assign(new Error((err as Error).message, { cause: err }), { code });
}

const EXT_MAGIC_OFFSET = 1024 + 56;
const READ_AHEAD = 256 * 1024;
const EXT_MAGIC = 0xef53;

/** True when the superblock magic of ext2/3/4 is at its place. */
export async function looksLikeExt(disk: ByteDisk): Promise<boolean> {
  if (disk.sizeBytes < EXT_MAGIC_OFFSET + 2) return false;
  const b = new Uint8Array(2);
  await disk.read(b, 0, 2, EXT_MAGIC_OFFSET);
  return (b[0]! | (b[1]! << 8)) === EXT_MAGIC;
}

/**
 * The superblock's size against the device's, before libext2fs (which
 * would only fail later, on the first block past the end):
 *
 *   superblock (at byte 1024)  offset  size  field
 *                              4       4     s_blocks_count_lo
 *                              24      4     s_log_block_size (block = 1024 << it)
 *                              96      4     s_feature_incompat (0x80: 64bit)
 *                              336     4     s_blocks_count_hi (64bit only)
 */
async function checkExtSize(disk: ByteDisk): Promise<void> {
  const sb = new Uint8Array(1024);
  await disk.read(sb, 0, 1024, 1024);
  const v = new DataView(sb.buffer);
  const log = v.getUint32(24, true);
  if (log > 6) throw new FileSystemError('corrupt', `s_log_block_size ${log} is not 0..6 (1 KiB..64 KiB blocks)`);
  const blockSize = 1024 << log;
  const hi = v.getUint32(96, true) & 0x80 ? v.getUint32(336, true) : 0;
  const bytes = (hi * 2 ** 32 + v.getUint32(4, true)) * blockSize;
  if (bytes > disk.sizeBytes) throw new FileSystemError('too-small', `the ext file system has ${bytes} bytes, the device ${disk.sizeBytes}`);
}

/** Mounts the ext file system on `device`. Typed errors; the device is untouched on failure. */
export async function openExt4(device: BlockDevice): Promise<FileSystem> {
  // libext2fs reads file data one block per call: read 256 KiB ahead.
  const disk = new ByteDisk(device, READ_AHEAD);
  if (!(await looksLikeExt(disk))) {
    throw disk.takeError() ?? new FileSystemError('corrupt', 'no ext2/3/4 superblock (magic 0xEF53 at byte 1080)');
  }
  await checkExtSize(disk);
  // libext2fs writes even when only reading (atime, the superblock's mount
  // count). On a read-only device those writes go to a memory overlay, so
  // the library stays consistent and the device is never written; our own
  // write calls are refused before they reach the library.
  const writable = disk.writable;
  const overlay = writable ? undefined : new WriteOverlay(disk);
  const libDisk = {
    read: (b: Buffer, o: number, l: number, p: number) => (overlay ?? disk).read(b, o, l, p),
    write: (b: Buffer, o: number, l: number, p: number) => (overlay ?? disk).write(b, o, l, p),
    discard: (p: number, l: number) => (writable ? disk.discard(p, l) : Promise.resolve()),
    flush: () => (writable ? disk.flush() : Promise.resolve()),
  };
  let mounted: Ext2Mounted;
  try {
    mounted = await ext2fs().mount(libDisk, 0);
  } catch (err) {
    throw mapMountError(err, disk);
  }
  return new Ext4FileSystem(mounted, disk, writable);
}

function mapMountError(err: unknown, disk: ByteDisk): XenpvError {
  const dev = disk.takeError();
  // checkExtSize saw the file system fit the device: a read past the end
  // now means metadata pointing outside it.
  if (dev?.code === 'out-of-range') return new FileSystemError('corrupt', `ext metadata points outside the device (${dev.message})`, { cause: err });
  if (dev !== undefined) return dev;
  return new FileSystemError('corrupt', `libext2fs cannot mount it: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

class Ext4FileSystem implements FileSystem {
  readonly kind = 'ext4' as const;
  private closed: Promise<void> | undefined;
  private readonly p: Ext2Promises;

  constructor(private readonly mounted: Ext2Mounted, private readonly disk: ByteDisk, readonly writable: boolean) {
    this.p = mounted.promises;
  }

  private async call<T>(path: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new FileSystemError('invalid-path', 'the file system is closed');
    this.disk.takeError();
    try {
      return await fn();
    } catch (err) {
      throw mapLibraryError(ext2Error(err), path, () => this.disk.takeError());
    }
  }

  private mutate<T>(path: string, fn: () => Promise<T>): Promise<T> {
    if (!this.writable) return Promise.reject(new ReadOnlyError('the file system is on a read-only device'));
    return this.call(path, fn);
  }

  async readdir(path: string): Promise<string[]> {
    const p = normalizeFsPath(path);
    const names = await this.call(p, () => this.p.readdir(p));
    return names.filter((n) => n !== '.' && n !== '..').sort();
  }

  async stat(path: string): Promise<FsStats> {
    const p = normalizeFsPath(path);
    const s = await this.call(p, () => this.p.stat(p));
    return { size: s.size, mtime: s.mtime, ino: s.ino, isFile: () => s.isFile(), isDirectory: () => s.isDirectory() };
  }

  async readFile(path: string): Promise<Buffer> {
    // Not the library's readFile: its option merging forces utf8, which
    // mangles binary files. The same chunked reads as the stream instead.
    const p = normalizeFsPath(path);
    const st = await this.stat(p);
    if (st.isDirectory()) throw new FileSystemError('is-a-directory', `${p} is a directory`, { path: p });
    const out = Buffer.alloc(st.size);
    let at = 0;
    await this.readRange(p, 0, st.size, async (b) => {
      at += b.copy(out, at);
      return true;
    });
    return at === st.size ? out : out.subarray(0, at);
  }

  createReadStream(path: string, options: ReadStreamOptions = {}): Readable {
    return chunkedReadStream(this, path, options, (p, start, end, push) => this.readRange(p, start, end, push));
  }

  /** Reads [start, endExclusive) of a file in chunks; stops when `push` resolves false. */
  private async readRange(p: string, start: number, endExclusive: number, push: (b: Buffer) => Promise<boolean>): Promise<void> {
    const { fd } = await this.call(p, () => this.p.open(p, 'r'));
    try {
      let pos = start;
      while (pos < endExclusive) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, endExclusive - pos));
        const { bytesRead } = await this.call(p, () => this.p.read(fd, buf, 0, buf.length, pos));
        if (bytesRead === 0) break;
        pos += bytesRead;
        if (!(await push(buf.subarray(0, bytesRead)))) return;
      }
    } finally {
      await this.p.close(fd).catch(() => undefined);
    }
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const p = normalizeFsPath(path);
    await this.mutate(p, () => this.p.writeFile(p, typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }

  async mkdir(path: string): Promise<void> {
    const p = normalizeFsPath(path);
    await this.mutate(p, () => this.p.mkdir(p));
  }

  async unlink(path: string): Promise<void> {
    const p = normalizeFsPath(path);
    // libext2fs' unlink removes directories as well: refuse them as POSIX does.
    const s = await this.stat(p);
    if (s.isDirectory()) throw new FileSystemError('is-a-directory', `${p} is a directory`, { path: p });
    await this.mutate(p, () => this.p.unlink(p));
  }

  async rmdir(path: string): Promise<void> {
    const p = normalizeFsPath(path);
    if (p === '/') throw new FileSystemError('invalid-path', 'the root directory cannot be removed', { path: p });
    const s = await this.stat(p);
    if (!s.isDirectory()) throw new FileSystemError('not-a-directory', `${p} is not a directory`, { path: p });
    await this.mutate(p, () => this.p.rmdir(p));
  }

  async rename(from: string, to: string): Promise<void> {
    const a = normalizeFsPath(from);
    const b = normalizeFsPath(to);
    await this.mutate(a, () => this.p.rename(a, b));
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      try {
        await ext2fs().umount(this.mounted);
      } catch (err) {
        throw mapLibraryError(err, undefined, () => this.disk.takeError());
      }
      if (this.writable) await this.disk.flush();
    })();
    return this.closed;
  }
}
