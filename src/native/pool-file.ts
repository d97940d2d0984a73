/**
 * The simulation's page pool as a shared file, so another process (a C peer,
 * a child Node process) sees the same pages at the same page indices.
 *
 * ```
 *  this process: memory.buffer                      pool file (memfd or /dev/shm)
 *  +---------+-------------------------------+      +-------------------------------+
 *  | scratch | pool page 0 | 1 | ... | n-1   | <==> | page 0 | 1 | ... | n-1         |
 *  +---------+-------------------------------+      +-------------------------------+
 *             ^ poolBase                              ^ file offset 0 = pool frame 0
 *  peer process: mmap(path, MAP_SHARED) -> frame i at peer_base + i * 4096
 * ```
 * Contract for peers: pool frame `i` (the `frame` of a v1 grant entry) is
 * the 4096 bytes at file offset `i * 4096`; the file is poolPages * 4096
 * bytes long. `path` names the file for another process: /proc/<pid>/fd/<fd>
 * for a memfd (valid while this process lives and the pool is open), or
 * the /dev/shm path.
 */
import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync, constants } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { PAGE_SIZE, type SharedLayout } from '../memory/layout.js';
import { mapPages, memfdCreate, unmapPages } from './index.js';
import { NativeError } from './errors.js';

export interface PoolFile {
  /** Descriptor of the file (owned by the PoolFile; closed by close()). */
  readonly fd: number;
  /** Path another process can open to map the same pages. */
  readonly path: string;
  /** Bytes: poolPages * 4096. */
  readonly size: number;
  readonly poolPages: number;
  /**
   * Unmap the file from the pool (the pool becomes private memory again,
   * keeping the current contents unless `keepContents` is false, in which
   * case it reads as zeros), close the descriptor and, for /dev/shm, unlink.
   * Idempotent.
   */
  close(opts?: { keepContents?: boolean }): void;
}

export interface PoolFileOptions {
  /** Back the pool with this /dev/shm (or any tmpfs) path instead of a memfd. Created exclusively, unlinked on close. */
  shmPath?: string;
  /** memfd name (shows in /proc/<pid>/maps). Default `xenpv-pool`. */
  name?: string;
}

function copyMemoryToFile(fd: number, view: Uint8Array): void {
  let done = 0;
  while (done < view.length) done += writeSync(fd, view, done, view.length - done, done);
}

function mapWhole(layout: SharedLayout, fd: number, path: string, size: number, unlinkPath?: string): PoolFile {
  let open = true;
  return {
    fd,
    path,
    size,
    poolPages: layout.poolPages,
    close(opts = {}) {
      if (!open) return;
      open = false;
      const keep = opts.keepContents ?? true;
      const saved = keep ? new Uint8Array(size) : undefined;
      try {
        if (saved) saved.set(new Uint8Array(layout.memory.buffer, layout.poolBase, size));
        unmapPages(layout.memory, layout, layout.poolBase, size);
        if (saved) new Uint8Array(layout.memory.buffer, layout.poolBase, size).set(saved);
      } finally {
        closeSync(fd);
        if (unlinkPath !== undefined) {
          try { unlinkSync(unlinkPath); } catch { /* already gone */ }
        }
      }
    },
  };
}

/**
 * Create a pool file of layout.poolPages * 4096 bytes holding the pool's
 * current contents, and map it over the whole pool of `layout.memory`.
 * From then on every store to the pool (Wasm or JS) is a store to the file.
 */
export function createPoolFile(layout: SharedLayout, opts: PoolFileOptions = {}): PoolFile {
  const size = layout.poolPages * PAGE_SIZE;
  let fd: number;
  let path: string;
  if (opts.shmPath !== undefined) {
    if (typeof opts.shmPath !== 'string' || opts.shmPath.length === 0) {
      throw new InvalidArgumentError('shmPath', 'must be a non-empty path');
    }
    try {
      fd = openSync(opts.shmPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      ftruncateSync(fd, size);
    } catch (cause) {
      throw new NativeError(`cannot create pool file ${opts.shmPath}: ${(cause as Error).message}`, { cause });
    }
    path = opts.shmPath;
  } else {
    fd = memfdCreate(opts.name ?? 'xenpv-pool', size);
    path = `/proc/${process.pid}/fd/${fd}`;
  }
  try {
    copyMemoryToFile(fd, new Uint8Array(layout.memory.buffer, layout.poolBase, size));
    mapPages(layout.memory, layout, layout.poolBase, fd, 0, size);
  } catch (err) {
    closeSync(fd);
    if (opts.shmPath !== undefined) unlinkSync(opts.shmPath);
    throw err;
  }
  return mapWhole(layout, fd, path, size, opts.shmPath);
}

/**
 * Map an existing pool file (created by another process) over the pool of
 * this process's `layout.memory`: the peer's page i becomes our page i.
 * The file must be exactly layout.poolPages * 4096 bytes. close() unmaps
 * and closes but never unlinks.
 */
export function attachPoolFile(layout: SharedLayout, path: string): PoolFile {
  const size = layout.poolPages * PAGE_SIZE;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR);
  } catch (cause) {
    throw new InvalidArgumentError('path', `cannot open pool file ${path}: ${(cause as Error).message}`);
  }
  try {
    mapPages(layout.memory, layout, layout.poolBase, fd, 0, size);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return mapWhole(layout, fd, path, size);
}
