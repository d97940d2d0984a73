/**
 * Image locking for the `file` flavour, as QEMU locks its images: an open
 * file description takes an OFD lock (fcntl F_OFD_SETLK) over the whole
 * file, exclusive for a read-write open, shared for a read-only one. So a
 * second read-write open of the same file (in this process or another)
 * fails, as does a read-write open while anyone reads and a read-only open
 * while anyone writes. The lock lives as long as the descriptor: closing
 * the device (or the process dying) releases it.
 *
 * Without the native addon there is no way to take the lock from Node;
 * the device then opens unlocked and says so (`FileBlockDevice.lock`).
 */
import type { FileHandle } from 'node:fs/promises';
import { IoError, LockedError } from '../errors.js';
import type { StorageAddon } from '../native/storage.js';

/** What protects the open image. */
export type ImageLock = 'exclusive' | 'shared' | 'none';

export function lockImage(handle: FileHandle, path: string, readOnly: boolean, addon: StorageAddon | undefined): ImageLock {
  if (!addon) return 'none';
  let taken: boolean;
  try {
    taken = addon.ofdLock(handle.fd, !readOnly);
  } catch (err) {
    // The file system cannot lock (ENOLCK, EINVAL...): say so; the caller may opt out.
    throw new IoError(`lock ${path}: ${(err as Error).message}; pass { lock: false } to open it without locking`, { cause: err });
  }
  if (!taken) {
    const why = readOnly ? 'it is open read-write elsewhere' : 'it is open elsewhere';
    throw new LockedError(
      path,
      `${path}: cannot take the ${readOnly ? 'shared' : 'exclusive'} image lock: ${why} (another xenpv device, ` +
        'backend or QEMU); pass { lock: false } to open it without locking',
    );
  }
  return readOnly ? 'shared' : 'exclusive';
}
