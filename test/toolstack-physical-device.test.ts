/**
 * Regression: createVbd never wrote `physical-device`, so the kernel's
 * xen-blkback sat in InitWait and the attach timed out ("backend did not
 * connect within 15000 ms"). blkback parses it as "%x:%x" (major:minor in
 * hex, drivers/block/xen-blkback/xenbus.c), as the hotplug script writes it.
 *
 * Oracle: coreutils `stat -c %t:%T` (major and minor in hex) of the same
 * block device, not our decoding of st_rdev.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createVbd, physicalDeviceKey } from '../src/blkfront/toolstack.js';
import { XenstoreClient } from '../src/xenstore/client.js';
import { startServer, type RunningServer } from './xenstore-helpers.js';
import { connectXenstoreSocket } from '../src/xenstore/transport/socket.js';

/** Some block device of this machine (loop devices exist wherever the loop module is loaded). */
function someBlockDevice(): string {
  for (const name of readdirSync('/dev').sort()) {
    const p = join('/dev', name);
    try { if (statSync(p).isBlockDevice()) return p; } catch { /* vanished */ }
  }
  throw new Error('no block device under /dev: load the loop module (modprobe loop) to give this test one');
}

let running: RunningServer | undefined;
let client: XenstoreClient | undefined;
afterEach(async () => {
  await client?.close();
  await running?.stop();
  client = undefined;
  running = undefined;
});

describe('createVbd for the kernel blkback', () => {
  it('writes physical-device as major:minor in hex, as stat(1) prints them, and physical-device-path', async () => {
    running = await startServer();
    client = await connectXenstoreSocket(running.path);
    const dev = someBlockDevice();
    const expected = execFileSync('stat', ['-L', '-c', '%t:%T', dev], { encoding: 'utf8' }).trim();
    expect(physicalDeviceKey(dev)).toBe(expected);
    const paths = await createVbd(client, { frontendDomid: 0, backendDomid: 0, devid: 51712, physicalDevice: dev });
    expect(await client.read(`${paths.backend}/physical-device`)).toBe(expected);
    expect(await client.read(`${paths.backend}/physical-device-path`)).toBe(dev);
    // params defaults to the device; the rest blkback and the xenbus core read.
    expect(await client.read(`${paths.backend}/params`)).toBe(dev);
    expect(await client.read(`${paths.backend}/type`)).toBe('phy');
    expect(await client.read(`${paths.backend}/mode`)).toBe('w');
    expect(await client.read(`${paths.backend}/frontend-id`)).toBe('0');
    expect(await client.read(`${paths.backend}/frontend`)).toBe(paths.frontend);
    expect(await client.read(`${paths.backend}/online`)).toBe('1');
    expect(await client.read(`${paths.backend}/state`)).toBe('1');
  });

  it('refuses a path that is not a block device, writing nothing', async () => {
    running = await startServer();
    client = await connectXenstoreSocket(running.path);
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-vbd-'));
    try {
      const file = join(dir, 'disk.img');
      writeFileSync(file, Buffer.alloc(4096));
      await expect(createVbd(client, { frontendDomid: 0, backendDomid: 0, devid: 51712, physicalDevice: file }))
        .rejects.toMatchObject({ code: 'invalid-argument', field: 'physicalDevice' });
      expect(await client.tryRead('/local/domain/0/backend/vbd/0/51712')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('createVbd for a userspace backend in dom0', () => {
  it('puts the backend under backend/<backendType> (out of the kernel blkback\'s backend/vbd), and the frontend names it', async () => {
    running = await startServer();
    client = await connectXenstoreSocket(running.path);
    const paths = await createVbd(client, { frontendDomid: 0, backendDomid: 0, devid: 51744, params: '/tmp/x.img', backendType: 'xenpv' });
    expect(paths.backend).toBe('/local/domain/0/backend/xenpv/0/51744');
    expect(await client.read(`${paths.frontend}/backend`)).toBe(paths.backend);
    expect(await client.tryRead('/local/domain/0/backend/vbd')).toBeUndefined();
  });

  it('refuses a backendType that is not one path element', async () => {
    running = await startServer();
    client = await connectXenstoreSocket(running.path);
    await expect(createVbd(client, { frontendDomid: 0, backendDomid: 0, devid: 1, params: 'x', backendType: '../vbd' }))
      .rejects.toMatchObject({ code: 'invalid-argument', field: 'backendType' });
  });
});
