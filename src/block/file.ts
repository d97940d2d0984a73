/**
 * `file` flavour: a BlockDevice over a host file or host block device,
 * through an fs.promises FileHandle with positional reads and writes
 * (readv/writev for scatter/gather; concurrent calls are safe because no
 * call uses the file position).
 *
 * - flush(): fdatasync, one at a time. A failed fdatasync fails the device
 *   for good (sticky `io` error on every later call until disconnect): the
 *   kernel may have dropped the dirty pages, so later flushes could succeed
 *   over lost data (fsyncgate). See README "Storage rules".
 * - discard(): punches a hole (or zeroes a block device); zero-fill only
 *   without the addon or host support (file-discard.ts). Reads back zeros.
 * - Locking: exclusive OFD lock for read-write, shared for read-only
 *   (file-lock.ts); `lock: false` opts out.
 * - Size: a regular file's size from fstat, rounded down to whole sectors
 *   (a trailing partial sector is not addressable). A block device's size
 *   from BLKGETSIZE64 (addon), else /sys/dev/block/MAJ:MIN/size.
 * - readSync()/writeSync(): the same transfers done in the calling thread
 *   (blkback's SyncBlockIo, src/blkback/sync-io.ts), for a caller that owns
 *   its thread; not part of the BlockDevice contract.
 * - Resize: `refreshSize()` re-reads the size (after the file grew or
 *   shrank behind our back) and emits the resize event if it changed;
 *   `resize(n)` truncates or extends a regular file itself.
 */
import { open as fsOpen } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { InvalidArgumentError, IoError, ReadOnlyError, UnsupportedError } from '../errors.js';
import { storageAddon, type StorageAddon } from '../native/storage.js';
import { Discarder } from './file-discard.js';
import { blockDeviceSize, readFully, readFullySync, toIoError, writeFully, writeFullySync } from './file-io.js';
import { lockImage, type ImageLock } from './file-lock.js';
import { IoGate, LifecycleState } from './lifecycle.js';
import { ResizeNotifier } from './resize.js';
import type { BlockDevice, BlockInfo, ResizeListener } from './types.js';
import { checkConnected, checkSectorSize, validateDiscard, validateFlush, validateRead, validateWrite } from './validate.js';

export interface FileBlockDeviceOptions {
  /** Open read-only (writes and discards refused); default false. */
  readonly readOnly?: boolean;
  /**
   * If the file does not exist, create it with this size (a positive
   * multiple of `sectorSize`, sparse). An existing file is left as it is.
   */
  readonly create?: { readonly sizeBytes: number | bigint };
  /** Logical sector size; default 512. */
  readonly sectorSize?: number;
  /** Reported physical sector size; default `sectorSize`. */
  readonly physicalSectorSize?: number;
  /**
   * Take the image lock (exclusive read-write, shared read-only); default
   * true. `false` opens without it: the caller vouches nobody else writes.
   */
  readonly lock?: boolean;
}

/** What the path turned out to be. */
export enum FileKind {
  Regular = 'regular',
  BlockDevice = 'block-device',
}

