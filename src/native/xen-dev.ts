/**
 * Checked wrappers over the /dev/xen ioctls of src/native/xen-dev.cc.
 *
 * Every argument is checked here before the addon is called: a refusal is an
 * InvalidArgumentError naming the field, and no system call is made. A
 * failing ioctl or mmap is a NativeError carrying `errno` and `syscall`.
 *
 * ```
 *  struct ioctl_gntalloc_alloc_gref (gntalloc.h), 24 + 4*(count-1) bytes
 *  0        2        4                8                16              20
 *  +--------+--------+----------------+----------------+---------------+---
 *  | domid  | flags  | count          | index (out)    | gref_ids[0]   | ...
 *  | u16    | u16    | u32            | u64            | u32 (out)     |
 *  +--------+--------+----------------+----------------+---------------+---
 *
 *  struct ioctl_gntdev_map_grant_ref (gntdev.h), 24 + 8*(count-1) bytes
 *  0                4                8                16       20       24
 *  +----------------+----------------+----------------+--------+--------+---
 *  | count u32      | pad u32        | index u64 (out)| domid  | ref    | ...
 *  |                |                |                | u32    | u32    |
 *  +----------------+----------------+----------------+--------+--------+---
 *                                                      refs[0] (ioctl_gntdev_grant_ref)
 * ```
 * The layouts above are checked against the headers by test/linux-abi.test.ts.
 */
import { fstatSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { PAGE_SIZE } from '../memory/layout.js';
import { NativeError } from './errors.js';
import type { PoolRegion } from './index.js';
import { loadAddon } from './load.js';

/** What xen-dev.cc adds to the addon. */
export interface XenDevAddon {
  evtchnBindUnboundPort(fd: number, remoteDomain: number): number;
  evtchnBindInterdomain(fd: number, remoteDomain: number, remotePort: number): number;
  evtchnUnbind(fd: number, port: number): void;
  evtchnNotify(fd: number, port: number): void;
  evtchnReset(fd: number): void;
  gntallocAllocGref(fd: number, domid: number, flags: number, count: number): { index: number; grefs: number[] };
  gntallocDeallocGref(fd: number, index: number, count: number): void;
  gntallocSetUnmapNotify(fd: number, index: number, action: number, port: number): void;
  gntdevMapGrantRef(fd: number, domid: number, refs: number[]): number;
  gntdevUnmapGrantRef(fd: number, index: number, count: number): void;
  mapIntoMemory(buffer: SharedArrayBuffer, offset: number, fd: number, fileOffset: number, length: number, readOnly: boolean): void;
  xenDevAbi(): Record<string, number>;
}

/** gntalloc.h: the peer may write the pages. */
export const GNTALLOC_FLAG_WRITABLE = 1;
/** gntalloc.h / gntdev.h unmap-notify actions. */
export const UNMAP_NOTIFY_CLEAR_BYTE = 0x1;
export const UNMAP_NOTIFY_SEND_EVENT = 0x2;
/** Largest number of grants one call handles (gntdev's default limit). */
export const MAX_GRANTS_PER_CALL = 65536;
const DOMID_MAX = 0xffff;
const U32_MAX = 0xffffffff;

function addon(): XenDevAddon {
  return loadAddon() as unknown as XenDevAddon;
}

function call<T>(what: string, f: (a: XenDevAddon) => T): T {
  const a = addon();
  try {
    return f(a);
  } catch (err) {
    const e = err as { message?: string; errno?: number; syscall?: string };
    throw new NativeError(`${what}: ${e?.message ?? String(err)}`, { cause: err, errno: e?.errno, syscall: e?.syscall });
  }
}

function checkUint(field: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new InvalidArgumentError(field, `must be an integer in [0, ${max}], got ${value}`);
  }
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new InvalidArgumentError('fd', `not a file descriptor: ${fd}`);
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_GRANTS_PER_CALL) {
    throw new InvalidArgumentError('count', `must be an integer in [1, ${MAX_GRANTS_PER_CALL}], got ${count}`);
  }
}

function checkIndex(index: number): void {
  checkUint('index', index, Number.MAX_SAFE_INTEGER);
  if (index % PAGE_SIZE !== 0) throw new InvalidArgumentError('index', `must be a multiple of ${PAGE_SIZE}, got ${index}`);
}

// ------------------------------------------------------------------ evtchn

/** IOCTL_EVTCHN_BIND_UNBOUND_PORT: a new local port `remoteDomain` may bind to. */
export function evtchnBindUnboundPort(fd: number, remoteDomain: number): number {
  checkFd(fd);
  checkUint('remoteDomain', remoteDomain, DOMID_MAX);
  return call('evtchnBindUnboundPort', (a) => a.evtchnBindUnboundPort(fd, remoteDomain));
}

/** IOCTL_EVTCHN_BIND_INTERDOMAIN: a local port connected to `remotePort` of `remoteDomain`. */
export function evtchnBindInterdomain(fd: number, remoteDomain: number, remotePort: number): number {
  checkFd(fd);
  checkUint('remoteDomain', remoteDomain, DOMID_MAX);
  checkUint('remotePort', remotePort, U32_MAX);
  return call('evtchnBindInterdomain', (a) => a.evtchnBindInterdomain(fd, remoteDomain, remotePort));
}

/** IOCTL_EVTCHN_UNBIND. */
export function evtchnUnbind(fd: number, port: number): void {
  checkFd(fd);
  checkUint('port', port, U32_MAX);
  call('evtchnUnbind', (a) => a.evtchnUnbind(fd, port));
}

/** IOCTL_EVTCHN_NOTIFY. */
export function evtchnNotify(fd: number, port: number): void {
  checkFd(fd);
  checkUint('port', port, U32_MAX);
  call('evtchnNotify', (a) => a.evtchnNotify(fd, port));
}

