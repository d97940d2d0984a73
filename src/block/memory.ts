/**
 * `memory` flavour: a BlockDevice over a byte array. Flush is a no-op (there
 * is nothing more durable to reach); discard zeroes the range; `resize()`
 * grows or shrinks the array and emits the resize event. Optionally backed
 * by a SharedArrayBuffer so another thread can see the bytes.
 *
 * Every operation completes synchronously inside the call (the returned
 * promise is already settled), so concurrent calls never interleave.
 */
import { InvalidArgumentError } from '../errors.js';
import { IoGate, LifecycleState } from './lifecycle.js';
import { ResizeNotifier } from './resize.js';
import type { BlockDevice, BlockInfo, ResizeListener } from './types.js';
import {
  checkConnected,
  checkSectorSize,
  validateDiscard,
  validateFlush,
  validateRead,
  validateWrite,
} from './validate.js';

export interface MemoryBlockDeviceOptions {
  /** Device size in bytes: a positive multiple of `sectorSize`. */
  readonly sizeBytes: number | bigint;
  /** Logical sector size; default 512. */
  readonly sectorSize?: number;
  /** Reported physical sector size; default `sectorSize`. */
  readonly physicalSectorSize?: number;
  /** Refuse writes and discards; default false. */
  readonly readOnly?: boolean;
  /** Back the device with a SharedArrayBuffer; default false. */
  readonly shared?: boolean;
}

function allocate(bytes: number, shared: boolean, field: string): Uint8Array {
  try {
    return shared ? new Uint8Array(new SharedArrayBuffer(bytes)) : new Uint8Array(bytes);
  } catch (err) {
    // RangeError: beyond the engine's typed-array limit or out of memory.
    throw new InvalidArgumentError(field, `cannot allocate ${bytes} bytes: ${(err as Error).message}`);
  }
}

function sizeToBytes(value: unknown, sectorSize: number, field: string): number {
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new InvalidArgumentError(field, `must be a number or bigint, got ${typeof value}`);
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(field, `must be an integer, got ${value}`);
  }
  const n = BigInt(value);
  if (n <= 0n) throw new InvalidArgumentError(field, `must be positive, got ${n}`);
  if (n % BigInt(sectorSize) !== 0n) {
    throw new InvalidArgumentError(field, `${n} is not a multiple of the sector size ${sectorSize}`);
  }
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError(field, `${n} is too large`);
  return Number(n);
}

export class MemoryBlockDevice implements BlockDevice {
  #bytes: Uint8Array;
  #info: BlockInfo;
  #shared: boolean;
  readonly #gate = new IoGate();
  readonly #resize = new ResizeNotifier();

  constructor(options: MemoryBlockDeviceOptions) {
    const sectorSize = checkSectorSize(options.sectorSize ?? 512);
    const physical = checkSectorSize(options.physicalSectorSize ?? sectorSize, 'physicalSectorSize');
    if (physical < sectorSize) {
      throw new InvalidArgumentError('physicalSectorSize', `${physical} is smaller than the sector size ${sectorSize}`);
    }
    const bytes = sizeToBytes(options.sizeBytes, sectorSize, 'sizeBytes');
    this.#shared = options.shared === true;
    this.#bytes = allocate(bytes, this.#shared, 'sizeBytes');
    this.#info = {
      readWrite: options.readOnly !== true,
      sectorSize,
      physicalSectorSize: physical,
      sizeSectors: BigInt(bytes / sectorSize),
      features: { flush: true, barrier: false, discard: true },
      discard: { granularity: sectorSize, alignment: 0, secure: false },
      media: 'disk',
      removable: false,
    };
  }

  /**
   * Wraps `bytes` without copying (writes go straight into it). Its length
   * must be a positive multiple of the sector size. `resize()` later
   * replaces the backing array (shared again if `bytes` was shared).
   */
  static fromBytes(
    bytes: Uint8Array,
    options: Omit<MemoryBlockDeviceOptions, 'sizeBytes' | 'shared'> = {},
  ): MemoryBlockDevice {
    const dev = new MemoryBlockDevice({ ...options, sizeBytes: options.sectorSize ?? 512 });
    const sectorSize = dev.#info.sectorSize;
    sizeToBytes(bytes.byteLength, sectorSize, 'bytes.byteLength');
    dev.#bytes = bytes;
    dev.#shared = bytes.buffer instanceof SharedArrayBuffer;
    dev.#info = { ...dev.#info, sizeSectors: BigInt(bytes.byteLength / sectorSize) };
    return dev;
  }

  /** The live backing array (replaced by `resize()`). */
  get bytes(): Uint8Array {
    return this.#bytes;
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
      let off = Number(req.sector) * this.#info.sectorSize;
      for (const b of req.buffers) {
        b.set(this.#bytes.subarray(off, off + b.byteLength));
        off += b.byteLength;
      }
    });
  }

  write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    return this.#gate.run(async () => {
      const req = validateWrite(this.#info, sector, buffers);
      let off = Number(req.sector) * this.#info.sectorSize;
      for (const b of req.buffers) {
        this.#bytes.set(b, off);
        off += b.byteLength;
      }
    });
  }

  flush(): Promise<void> {
    return this.#gate.run(async () => validateFlush(this.#info));
  }

  discard(sector: bigint, count: bigint): Promise<void> {
    return this.#gate.run(async () => {
      const req = validateDiscard(this.#info, sector, count);
      const size = this.#info.sectorSize;
      const start = Number(req.sector) * size;
      this.#bytes.fill(0, start, start + Number(req.count) * size);
    });
  }

  disconnect(): Promise<void> {
    return this.#gate.close(async () => undefined);
  }

  onResize(listener: ResizeListener): () => void {
    return this.#resize.on(listener);
  }

  /**
   * Changes the size to `newSizeSectors` (> 0): content up to the smaller
   * size is kept, new sectors read as zeros. Emits the resize event if the
   * size changed. Throws `disconnected` after disconnect.
   */
  resize(newSizeSectors: bigint): void {
    checkConnected(this.#gate.state === LifecycleState.Connected);
    if (typeof newSizeSectors !== 'bigint' || newSizeSectors <= 0n) {
      throw new InvalidArgumentError('newSizeSectors', `must be a positive bigint, got ${String(newSizeSectors)}`);
    }
    if (newSizeSectors === this.#info.sizeSectors) return;
    const bytes = sizeToBytes(newSizeSectors * BigInt(this.#info.sectorSize), this.#info.sectorSize, 'newSizeSectors');
    const next = allocate(bytes, this.#shared, 'newSizeSectors');
    next.set(this.#bytes.subarray(0, Math.min(bytes, this.#bytes.byteLength)));
    this.#bytes = next;
    this.#info = { ...this.#info, sizeSectors: newSizeSectors };
    this.#resize.emit(this.#info);
  }
}
