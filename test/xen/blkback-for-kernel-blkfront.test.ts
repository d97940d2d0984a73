/**
 * Our blkback (mapping the frontend's grants through /dev/xen/gntdev, binding
 * its event channels interdomain) serving the kernel's xen-blkfront in dom0:
 * mkfs.ext4 on the /dev/xvdX it creates, mount, copy files in, unmount, fsck
 * clean; the image then holds exactly what the kernel wrote (compared with
 * the device as the kernel reads it) and the files read back from a loop
 * mount of the image.
 *
 * The vbd's backend directory is backend/xenpv/..., not backend/vbd/...: the
 * kernel's xen-blkback (loaded in the lab) claims every dom0 backend/vbd.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Blkback } from '../../src/blkback/blkback.js';
import { FileBlockDevice } from '../../src/block/file.js';
import { createVbd, destroyVbd, type VbdPaths } from '../../src/blkfront/toolstack.js';
import { openLinuxPlatform, type LinuxPlatform } from '../../src/platform/linux/platform.js';
import { createEngine } from '../../src/ring/index.js';
import { expectKernelClean, grantMappings, kernelLog, modprobe, moduleLoaded, requireDom0, rmmod, sh, until, userEvtchnIrqs } from './dom0.js';

const DEVID = 51744; // xvdc: 202:32
const DISK = '/dev/xvdc';
const IMAGE = '/tmp/xenpv-kbf.img';
const MNT = '/tmp/xenpv-kbf-mnt';
const SIZE = 64 << 20;

let platform: LinuxPlatform;
let back: Blkback;
let device: FileBlockDevice;
let paths: VbdPaths;
let log0: string[];
let irqs0: number;
let platformClosed = false;
const files = new Map<string, Buffer>();

beforeAll(async () => {
  requireDom0();
  if (moduleLoaded('xen-blkfront')) throw new Error('xen-blkfront is already loaded: this test loads it itself');
  log0 = await kernelLog();
  irqs0 = userEvtchnIrqs();
  await writeFile(IMAGE, '');
  await truncate(IMAGE, SIZE);
  await mkdir(MNT, { recursive: true });
  platform = await openLinuxPlatform({ xenstore: 'socket', memory: { poolPages: 16384 } });
  device = await FileBlockDevice.open(IMAGE);
  paths = await createVbd(platform.xenstore, { frontendDomid: 0, backendDomid: 0, devid: DEVID, params: IMAGE, backendType: 'xenpv', dev: 'xvdc' });
  back = await Blkback.start(platform, {
    backend: paths.backend,
    device,
    engine: createEngine('wasm', platform.memory),
    features: { maxQueues: 4, maxRingPageOrder: 4, persistent: true, maxIndirectSegments: 256, discard: true, flushCache: true },
  });
});

afterAll(async () => {
  await sh('umount', [MNT]).catch(() => undefined);
  await rmmod('xen-blkfront').catch(() => undefined);
  await back?.stop().catch(() => undefined);
  if (paths) await destroyVbd(platform.xenstore, paths).catch(() => undefined);
  if (!platformClosed) await platform?.close();
  await device?.disconnect().catch(() => undefined);
  await rm(IMAGE, { force: true });
});

describe('our blkback serving the kernel xen-blkfront', () => {
  it('the kernel frontend connects and its disk appears', async () => {
    const t0 = Date.now();
    await modprobe('xen-blkfront');
    await until(`${DISK}`, () => (existsSync(DISK) && existsSync('/sys/block/xvdc') ? true : undefined), 120_000);
    expect(await platform.xenstore.read(`${paths.backend}/state`)).toBe('4');
    expect(await platform.xenstore.read(`${paths.frontend}/state`)).toBe('4');
    const sectors = Number(readFileSync('/sys/block/xvdc/size', 'utf8'));
    expect(sectors * 512).toBe(SIZE);
    const fe = (k: string) => platform.xenstore.tryRead(`${paths.frontend}/${k}`);
    console.log(`kernel blkfront connected in ${Date.now() - t0} ms: queues ${(await fe('multi-queue-num-queues')) ?? 1}, ` +
      `ring-page-order ${(await fe('ring-page-order')) ?? 0}, persistent ${await fe('feature-persistent')}, ` +
      `grants mapped now ${platform.grants.activeMappings()}`);
  });

  it('mkfs.ext4, mount, copy files in, unmount, and fsck finds it clean', async () => {
    await sh('mkfs.ext4', ['-F', '-q', '-E', 'nodiscard', DISK], { timeout: 300_000 });
    await sh('mount', ['-t', 'ext4', DISK, MNT]);
    for (let i = 0; i < 24; i++) {
      const body = randomBytes(1024 + ((i * 37_111) % (700 << 10)));
      files.set(`f${i}.bin`, body);
      await writeFile(`${MNT}/f${i}.bin`, body);
    }
    await mkdir(`${MNT}/dir/sub`, { recursive: true });
    const big = randomBytes(8 << 20);
    files.set('dir/sub/big.bin', big);
    await writeFile(`${MNT}/dir/sub/big.bin`, big);
    await sh('sync', []);
    // Read back through the page cache drop: the data comes from our backend again.
    await writeFile('/proc/sys/vm/drop_caches', '3');
    for (const [name, body] of files) expect((await readFile(`${MNT}/${name}`)).equals(body), name).toBe(true);
    await sh('umount', [MNT]);
    const out = await sh('fsck.ext4', ['-f', '-n', DISK]).catch((e: Error) => { throw new Error(`fsck.ext4 is not clean: ${e.message}`); });
    expect(out).toMatch(/clean|files/);
  });

  it('the image holds what the kernel wrote: same bytes as the device, and the same files', async () => {
    const kernelView = createHash('sha256').update(await readFile(DISK)).digest('hex');
    await device.flush();
    const image = createHash('sha256').update(await readFile(IMAGE)).digest('hex');
    expect(image).toBe(kernelView);
    // Unplug: our backend closes, the kernel frontend follows and drops its
    // disk. (Unloading xen-blkfront with the disk still there fails "in use".)
    // (The kernel drops the disk once the vbd goes: see the teardown test.)
    await back.stop();
    await sh('mount', ['-o', 'loop,ro', '-t', 'ext4', IMAGE, MNT]);
    try {
      for (const [name, body] of files) expect((await readFile(`${MNT}/${name}`)).equals(body), name).toBe(true);
    } finally {
      await sh('umount', [MNT]);
    }
    expect(platform.grants.activeMappings()).toBe(0);
  });

  it('leaves nothing behind: grant mappings, ports, xenstore nodes', async () => {
    await destroyVbd(platform.xenstore, paths);
    await until(`${DISK} to go`, () => (existsSync(DISK) ? undefined : true), 120_000);
    await rmmod('xen-blkfront');
    expect(await platform.xenstore.tryRead(paths.backend)).toBeUndefined();
    expect(await platform.xenstore.tryRead(paths.frontend)).toBeUndefined();
    expect(platform.evtchn.openPorts()).toEqual([]);
    expect(grantMappings().gntdev).toBe(0);
    await platform.close();
    platformClosed = true;
    expect(grantMappings()).toEqual({ gntalloc: 0, gntdev: 0 });
    expect(userEvtchnIrqs()).toBe(irqs0);
    await expectKernelClean(log0);
  });
});
