/**
 * openLinuxPlatform on this machine, which has no Xen: it fails with the
 * typed `unsupported` error naming the missing device (asserted, not
 * skipped). With stand-in device files it goes as far as the first ioctl,
 * fails with the kernel's errno as a typed error, and leaks no descriptor
 * or xenstore connection.
 */
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { XenpvError } from '../src/errors.js';
import { NativeError } from '../src/native/errors.js';
import { EvtchnError } from '../src/platform/sim/errors.js';
import { openLinuxPlatform } from '../src/platform/linux/index.js';
import { XenstoreServer } from '../src/xenstore/server/server.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-linux-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Descriptors of this process open on `target`. */
const fdsOn = (target: string): number =>
  readdirSync('/proc/self/fd').filter((f) => {
    try { return readlinkSync(`/proc/self/fd/${f}`) === target; } catch { return false; }
  }).length;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('openLinuxPlatform without Xen', () => {
  it('this machine has no /dev/xen/evtchn (the premise of this test file)', () => {
    expect(existsSync('/dev/xen/evtchn'), 'this test asserts the behaviour on a machine without Xen').toBe(false);
  });

  it("fails with code 'unsupported' naming /dev/xen/evtchn", async () => {
    const err = await rejection(openLinuxPlatform());
    expect(err).toBeInstanceOf(XenpvError);
    expect((err as XenpvError).code).toBe('unsupported');
    expect((err as Error).message).toBe(
      'no Xen here: /dev/xen/evtchn is missing (is this a Xen dom0 with xen-evtchn/xen-gntalloc loaded?)',
    );
  });

  it('names gntalloc when only evtchn is there', async () => {
    const d = mkdtempSync(join(dir, 'only-evtchn-'));
    writeFileSync(join(d, 'evtchn'), '');
    const err = await rejection(openLinuxPlatform({ deviceDir: d }));
    expect((err as XenpvError).code).toBe('unsupported');
    expect((err as Error).message).toContain(`${join(d, 'gntalloc')} is missing`);
  });

  it('reaches the first ioctl with stand-in devices, fails typed with ENOTTY, and closes everything', async () => {
    const d = mkdtempSync(join(dir, 'stand-in-'));
    symlinkSync('/dev/null', join(d, 'evtchn'));
    symlinkSync('/dev/null', join(d, 'gntalloc'));
    const socket = join(d, 'xenstored.sock');
    const xenstored = new XenstoreServer();
    await xenstored.listen(socket);
    const before = fdsOn('/dev/null');
    try {
      const err = await rejection(openLinuxPlatform({ deviceDir: d, xenstore: socket, memory: { poolPages: 16 } }));
      // LinuxEventChannels binds its wake-up port first: IOCTL_EVTCHN_BIND_UNBOUND_PORT on /dev/null.
      expect(err).toBeInstanceOf(EvtchnError);
      expect((err as EvtchnError).code).toBe('evtchn');
      const cause = (err as Error).cause as NativeError;
      expect(cause).toBeInstanceOf(NativeError);
      expect(cause.errno).toBe(constants.errno.ENOTTY);
      expect(cause.syscall).toBe('ioctl');
    } finally {
      await xenstored.close();
    }
    // Both stand-in devices (evtchn, gntalloc) were opened and closed again.
    expect(fdsOn('/dev/null')).toBe(before);
  });
});
