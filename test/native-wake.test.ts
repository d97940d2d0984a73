import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { NativeError } from '../src/native/errors.js';
import { fdWaker } from '../src/native/wake.js';

// The oracle is the kernel's FIFO as Node's own fs sees it: a byte our call
// writes is read back with fs.readSync, bytes fs.writeSync puts in are the
// ones our read takes, and errno values come from os.constants.
describe('native one-byte wakes (fdWriteByte / fdReadBytes)', () => {
  let dir: string;
  let fifo: string;
  let fd: number;
  const waker = fdWaker();

  beforeEach(() => {
    dir = mkdtempSync(join(os.tmpdir(), 'xp-wake-'));
    fifo = join(dir, 'f');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    // O_RDWR | O_NONBLOCK: both ends, and an empty read is EAGAIN, not a hang.
    fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  });
  afterEach(() => {
    try { closeSync(fd); } catch { /* closed by the test */ }
    rmSync(dir, { recursive: true, force: true });
  });

  it('writeByte puts exactly one byte of value 1 into the FIFO', () => {
    expect(waker.writeByte(fd)).toBe(1);
    expect(waker.writeByte(fd)).toBe(1);
    const buf = Buffer.alloc(16);
    expect(readSync(fd, buf, 0, 16, null)).toBe(2);
    expect([...buf.subarray(0, 2)]).toEqual([1, 1]);
  });

  it('readBytes takes what is there (up to 64 bytes) and returns the count', () => {
    writeSync(fd, Buffer.alloc(5, 7));
    expect(waker.readBytes(fd)).toBe(5);
    writeSync(fd, Buffer.alloc(100, 7));
    expect(waker.readBytes(fd)).toBe(64);
    expect(waker.readBytes(fd)).toBe(36);
  });

  it('a read of an empty non-blocking FIFO is a NativeError with EAGAIN, not a hang', () => {
    const err = (() => { try { waker.readBytes(fd); } catch (e) { return e; } })() as NativeError;
    expect(err).toBeInstanceOf(NativeError);
    expect(err.code).toBe('native');
    expect(err.errno).toBe(os.constants.errno.EAGAIN);
    expect(err.syscall).toBe('read');
  });

  it('a closed fd is a NativeError with EBADF on both calls, and the process goes on', () => {
    closeSync(fd);
    for (const call of [() => waker.writeByte(fd), () => waker.readBytes(fd)]) {
      const err = (() => { try { call(); } catch (e) { return e; } })() as NativeError;
      expect(err).toBeInstanceOf(NativeError);
      expect(err.errno).toBe(os.constants.errno.EBADF);
      expect(err.message).toMatch(/Bad file descriptor/);
    }
  });

  it.each([-1, 1.5, Number.NaN, 2 ** 31])('fd %s is an InvalidArgumentError before any syscall', (bad) => {
    expect(() => waker.writeByte(bad)).toThrow(InvalidArgumentError);
    expect(() => waker.readBytes(bad)).toThrow(InvalidArgumentError);
  });
});
