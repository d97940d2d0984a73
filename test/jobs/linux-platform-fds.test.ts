/**
 * openLinuxPlatform({ fds }) on this machine (no Xen): what a job child
 * does with the descriptors its master passed. Nothing is opened by path
 * (/dev/xen does not exist here, and the answer is not "missing"); bad
 * descriptors are refused typed before any is used; with stand-ins
 * (/dev/null for the devices; xenstore by socket path here) it reaches the
 * first ioctl, fails with the kernel's ENOTTY, and closes every descriptor
 * it was given (it owns them). The oracle for "closed" is /proc/self/fd.
 */
import { openSync, closeSync, existsSync, fstatSync, mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLinuxPlatform } from '../../src/platform/linux/index.js';
import { NativeError } from '../../src/native/errors.js';
import { XenstoreServer } from '../../src/xenstore/server/server.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-fds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const isOpen = (fd: number): boolean => { try { fstatSync(fd); return true; } catch { return false; } };

describe('openLinuxPlatform from passed descriptors', () => {
  it('this machine has no /dev/xen (the premise)', () => {
    expect(existsSync('/dev/xen/evtchn')).toBe(false);
  });

  it('refuses a closed descriptor, a non-device, and a xenstore descriptor that is not a socket, naming the field, and uses none of them', async () => {
    const nul = openSync('/dev/null', 'r+');
    const file = openSync(join(dir, 'plain'), 'w+');
    try {
      await expect(openLinuxPlatform({ fds: { evtchn: 987654, gntalloc: nul } })).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringContaining('fds.evtchn') });
      await expect(openLinuxPlatform({ fds: { evtchn: nul, gntalloc: file } })).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringContaining('not a character device') });
      await expect(openLinuxPlatform({ fds: { evtchn: nul, gntalloc: nul, xenstore: nul } })).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringContaining('fds.xenstore') });
      await expect(openLinuxPlatform({ fds: { evtchn: nul, gntalloc: nul }, domid: -1 })).rejects.toMatchObject({ code: 'invalid-argument' });
      // Refusals leave the descriptors to their owner.
      expect(isOpen(nul) && isOpen(file)).toBe(true);
    } finally {
      closeSync(nul);
      closeSync(file);
    }
  });

  it('with stand-ins it reaches the first ioctl (ENOTTY, typed) without opening any path, and closes every descriptor it was given', async () => {
    const xenstored = new XenstoreServer();
    const socket = join(dir, 'xs.sock');
    await xenstored.listen(socket);
    try {
      const evtchn = openSync('/dev/null', 'r+');
      const gntalloc = openSync('/dev/null', 'r+');
      const gntdev = openSync('/dev/null', 'r+');
      const err = await openLinuxPlatform({ fds: { evtchn, gntalloc, gntdev }, xenstore: socket, domid: 0, memory: { poolPages: 16 } }).then(
        () => { throw new Error('expected a rejection'); }, (e: unknown) => e as Error & { code: string });
      expect(err.code).toBe('evtchn');
      expect((err.cause as NativeError).errno).toBe(constants.errno.ENOTTY);
      for (const fd of [evtchn, gntalloc, gntdev]) expect(isOpen(fd), `fd ${fd}`).toBe(false);
    } finally {
      await xenstored.close();
    }
  });
});