function checkCreateSize(value: unknown, sectorSize: number): number {
  const field = 'create.sizeBytes';
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new InvalidArgumentError(field, `must be a number or bigint, got ${typeof value}`);
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new InvalidArgumentError(field, `must be an integer, got ${value}`);
  const n = BigInt(value);
  if (n <= 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError(field, `must be positive and safe, got ${n}`);
  if (n % BigInt(sectorSize) !== 0n) throw new InvalidArgumentError(field, `${n} is not a multiple of the sector size ${sectorSize}`);
  return Number(n);
}

/** Creates `path` with `sizeBytes` unless it exists. */
async function createIfMissing(path: string, sizeBytes: number): Promise<void> {
  let h: FileHandle;
  try {
    h = await fsOpen(path, 'wx'); // O_CREAT|O_EXCL: never truncates an existing file
  } catch (err) {
    if ((err as { code?: unknown }).code === 'EEXIST') return;
    throw toIoError(err, `create ${path}`);
  }
  try {
    await h.truncate(sizeBytes);
  } catch (err) {
    throw toIoError(err, `size ${path} to ${sizeBytes} bytes`);
  } finally {
    await h.close();
  }
}

export class FileBlockDevice implements BlockDevice {
  readonly path: string;
  readonly kind: FileKind;
  /** The image lock this open holds (`none`: opted out, or no addon to take it with). */
  readonly lock: ImageLock;
  readonly #handle: FileHandle;
  #info: BlockInfo;
  readonly #gate = new IoGate();
  readonly #resize = new ResizeNotifier();
  readonly #discarder: Discarder;
  /** The last flush: fdatasyncs run one after another (see flush()). */
  #flushing: Promise<void> = Promise.resolve();

  private constructor(path: string, kind: FileKind, handle: FileHandle, info: BlockInfo, lock: ImageLock, addon: StorageAddon | undefined) {
    this.path = path;
    this.kind = kind;
    this.lock = lock;
    this.#handle = handle;
    this.#discarder = new Discarder(handle, kind === FileKind.BlockDevice, addon);
    this.#info = { ...info, discard: { ...info.discard!, method: this.#discarder.method } };
  }

  /** Opens `path` (a regular file or block device). Rejects with `invalid-argument` or `io`. */
  static async open(path: string, options: FileBlockDeviceOptions = {}): Promise<FileBlockDevice> {
    if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
      throw new InvalidArgumentError('path', 'must be a non-empty string without NUL');
    }
    const sectorSize = checkSectorSize(options.sectorSize ?? 512);
    const physical = checkSectorSize(options.physicalSectorSize ?? sectorSize, 'physicalSectorSize');
    if (physical < sectorSize) {
      throw new InvalidArgumentError('physicalSectorSize', `${physical} is smaller than the sector size ${sectorSize}`);
    }
    if (options.create !== undefined) await createIfMissing(path, checkCreateSize(options.create.sizeBytes, sectorSize));

    const readOnly = options.readOnly === true;
    let handle: FileHandle;
    try {
      handle = await fsOpen(path, readOnly ? 'r' : 'r+');
    } catch (err) {
      throw toIoError(err, `open ${path}`);
    }
    return FileBlockDevice.#adopt(handle, path, sectorSize, physical, readOnly, options.lock !== false);
  }

  /**
   * A device over a handle someone else opened (a privileged parent passing
   * a descriptor to an unprivileged child, say). `path` only names it in
   * messages. The device owns the handle from here: it is closed on
   * disconnect, or now if the handle is not a file or block device.
   */
  static async fromHandle(handle: FileHandle, path: string, options: Omit<FileBlockDeviceOptions, 'create'> = {}): Promise<FileBlockDevice> {
    let sectorSize: number;
    let physical: number;
    try {
      sectorSize = checkSectorSize(options.sectorSize ?? 512);
      physical = checkSectorSize(options.physicalSectorSize ?? sectorSize, 'physicalSectorSize');
      if (physical < sectorSize) {
        throw new InvalidArgumentError('physicalSectorSize', `${physical} is smaller than the sector size ${sectorSize}`);
      }
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    return FileBlockDevice.#adopt(handle, path, sectorSize, physical, options.readOnly === true, options.lock !== false);
  }

  static async #adopt(handle: FileHandle, path: string, sectorSize: number, physical: number, readOnly: boolean, wantLock: boolean): Promise<FileBlockDevice> {
    const addon = storageAddon();
    try {
      const lock = wantLock ? lockImage(handle, path, readOnly, addon) : 'none';
      const { kind, bytes } = await FileBlockDevice.#measure(handle, path, addon);
      const info: BlockInfo = {
        readWrite: !readOnly,
        sectorSize,
        physicalSectorSize: physical,
        sizeSectors: bytes / BigInt(sectorSize),
        features: { flush: true, barrier: false, discard: true },
        discard: { granularity: sectorSize, alignment: 0, secure: false },
        media: 'disk',
        removable: false,
      };
      return new FileBlockDevice(path, kind, handle, info, lock, addon);
    } catch (err) {
      await handle.close().catch(() => undefined); // the locking or measuring error is the one to report
      throw err;
    }
  }

  static async #measure(handle: FileHandle, path: string, addon: StorageAddon | undefined): Promise<{ kind: FileKind; bytes: bigint }> {
    let st;
    try {
      st = await handle.stat({ bigint: true });
    } catch (err) {
      throw toIoError(err, `fstat ${path}`);
    }
    if (st.isFile()) return { kind: FileKind.Regular, bytes: st.size };
    if (st.isBlockDevice()) {
      if (!addon) return { kind: FileKind.BlockDevice, bytes: await blockDeviceSize(st.rdev) };
      try {
        return { kind: FileKind.BlockDevice, bytes: addon.blkGetSize64(handle.fd) };
      } catch (err) {
        throw toIoError(err, `size of block device ${path}`);
      }
    }
    throw new InvalidArgumentError('path', `${path} is neither a regular file nor a block device`);
  }

  get state(): LifecycleState {
    return this.#gate.state;
  }

  info(): BlockInfo {
    return this.#info;
  }

  read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    return this.#gate.run(async () => {
      const req = validateRead(this.#info, sector, buffers);
      const pos = Number(req.sector) * this.#info.sectorSize;
      try {
        await readFully(this.#handle, req.buffers, pos);
      } catch (err) {
        throw toIoError(err, `read ${this.path} at byte ${pos}`);
      }
    });
  }

  write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    return this.#gate.run(async () => {
      const req = validateWrite(this.#info, sector, buffers);
      const pos = Number(req.sector) * this.#info.sectorSize;
      try {
        await writeFully(this.#handle, req.buffers, pos);
      } catch (err) {
        throw toIoError(err, `write ${this.path} at byte ${pos}`);
      }
    });
  }

  /**
   * `read` done in the calling thread: validated and admitted the same way
   * (throws `disconnected`, the sticky failure, or what validation throws),
   * then pread/preadv until done; a host error throws as `io`. It finishes
   * before returning, so disconnect() never has it in flight.
   */
  readSync(sector: bigint, buffers: Uint8Array[]): void {
    this.#admitSync();
    const req = validateRead(this.#info, sector, buffers);
    const pos = Number(req.sector) * this.#info.sectorSize;
    try {
      readFullySync(this.#handle, req.buffers, pos);
    } catch (err) {
      throw toIoError(err, `read ${this.path} at byte ${pos}`);
    }
  }

  /** `write` done in the calling thread (as readSync). */
  writeSync(sector: bigint, buffers: Uint8Array[]): void {
    this.#admitSync();
    const req = validateWrite(this.#info, sector, buffers);
    const pos = Number(req.sector) * this.#info.sectorSize;
    try {
      writeFullySync(this.#handle, req.buffers, pos);
    } catch (err) {
      throw toIoError(err, `write ${this.path} at byte ${pos}`);
    }
  }

  /** What IoGate.run refuses, refused synchronously. */
  #admitSync(): void {
    if (this.#gate.state === LifecycleState.Failed && this.#gate.failure) throw this.#gate.failure;
    checkConnected(this.#gate.state === LifecycleState.Connected);
  }

  /**
   * fdatasync. Flushes are serialised: each fdatasync starts after the one
   * before it finished, so a flush that resolves was not overtaken by a
   * concurrent one that failed. A failure fails the device (sticky).
   */
  flush(): Promise<void> {
    return this.#gate.run(() => {
      validateFlush(this.#info);
      const run = this.#flushing.then(() => this.#datasync());
      this.#flushing = run.catch(() => undefined);
      return run;
    });
  }

  async #datasync(): Promise<void> {
    // A flush queued behind the one that failed reports that failure.
    if (this.#gate.failure) throw this.#gate.failure;
    try {
      await this.#handle.datasync();
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      const failure = new IoError(
        `fdatasync ${this.path} failed (${typeof code === 'string' ? code : String(err)}): writes acknowledged ` +
          'since the last successful flush may be lost; the device is failed until it is disconnected and reopened',
        { cause: err },
      );
      this.#gate.fail(failure);
      throw failure;
    }
  }

  discard(sector: bigint, count: bigint): Promise<void> {
    return this.#gate.run(async () => {
      const req = validateDiscard(this.#info, sector, count);
      const size = this.#info.sectorSize;
      const pos = Number(req.sector) * size;
      try {
        await this.#discarder.discard(pos, Number(req.count) * size);
      } catch (err) {
        throw toIoError(err, `discard (${this.#discarder.method}) ${this.path} at byte ${pos}`);
      } finally {
        // The method may have stepped down: info() says which one is in use.
        if (this.#info.discard!.method !== this.#discarder.method) {
          this.#info = { ...this.#info, discard: { ...this.#info.discard!, method: this.#discarder.method } };
        }
      }
    });
  }

  disconnect(): Promise<void> {
    return this.#gate.close(async () => {
      try {
        await this.#handle.close();
      } catch (err) {
        throw toIoError(err, `close ${this.path}`);
      }
    });
  }

  onResize(listener: ResizeListener): () => void {
    return this.#resize.on(listener);
  }

  /**
   * Re-reads the size of the file or block device; if it changed, updates
   * `info()` and emits the resize event. Resolves to the (new) info.
   */
  refreshSize(): Promise<BlockInfo> {
    return this.#gate.run(async () => {
      const { bytes } = await FileBlockDevice.#measure(this.#handle, this.path, storageAddon());
      this.#setSize(bytes / BigInt(this.#info.sectorSize));
      return this.#info;
    });
  }

  /**
   * Truncates or extends a regular file to `newSizeSectors` (> 0) sectors
   * (new sectors read as zeros), then updates `info()` and emits the resize
   * event. `read-only` on a read-only device, `unsupported` on a block device.
   */
  resize(newSizeSectors: bigint): Promise<BlockInfo> {
    return this.#gate.run(async () => {
      if (typeof newSizeSectors !== 'bigint' || newSizeSectors <= 0n) {
        throw new InvalidArgumentError('newSizeSectors', `must be a positive bigint, got ${String(newSizeSectors)}`);
      }
      if (!this.#info.readWrite) throw new ReadOnlyError();
      if (this.kind !== FileKind.Regular) throw new UnsupportedError('a host block device cannot be resized');
      const bytes = newSizeSectors * BigInt(this.#info.sectorSize);
      if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError('newSizeSectors', `${newSizeSectors} is too large`);
      try {
        await this.#handle.truncate(Number(bytes));
      } catch (err) {
        throw toIoError(err, `truncate ${this.path} to ${bytes} bytes`);
      }
      this.#setSize(newSizeSectors);
      return this.#info;
    });
  }

  #setSize(sizeSectors: bigint): void {
    if (sizeSectors === this.#info.sizeSectors) return;
    this.#info = { ...this.#info, sizeSectors };
    this.#resize.emit(this.#info);
  }
}
