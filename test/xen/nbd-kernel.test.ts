/**
 * Real-Xen lane (dom0, root, kernel modules): the kernel's own NBD client
 * on our export. `nbd-client` attaches /dev/nbdN to an NbdServer serving a
 * file: image, then mkfs.ext4, mount, copy a file in, umount, detach; the
 * oracles are e2fsck (clean) and debugfs (the file's bytes), run on the
 * image file itself, not through us.
 *
 * Runs inside the lab's dom0 (XENPV_DOM0=1, npm run test:xen); anywhere
 * else it fails, saying so. Needs nbd-client in the dom0 image
 * (tools/xen-vm/packages.txt) and the nbd module.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../../src/block/file.js';
import { NbdServer } from '../../src/nbd/index.js';

const run = promisify(execFile);
const MiB = 1 << 20;

let dir: string;
let dev: FileBlockDevice;
let server: NbdServer;
let nbd: string | undefined;

beforeAll(async () => {
  if (process.env['XENPV_DOM0'] !== '1') {
    throw new Error('test/xen/nbd-kernel.test.ts runs only inside the real-Xen lab dom0 (XENPV_DOM0=1, as root; see tools/xen-vm): it drives the kernel nbd client');
  }
  await run('nbd-client', ['--help']).catch((err: { code?: string }) => {
    if (err.code === 'ENOENT') throw new Error('nbd-client is missing from the dom0 image: add nbd-client to tools/xen-vm/packages.txt');
  });
  await run('modprobe', ['nbd', 'nbds_max=4']);
  dir = await mkdtemp(join(tmpdir(), 'xenpv-nbd-kernel-'));
  dev = await FileBlockDevice.open(join(dir, 'disk.img'), { create: { sizeBytes: 64 * MiB } });
  server = await NbdServer.listen({ exports: [{ name: 'disk', device: dev }], port: 0 });
});

afterAll(async () => {
  if (nbd !== undefined) await run('nbd-client', ['-d', nbd]).catch(() => undefined);
  await server?.close();
  await dev?.disconnect();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the kernel nbd client on our NBD export (dom0)', () => {
  it('makes, mounts and fills an ext4 file system that e2fsck finds clean and debugfs reads back', async () => {
    // The first free /dev/nbdN: a connected one has a pid file in sysfs.
    nbd = ['/dev/nbd0', '/dev/nbd1', '/dev/nbd2', '/dev/nbd3'].find((d) => existsSync(d) && !existsSync(`/sys/block/${d.slice(5)}/pid`));
    expect(nbd, 'no free /dev/nbdN after modprobe nbd').toBeDefined();
    await run('nbd-client', ['127.0.0.1', String(server.port), nbd!, '-N', 'disk', '-b', '4096'], { timeout: 30_000 });
    expect((await run('blockdev', ['--getsize64', nbd!])).stdout.trim()).toBe(String(64 * MiB));

    const payload = randomBytes(3 * MiB + 123);
    const src = join(dir, 'payload.bin');
    const mnt = join(dir, 'mnt');
    await writeFile(src, payload);
    await run('mkfs.ext4', ['-q', '-F', nbd!], { timeout: 120_000 });
    await run('mkdir', ['-p', mnt]);
    await run('mount', [nbd!, mnt]);
    try {
      await run('cp', [src, join(mnt, 'payload.bin')]);
      await run('sync');
      expect((await readFile(join(mnt, 'payload.bin'))).equals(payload)).toBe(true);
    } finally {
      await run('umount', [mnt]);
    }
    await run('nbd-client', ['-d', nbd!]);
    nbd = undefined;

    // The oracles read the image file directly.
    const img = join(dir, 'disk.img');
    const fsck = await run('e2fsck', ['-fn', img]).catch((e: { code?: number; stdout?: string }) => e);
    expect((fsck as { code?: number }).code ?? 0, `e2fsck: ${(fsck as { stdout?: string }).stdout}`).toBe(0);
    const out = join(dir, 'back.bin');
    await run('debugfs', ['-R', `dump /payload.bin ${out}`, img]);
    expect((await readFile(out)).equals(payload)).toBe(true);
  });
});
