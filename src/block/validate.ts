/**
 * Argument checks shared by every BlockDevice flavour (memory, file, and
 * blkfront). Each check throws the typed error the BlockDevice contract
 * promises (see types.ts for the order); callers run them inside their async
 * methods so the error becomes a rejection.
 *
 * The `validate*` functions return a snapshot of the request: a copy of the
 * buffers array (so a caller mutating its array mid-flight cannot change
 * what is transferred) plus the totals a driver needs.
 */
import {
  DisconnectedError,
  InvalidArgumentError,
  OutOfRangeError,
  ReadOnlyError,
  UnsupportedError,
} from '../errors.js';
import type { BlockInfo } from './types.js';

/** Smallest and largest logical sector sizes we accept (powers of two). */
export const MIN_SECTOR_SIZE = 512;
export const MAX_SECTOR_SIZE = 65536;

/** A read or write, checked. */
export interface IoRequest {
  readonly sector: bigint;
  /** A copy of the caller's array (same Uint8Array objects). */
  readonly buffers: readonly Uint8Array[];
  /** Total length in sectors. */
  readonly sectors: bigint;
  /** Total length in bytes. */
  readonly bytes: number;
}

/** A discard, checked. */
export interface DiscardRequest {
  readonly sector: bigint;
  readonly count: bigint;
}

// The %TypedArray%.prototype[@@toStringTag] getter returns the internal type
// name: unlike `instanceof` it works across realms (worker_threads, vm) and
// cannot be faked by a plain object. Buffer reports 'Uint8Array'.
const typedArrayTag = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype) as object,
  Symbol.toStringTag,
)!.get!;

/** True iff `value` is a real Uint8Array (or Buffer), from any realm. */
export function isUint8Array(value: unknown): value is Uint8Array {
  return ArrayBuffer.isView(value) && typedArrayTag.call(value) === 'Uint8Array';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return (typedArrayTag.call(value) as string | undefined) ?? 'DataView';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Rejects unless the device is still connected. */
export function checkConnected(connected: boolean): void {
  if (!connected) throw new DisconnectedError();
}

/** A logical sector size: a power of two in [512, 65536]. */
export function checkSectorSize(value: unknown, field = 'sectorSize'): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidArgumentError(field, `must be an integer, got ${describe(value)}`);
  }
  if (value < MIN_SECTOR_SIZE || value > MAX_SECTOR_SIZE || (value & (value - 1)) !== 0) {
    throw new InvalidArgumentError(field, `must be a power of two in [${MIN_SECTOR_SIZE}, ${MAX_SECTOR_SIZE}], got ${value}`);
  }
  return value;
}

/** A sector number: a non-negative bigint. */
export function checkSector(value: unknown, field = 'sector'): bigint {
  if (typeof value !== 'bigint') throw new InvalidArgumentError(field, `must be a bigint, got ${describe(value)}`);
  if (value < 0n) throw new InvalidArgumentError(field, `must be non-negative, got ${value}`);
  return value;
}

/** A sector count: a positive bigint. */
export function checkCount(value: unknown, field = 'count'): bigint {
  if (typeof value !== 'bigint') throw new InvalidArgumentError(field, `must be a bigint, got ${describe(value)}`);
  if (value <= 0n) throw new InvalidArgumentError(field, `must be positive, got ${value}`);
  return value;
}

/**
 * A non-empty array of non-empty Uint8Arrays, each a whole number of
 * sectors. Returns a copy of the array and the total byte length.
 */
export function checkBuffers(
  value: unknown,
  sectorSize: number,
  field = 'buffers',
): { buffers: Uint8Array[]; bytes: number } {
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, `must be an array of Uint8Array, got ${describe(value)}`);
  if (value.length === 0) throw new InvalidArgumentError(field, 'must hold at least one buffer');
  const buffers: Uint8Array[] = new Array(value.length);
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const b: unknown = value[i];
    const name = `${field}[${i}]`;
    if (!isUint8Array(b)) throw new InvalidArgumentError(name, `must be a Uint8Array, got ${describe(b)}`);
    if (b.byteLength === 0) throw new InvalidArgumentError(name, 'is empty (or its ArrayBuffer was detached)');
    if (b.byteLength % sectorSize !== 0) {
      throw new InvalidArgumentError(name, `length ${b.byteLength} is not a multiple of the sector size ${sectorSize}`);
    }
    buffers[i] = b;
    bytes += b.byteLength;
  }
  return { buffers, bytes };
}

/** `[sector, sector + count)` must lie inside a device of `sizeSectors`. */
export function checkRange(sector: bigint, count: bigint, sizeSectors: bigint): void {
  if (sector + count > sizeSectors) {
    throw new OutOfRangeError(
      `sectors [${sector}, ${sector + count}) are outside the device (${sizeSectors} sectors)`,
    );
  }
}

/** Writes and discards need a read-write device. */
export function checkWritable(info: BlockInfo): void {
  if (!info.readWrite) throw new ReadOnlyError();
}

function checkIo(info: BlockInfo, sector: unknown, buffers: unknown): IoRequest {
  const s = checkSector(sector);
  const checked = checkBuffers(buffers, info.sectorSize);
  return {
    sector: s,
    buffers: checked.buffers,
    sectors: BigInt(checked.bytes / info.sectorSize),
    bytes: checked.bytes,
  };
}

/** Everything `read(sector, buffers)` needs checked, after `checkConnected`. */
export function validateRead(info: BlockInfo, sector: unknown, buffers: unknown): IoRequest {
  const req = checkIo(info, sector, buffers);
  checkRange(req.sector, req.sectors, info.sizeSectors);
  return req;
}

/** Everything `write(sector, buffers)` needs checked, after `checkConnected`. */
export function validateWrite(info: BlockInfo, sector: unknown, buffers: unknown): IoRequest {
  const req = checkIo(info, sector, buffers);
  checkWritable(info);
  checkRange(req.sector, req.sectors, info.sizeSectors);
  return req;
}

/** Everything `discard(sector, count)` needs checked, after `checkConnected`. */
export function validateDiscard(info: BlockInfo, sector: unknown, count: unknown): DiscardRequest {
  const s = checkSector(sector);
  const c = checkCount(count);
  if (!info.features.discard) throw new UnsupportedError('discard is not supported by this device');
  checkWritable(info);
  checkRange(s, c, info.sizeSectors);
  return { sector: s, count: c };
}

/** `flush()` needs the feature, after `checkConnected`. */
export function validateFlush(info: BlockInfo): void {
  if (!info.features.flush) throw new UnsupportedError('flush is not supported by this device');
}