/** IOCTL_EVTCHN_RESET: empty the pending-port ring and clear its overflow. */
export function evtchnReset(fd: number): void {
  checkFd(fd);
  call('evtchnReset', (a) => a.evtchnReset(fd));
}

// ---------------------------------------------------------------- gntalloc

/** IOCTL_GNTALLOC_ALLOC_GREF: `count` zeroed pages granted to `domid`; mmap the fd at `index` to reach them. */
export function gntallocAllocGref(fd: number, domid: number, count: number, writable: boolean): { index: number; grefs: number[] } {
  checkFd(fd);
  checkUint('domid', domid, DOMID_MAX);
  checkCount(count);
  const out = call('gntallocAllocGref', (a) => a.gntallocAllocGref(fd, domid, writable ? GNTALLOC_FLAG_WRITABLE : 0, count));
  if (out.grefs.length !== count || !Number.isSafeInteger(out.index) || out.index % PAGE_SIZE !== 0) {
    throw new NativeError(`gntallocAllocGref: kernel returned index ${out.index} and ${out.grefs.length} grefs for ${count} pages`);
  }
  return out;
}

/** IOCTL_GNTALLOC_DEALLOC_GREF: the grants end once every mapping (ours and the peer's) is gone. */
export function gntallocDeallocGref(fd: number, index: number, count: number): void {
  checkFd(fd);
  checkIndex(index);
  checkCount(count);
  call('gntallocDeallocGref', (a) => a.gntallocDeallocGref(fd, index, count));
}

/** IOCTL_GNTALLOC_SET_UNMAP_NOTIFY: on unmap, clear the byte at `index` and/or notify `port`. */
export function gntallocSetUnmapNotify(fd: number, index: number, action: number, port: number): void {
  checkFd(fd);
  checkUint('index', index, Number.MAX_SAFE_INTEGER);
  if ((action & ~(UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT)) !== 0 || !Number.isInteger(action) || action < 0) {
    throw new InvalidArgumentError('action', `must combine UNMAP_NOTIFY_CLEAR_BYTE and UNMAP_NOTIFY_SEND_EVENT, got ${action}`);
  }
  checkUint('port', port, U32_MAX);
  call('gntallocSetUnmapNotify', (a) => a.gntallocSetUnmapNotify(fd, index, action, port));
}

// ------------------------------------------------------------------ gntdev

/** IOCTL_GNTDEV_MAP_GRANT_REF: reserve a mapping of `refs` (all of `domid`); returns the mmap offset. */
export function gntdevMapGrantRef(fd: number, domid: number, refs: readonly number[]): number {
  checkFd(fd);
  checkUint('domid', domid, DOMID_MAX);
  if (!Array.isArray(refs)) throw new InvalidArgumentError('refs', 'must be an array of grant references');
  checkCount(refs.length);
  refs.forEach((r, i) => checkUint(`refs[${i}]`, r, U32_MAX));
  const index = call('gntdevMapGrantRef', (a) => a.gntdevMapGrantRef(fd, domid, [...refs]));
  if (!Number.isSafeInteger(index) || index % PAGE_SIZE !== 0) {
    throw new NativeError(`gntdevMapGrantRef: kernel returned index ${index}`);
  }
  return index;
}

/** IOCTL_GNTDEV_UNMAP_GRANT_REF: after the pages were unmapped from memory. */
export function gntdevUnmapGrantRef(fd: number, index: number, count: number): void {
  checkFd(fd);
  checkIndex(index);
  checkCount(count);
  call('gntdevUnmapGrantRef', (a) => a.gntdevUnmapGrantRef(fd, index, count));
}

// ------------------------------------------------------------------ mapping

/**
 * As src/native/index.ts's mapPages, but PROT_READ only (gntdev maps a grant
 * read-only iff the vma is not writable). The region must be page-aligned and
 * inside the pool; `fd` must be open. Nothing is touched on a refusal.
 */
export function mapPagesReadOnly(
  memory: WebAssembly.Memory,
  layout: PoolRegion,
  offset: number,
  fd: number,
  fileOffset: number,
  length: number,
): void {
  const buffer = (memory as { buffer?: unknown } | null)?.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) throw new InvalidArgumentError('memory', 'must be a shared WebAssembly.Memory');
  for (const [field, v] of [['offset', offset], ['fileOffset', fileOffset], ['length', length]] as const) {
    checkUint(field, v, Number.MAX_SAFE_INTEGER);
    if (v % PAGE_SIZE !== 0) throw new InvalidArgumentError(field, `must be a multiple of ${PAGE_SIZE}, got ${v}`);
  }
  if (length === 0) throw new InvalidArgumentError('length', 'must be > 0');
  const poolEnd = layout.poolBase + layout.poolPages * PAGE_SIZE;
  if (offset < layout.poolBase || offset >= poolEnd) {
    throw new InvalidArgumentError('offset', `${offset} is outside the page pool [${layout.poolBase}, ${poolEnd})`);
  }
  if (offset + length > poolEnd || offset + length > buffer.byteLength) {
    throw new InvalidArgumentError('length', `${length} bytes at ${offset} run past the end of the page pool (${poolEnd})`);
  }
  checkFd(fd);
  try {
    fstatSync(fd);
  } catch (cause) {
    throw new InvalidArgumentError('fd', `${fd} is not an open descriptor (${(cause as Error).message})`);
  }
  call('mapIntoMemory', (a) => a.mapIntoMemory(buffer, offset, fd, fileOffset, length, true));
}

/** Request numbers, struct sizes and offsets the addon was compiled with (for the ABI test). */
export function xenDevAbi(): Record<string, number> {
  return call('xenDevAbi', (a) => a.xenDevAbi());
}
