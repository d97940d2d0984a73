/**
 * Map file pages over the page pool of a shared WebAssembly.Memory.
 *
 * ```
 *  memory.buffer (one contiguous mapping, base = BackingStore::Data())
 *  +----------+---------------------------------------------------------+
 *  | scratch  | page pool                                               |
 *  |          |  poolBase      offset           offset+length           |
 *  |          |  |             +----------------+                       |
 *  |          |  |             | MAP_SHARED |   |  <- mmap(MAP_FIXED)   |
 *  |          |  |             | MAP_FIXED  |   |     of fd @ fileOffset|
 *  +----------+--+-------------+----------------+-----------------------+
 *                              ^ Wasm loads/stores here hit the file's
 *                                pages; another mapper of the file sees them
 * ```
 * Every argument is checked here, before the addon is called: a refusal is
 * an InvalidArgumentError naming the field (code `invalid-argument`) and
 * nothing is mapped. A failing system call is a NativeError (code `native`).
 */
import { fstatSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { PAGE_SIZE } from '../memory/layout.js';
import { NativeError } from './errors.js';
import { loadAddon } from './load.js';

export { NativeError, ForeignEvtchnError } from './errors.js';
export { loadAddon, packageRoot, type NativeAddon } from './load.js';

/** The part of a SharedLayout the mapper needs. */
export interface PoolRegion {
  readonly poolBase: number;
  readonly poolPages: number;
}

function wrapNative(err: unknown, what: string): NativeError {
  const e = err as { message?: string; errno?: number; syscall?: string };
  return new NativeError(`${what}: ${e?.message ?? String(err)}`, {
    cause: err,
    errno: e?.errno,
    syscall: e?.syscall,
  });
}

function sharedBuffer(memory: WebAssembly.Memory): SharedArrayBuffer {
  const buffer = (memory as { buffer?: unknown } | null)?.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw new InvalidArgumentError('memory', 'must be a shared WebAssembly.Memory');
  }
  return buffer;
}

function checkInteger(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(field, `must be a non-negative integer, got ${value}`);
  }
}

function checkAligned(field: string, value: number): void {
  checkInteger(field, value);
  if (value % PAGE_SIZE !== 0) {
    throw new InvalidArgumentError(field, `must be a multiple of ${PAGE_SIZE}, got ${value}`);
  }
}

/** Check `[offset, offset+length)` is a page-aligned, non-empty part of the pool and of the memory. */
function checkRegion(buffer: SharedArrayBuffer, layout: PoolRegion, offset: number, length: number): void {
  checkAligned('offset', offset);
  checkAligned('length', length);
  if (length === 0) throw new InvalidArgumentError('length', 'must be > 0');
  const poolEnd = layout.poolBase + layout.poolPages * PAGE_SIZE;
  if (offset < layout.poolBase || offset >= poolEnd) {
    throw new InvalidArgumentError(
      'offset',
      `${offset} is outside the page pool [${layout.poolBase}, ${poolEnd})`,
    );
  }
  if (offset + length > buffer.byteLength) {
    throw new InvalidArgumentError(
      'length',
      `${length} bytes at ${offset} run past the end of the memory (${buffer.byteLength} bytes)`,
    );
  }
  if (offset + length > poolEnd) {
    throw new InvalidArgumentError('length', `${length} bytes at ${offset} run past the end of the page pool (${poolEnd})`);
  }
}

/**
 * mmap `length` bytes of `fd` at `fileOffset` over `memory` at byte `offset`
 * (MAP_SHARED | MAP_FIXED). `offset` must lie in the layout's page pool; all
 * of offset, fileOffset and length page-aligned; length > 0 and inside the
 * pool and the memory; `fd` open; a regular file must be at least
 * fileOffset + length bytes long (touching a page past EOF would SIGBUS).
 */
export function mapPages(
  memory: WebAssembly.Memory,
  layout: PoolRegion,
  offset: number,
  fd: number,
  fileOffset: number,
  length: number,
): void {
  const buffer = sharedBuffer(memory);
  checkRegion(buffer, layout, offset, length);
  checkAligned('fileOffset', fileOffset);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new InvalidArgumentError('fd', `not a file descriptor: ${fd}`);
  }
  let size: number;
  let regular: boolean;
  try {
    const st = fstatSync(fd);
    size = st.size;
    regular = st.isFile();
  } catch (cause) {
    throw new InvalidArgumentError('fd', `${fd} is not an open descriptor (${(cause as Error).message})`);
  }
  if (regular && fileOffset + length > size) {
    throw new InvalidArgumentError(
      'length',
      `file of fd ${fd} has ${size} bytes, mapping needs ${fileOffset + length}`,
    );
  }
  const addon = loadAddon();
  try {
    addon.mapIntoMemory(buffer, offset, fd, fileOffset, length);
  } catch (err) {
    throw wrapNative(err, 'mapIntoMemory');
  }
}

/** Replace `[offset, offset+length)` of the pool with fresh private zero pages. Same checks as mapPages. */
export function unmapPages(memory: WebAssembly.Memory, layout: PoolRegion, offset: number, length: number): void {
  const buffer = sharedBuffer(memory);
  checkRegion(buffer, layout, offset, length);
  const addon = loadAddon();
  try {
    addon.unmapFromMemory(buffer, offset, length);
  } catch (err) {
    throw wrapNative(err, 'unmapFromMemory');
  }
}

/**
 * A new anonymous shared file (memfd_create + ftruncate) of `size` bytes.
 * The descriptor is not close-on-exec; peers open it as /proc/<pid>/fd/<fd>.
 * Close it with fs.closeSync.
 */
export function memfdCreate(name: string, size: number): number {
  if (typeof name !== 'string' || name.length === 0 || name.length > 249 || name.includes('\0')) {
    throw new InvalidArgumentError('name', 'must be a non-empty string of at most 249 characters without NUL');
  }
  checkInteger('size', size);
  const addon = loadAddon();
  try {
    return addon.memfdCreate(name, size);
  } catch (err) {
    throw wrapNative(err, 'memfdCreate');
  }
}
