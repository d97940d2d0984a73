/**
 * Checked wrappers over src/native/storage.cc: hole punching, the block
 * device ioctls (BLKZEROOUT, BLKGETSIZE64) and OFD image locks.
 *
 * `storageAddon()` answers undefined when the addon cannot be loaded (not
 * built, wrong platform): callers fall back to what plain fs can do and say
 * so. Arguments are checked here (InvalidArgumentError, no system call); a
 * failing system call is a NativeError carrying `errno` and `syscall`.
 */
import { InvalidArgumentError } from '../errors.js';
import { NativeError } from './errors.js';
import { loadAddon } from './load.js';

/** What storage.cc adds to the addon. */
export interface StorageAddonRaw {
  punchHole(fd: number, offset: number, length: number): void;
  blkZeroout(fd: number, offset: number, length: number): void;
  blkGetSize64(fd: number): number;
  ofdLock(fd: number, exclusive: boolean): boolean;
}

/** Checked calls; every one may throw NativeError (with errno). */
export interface StorageAddon {
  punchHole(fd: number, offset: number, length: number): void;
  blkZeroout(fd: number, offset: number, length: number): void;
  blkGetSize64(fd: number): bigint;
  /** true: taken; false: another open file description holds a conflicting lock. */
  ofdLock(fd: number, exclusive: boolean): boolean;
}

function wrap(err: unknown, what: string): NativeError {
  const e = err as { message?: string; errno?: number; syscall?: string };
  return new NativeError(`${what}: ${e?.message ?? String(err)}`, { cause: err, errno: e?.errno, syscall: e?.syscall });
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new InvalidArgumentError('fd', `not a file descriptor: ${fd}`);
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError('offset', `must be a non-negative safe integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length <= 0) throw new InvalidArgumentError('length', `must be a positive safe integer, got ${length}`);
  if (!Number.isSafeInteger(offset + length)) throw new InvalidArgumentError('length', `range ${offset}+${length} is too large`);
}

let cached: { addon?: StorageAddon; reason?: string } | undefined;

/** The checked storage calls, or undefined (with `storageUnavailableReason()`) when the addon does not load. */
export function storageAddon(): StorageAddon | undefined {
  if (cached) return cached.addon;
  let raw: StorageAddonRaw;
  try {
    raw = loadAddon() as unknown as StorageAddonRaw;
    if (typeof raw.punchHole !== 'function') throw new NativeError('the loaded addon has no storage calls (rebuild it)');
  } catch (err) {
    cached = { reason: err instanceof Error ? err.message : String(err) };
    return undefined;
  }
  const ranged = (name: 'punchHole' | 'blkZeroout') => (fd: number, offset: number, length: number): void => {
    checkFd(fd);
    checkRange(offset, length);
    try {
      raw[name](fd, offset, length);
    } catch (err) {
      throw wrap(err, name);
    }
  };
  cached = {
    addon: {
      punchHole: ranged('punchHole'),
      blkZeroout: ranged('blkZeroout'),
      blkGetSize64(fd) {
        checkFd(fd);
        try {
          return BigInt(raw.blkGetSize64(fd));
        } catch (err) {
          throw wrap(err, 'blkGetSize64');
        }
      },
      ofdLock(fd, exclusive) {
        checkFd(fd);
        try {
          return raw.ofdLock(fd, exclusive === true);
        } catch (err) {
          throw wrap(err, 'ofdLock');
        }
      },
    },
  };
  return cached.addon;
}

/** Why `storageAddon()` is undefined (undefined while it loads fine or was not tried). */
export function storageUnavailableReason(): string | undefined {
  return cached?.reason;
}
