/**
 * How the `file` flavour discards a range, best first. Every method leaves
 * the range reading as zeros (the flavour's contract); they differ in
 * whether space is given back:
 *
 *   regular file   punch-hole  fallocate(PUNCH_HOLE|KEEP_SIZE): blocks freed
 *                  zero-fill   pwrite of zeros: nothing freed, and it needs
 *                              free space (ENOSPC on a full file system)
 *   block device   punch-hole  fallocate(PUNCH_HOLE|KEEP_SIZE) on the device:
 *                              the kernel's write-zeroes with unmap allowed
 *                              (a loop device punches its backing file)
 *                  zeroout     ioctl(BLKZEROOUT): the device zeroes (offloaded),
 *                              not necessarily unmapping
 *                  zero-fill   as above
 *
 * BLKDISCARD is not used: after it the content is unspecified, and this
 * flavour promises zeros. The method starts as the best the addon allows
 * and steps down (once, for good) when the host answers EOPNOTSUPP /
 * EINVAL / ENOTTY; `info().discard.method` always says which is in use.
 * Without the addon only zero-fill exists.
 */
import type { FileHandle } from 'node:fs/promises';
import { IoError } from '../errors.js';
import { NativeError } from '../native/errors.js';
import type { StorageAddon } from '../native/storage.js';
import { zeroFill } from './file-io.js';
import type { DiscardMethod } from './types.js';

/** errnos by which a host says "this method is not available here". */
const NOT_HERE = new Set([95 /* EOPNOTSUPP */, 22 /* EINVAL */, 25 /* ENOTTY */, 38 /* ENOSYS */]);

export class Discarder {
  #method: DiscardMethod;

  constructor(
    private readonly handle: FileHandle,
    private readonly blockDevice: boolean,
    private readonly addon: StorageAddon | undefined,
  ) {
    this.#method = addon ? 'punch-hole' : 'zero-fill';
  }

  get method(): DiscardMethod {
    return this.#method;
  }

  /** Discard `length` bytes at `position`; the range reads back as zeros. */
  async discard(position: number, length: number): Promise<void> {
    for (;;) {
      const method = this.#method;
      try {
        if (method === 'punch-hole') return this.addon!.punchHole(this.handle.fd, position, length);
        if (method === 'zeroout') return this.addon!.blkZeroout(this.handle.fd, position, length);
        return await zeroFill(this.handle, position, length);
      } catch (err) {
        if (method === 'zero-fill' || !(err instanceof NativeError)) throw err;
        // The host failed the I/O itself: an `io` error, as any other host failure.
        if (!NOT_HERE.has(err.errno ?? 0)) throw new IoError(err.message, { cause: err });
        // Step down; a concurrent discard may already have.
        if (this.#method === method) this.#method = method === 'punch-hole' && this.blockDevice ? 'zeroout' : 'zero-fill';
      }
    }
  }
}
