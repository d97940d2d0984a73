/**
 * The /dev/xen wrappers (src/native/xen-dev.ts) on a machine without Xen:
 * bad arguments are refused before any system call (and without touching
 * memory); real system calls on the wrong kind of file fail with the errno
 * the kernel gives (ENOTTY for an ioctl on /dev/null, EBADF on a closed fd).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { createSharedLayout, PAGE_SIZE, type SharedLayout } from '../src/memory/layout.js';
import { memfdCreate, NativeError, unmapPages } from '../src/native/index.js';
import {
  evtchnBindInterdomain,
  evtchnBindUnboundPort,
  evtchnNotify,
  evtchnReset,
  evtchnUnbind,
  gntallocAllocGref,
  gntallocDeallocGref,
  gntallocSetUnmapNotify,
  gntdevMapGrantRef,
  gntdevUnmapGrantRef,
  mapPagesReadOnly,
} from '../src/native/xen-dev.js';

const { ENOTTY, EBADF } = constants.errno;

function refused(field: string, f: () => unknown): void {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as InvalidArgumentError).field).toBe(field);
}

function failsWith(errno: number, f: () => unknown): NativeError {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(NativeError);
  expect((err as NativeError).code).toBe('native');
  expect((err as NativeError).errno).toBe(errno);
  expect((err as NativeError).syscall).toBe('ioctl');
  return err as NativeError;
}

describe('ioctl wrappers', () => {
  let devNull: number;
  beforeEach(() => { devNull = openSync('/dev/null', 'r+'); });
  afterEach(() => { try { closeSync(devNull); } catch { /* closed by the test */ } });

  it('refuse fds that are not descriptors before calling the kernel', () => {
    for (const fd of [-1, 1.5, 2 ** 31, Number.NaN]) {
      refused('fd', () => evtchnNotify(fd, 1));
      refused('fd', () => gntallocAllocGref(fd, 0, 1, true));
      refused('fd', () => gntdevMapGrantRef(fd, 0, [8]));
    }
  });

  it('refuse out-of-range domids, ports, counts and unaligned indices', () => {
    refused('remoteDomain', () => evtchnBindUnboundPort(devNull, 0x10000));
    refused('remotePort', () => evtchnBindInterdomain(devNull, 1, -1));
    refused('port', () => evtchnUnbind(devNull, 2 ** 32));
    refused('domid', () => gntallocAllocGref(devNull, -1, 1, true));
    refused('count', () => gntallocAllocGref(devNull, 1, 0, true));
    refused('count', () => gntallocAllocGref(devNull, 1, 65537, true));
    refused('index', () => gntallocDeallocGref(devNull, 100, 1));
    refused('index', () => gntdevUnmapGrantRef(devNull, 4096.5, 1));
    refused('count', () => gntdevMapGrantRef(devNull, 1, []));
    refused('refs[1]', () => gntdevMapGrantRef(devNull, 1, [8, -3]));
    refused('action', () => gntallocSetUnmapNotify(devNull, 0, 4, 1));
  });

  it('report the errno of an ioctl the file does not understand (ENOTTY on /dev/null)', () => {
    const e = failsWith(ENOTTY, () => evtchnBindUnboundPort(devNull, 0));
    expect(e.message).toMatch(/IOCTL_EVTCHN_BIND_UNBOUND_PORT/);
    failsWith(ENOTTY, () => evtchnBindInterdomain(devNull, 0, 1));
    failsWith(ENOTTY, () => evtchnUnbind(devNull, 1));
    failsWith(ENOTTY, () => evtchnNotify(devNull, 1));
    failsWith(ENOTTY, () => evtchnReset(devNull));
    failsWith(ENOTTY, () => gntallocAllocGref(devNull, 0, 2, true));
    failsWith(ENOTTY, () => gntallocDeallocGref(devNull, 0, 2));
    failsWith(ENOTTY, () => gntallocSetUnmapNotify(devNull, 0, 1, 0));
    failsWith(ENOTTY, () => gntdevMapGrantRef(devNull, 0, [8, 9]));
    failsWith(ENOTTY, () => gntdevUnmapGrantRef(devNull, 0, 2));
  });

  it('report EBADF on a closed descriptor', () => {
    closeSync(devNull);
    failsWith(EBADF, () => evtchnNotify(devNull, 1));
    failsWith(EBADF, () => gntdevMapGrantRef(devNull, 0, [8]));
  });
});

describe('mapPagesReadOnly', () => {
  const SENTINEL = 0x5a;
  let layout: SharedLayout;
  let mem: Uint8Array;
  let fd: number;

  beforeEach(() => {
    layout = createSharedLayout({ scratchBytes: 65536, poolPages: 8 });
    mem = new Uint8Array(layout.memory.buffer);
    mem.fill(SENTINEL, layout.poolBase, layout.poolBase + 8 * PAGE_SIZE);
    fd = memfdCreate('xenpv-ro', 4 * PAGE_SIZE);
    writeSync(fd, Buffer.alloc(4 * PAGE_SIZE, 0xc3), 0, 4 * PAGE_SIZE, 0);
  });
  afterEach(() => { try { closeSync(fd); } catch { /* closed by the test */ } });

  const untouched = (): boolean => mem.subarray(layout.poolBase, layout.poolBase + 8 * PAGE_SIZE).every((b) => b === SENTINEL);

  it('refuses unaligned, out-of-pool and bad-fd requests without touching memory', () => {
    const p = layout.poolBase;
    refused('offset', () => mapPagesReadOnly(layout.memory, layout, p + 512, fd, 0, PAGE_SIZE));
    refused('offset', () => mapPagesReadOnly(layout.memory, layout, p - PAGE_SIZE, fd, 0, PAGE_SIZE));
    refused('fileOffset', () => mapPagesReadOnly(layout.memory, layout, p, fd, 100, PAGE_SIZE));
    refused('length', () => mapPagesReadOnly(layout.memory, layout, p, fd, 0, 0));
    refused('length', () => mapPagesReadOnly(layout.memory, layout, p + 7 * PAGE_SIZE, fd, 0, 2 * PAGE_SIZE));
    refused('fd', () => mapPagesReadOnly(layout.memory, layout, p, -1, 0, PAGE_SIZE));
    const closed = memfdCreate('xenpv-closed', PAGE_SIZE);
    closeSync(closed);
    refused('fd', () => mapPagesReadOnly(layout.memory, layout, p, closed, 0, PAGE_SIZE));
    refused('memory', () => mapPagesReadOnly(new WebAssembly.Memory({ initial: 1 }), layout, p, fd, 0, PAGE_SIZE));
    expect(untouched()).toBe(true);
  });

  it('shows the file at the offset, follows later writes to it, and unmaps back to zero pages', () => {
    const at = layout.poolBase + 2 * PAGE_SIZE;
    mapPagesReadOnly(layout.memory, layout, at, fd, PAGE_SIZE, 2 * PAGE_SIZE);
    expect(mem.subarray(at, at + 2 * PAGE_SIZE).every((b) => b === 0xc3)).toBe(true);
    expect(mem[at - 1]).toBe(SENTINEL);
    expect(mem[at + 2 * PAGE_SIZE]).toBe(SENTINEL);
    writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, PAGE_SIZE + 10); // file page 1 = memory page `at`
    expect([...mem.subarray(at + 10, at + 13)]).toEqual([1, 2, 3]);
    unmapPages(layout.memory, layout, at, 2 * PAGE_SIZE);
    expect(mem.subarray(at, at + 2 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
  });
});
