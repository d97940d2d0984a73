/**
 * Our `xen:` flavour (blkfront) attached to the kernel's xen-blkback in dom0:
 * a vbd whose frontend is dom0 itself, written by createVbd with the loop
 * device blkback serves (`physical-device`). Verified random I/O with
 * scatter/gather at odd alignments, flush and discard, on both engines, with
 * the ring, queue, indirect and persistent-grant features blkback offers;
 * the image file is checked byte for byte against the model; nothing is left
 * behind (grants, ports, xenstore nodes, the loop device).
 */
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/blkfront/flavour.js';
import { openXenBlockDevice, type XenOpenOptions } from '../../src/blkfront/flavour.js';
import { attachLoop, loopDevicesOf, type LoopDevice } from '../../src/blkfront/loop-device.js';
import { vbdPaths } from '../../src/blkfront/toolstack.js';
import { connectXenstoreSocket } from '../../src/xenstore/transport/socket.js';
import type { XenstoreClient } from '../../src/xenstore/client.js';
import type { BlockDevice } from '../../src/block/types.js';
import { expectKernelClean, grantMappings, kernelLog, moduleLoaded, raiseGntallocLimit, requireDom0, userEvtchnIrqs, until } from './dom0.js';
import { TCG_TIMEOUTS } from './dom0.js';
import { SECTOR, expectFileEquals, randomIo } from './io-pattern.js';

const SIZE = 32 << 20;

let xs: XenstoreClient;
let log0: string[];
let irqs0: number;

beforeAll(async () => {
  requireDom0();
  if (!moduleLoaded('xen-blkback')) throw new Error('xen-blkback is not loaded: modprobe xen-blkback');
  if (moduleLoaded('xen-blkfront')) throw new Error('xen-blkfront is loaded: it claims every dom0 vbd; modprobe -r xen-blkfront');
  raiseGntallocLimit();
  xs = await connectXenstoreSocket();
  log0 = await kernelLog();
  irqs0 = userEvtchnIrqs();
});

afterAll(async () => {
  await xs?.close();
});

for (const [engine, devid] of [['wasm', 51712], ['js', 51728]] as const) {
  describe(`engine ${engine}`, () => {
    const image = `/tmp/xenpv-kbk-${engine}.img`;
    let loop: LoopDevice;
    const model = new Uint8Array(SIZE);

    beforeAll(async () => {
      writeFileSync(image, '');
      truncateSync(image, SIZE);
      loop = await attachLoop(image);
    });
    afterAll(async () => {
      await loop?.detach();
      rmSync(image, { force: true });
    });

    const open = (extra: Partial<XenOpenOptions['blkfront']> = {}): Promise<BlockDevice> =>
      openXenBlockDevice(String(devid), {
        engine,
        create: { physicalDevice: loop.path },
        linux: { xenstore: 'socket' },
        blkfront: { maxRingPageOrder: 2, queues: 4, persistent: true, indirect: true, ...TCG_TIMEOUTS, ...extra },
      });

    it('attaches to kernel blkback and negotiates multi-page rings, queues, indirect and persistent grants', async () => {
      const t0 = Date.now();
      const dev = await open();
      try {
        const { backend, frontend } = vbdPaths({ frontendDomid: 0, backendDomid: 0, devid });
        const info = dev.info();
        expect(info.sizeSectors * BigInt(info.sectorSize)).toBe(BigInt(SIZE));
        expect(info.readWrite).toBe(true);
        expect(info.features.flush).toBe(true);
        expect(info.features.persistent).toBe(true);
        expect(info.features.indirectSegments).toBeGreaterThan(11);
        expect(await xs.read(`${backend}/state`)).toBe('4');
        const maxQueues = Number(await xs.read(`${backend}/multi-queue-max-queues`));
        const queues = Number((await xs.tryRead(`${frontend}/multi-queue-num-queues`)) ?? '1');
        expect(queues).toBe(Math.min(4, maxQueues));
        const order = Number(await xs.read(`${frontend}/ring-page-order`));
        expect(order).toBe(Math.min(2, Number(await xs.read(`${backend}/max-ring-page-order`))));
        console.log(`[${engine}] attached in ${Date.now() - t0} ms: ${queues} queue(s) (blkback offers ${maxQueues}), ring order ${order}, ` +
          `indirect ${info.features.indirectSegments}, discard ${info.features.discard}`);
        const t1 = Date.now();
        const r = await randomIo(dev, model, 0x9e37 + devid, 4, 32, 256);
        console.log(`[${engine}] ${r.ops} verified random ops, ${(r.bytes / 1048576).toFixed(1)} MiB, in ${Date.now() - t1} ms`);
        await dev.flush();
      } finally {
        await dev.disconnect();
      }
      expectFileEquals(image, model);
    });

    it('large requests (1 MiB, indirect) and single sectors round-trip, and the file matches', async () => {
      const dev = await open();
      try {
        const big = new Uint8Array(1 << 20).map((_, i) => (i * 7 + devid) & 0xff);
        const view = new Uint8Array(big.length + 1).subarray(1); // odd address
        view.set(big);
        await dev.write(2048n, [view]);
        model.set(big, 2048 * SECTOR);
        const one = new Uint8Array(SECTOR + 3).subarray(3);
        one.fill(0xa5);
        await dev.write(BigInt(SIZE / SECTOR - 1), [one]);
        model.set(one, SIZE - SECTOR);
        const back = new Uint8Array(1 << 20);
        await dev.read(2048n, [back.subarray(0, 4096), back.subarray(4096)]);
        expect(Buffer.from(back).equals(Buffer.from(big))).toBe(true);
        await expect(dev.read(BigInt(SIZE / SECTOR), [new Uint8Array(SECTOR)])).rejects.toMatchObject({ code: 'out-of-range' });
        await dev.flush();
      } finally {
        await dev.disconnect();
      }
      expectFileEquals(image, model);
    });

    it('discard: blkback punches the range out of the loop device, which reads back zeros', async () => {
      const dev = await open();
      try {
        if (!dev.info().features.discard) throw new Error('kernel blkback offers no discard on this loop device (is the image on tmpfs?)');
        const at = 4 << 20; // 1 MiB aligned: whole granules
        const fill = new Uint8Array(1 << 20).fill(0x3c);
        await dev.write(BigInt(at / SECTOR), [fill]);
        await dev.flush();
        await dev.discard(BigInt(at / SECTOR), BigInt((1 << 20) / SECTOR));
        model.fill(0, at, at + (1 << 20));
        const back = new Uint8Array(1 << 20).fill(0xff);
        await dev.read(BigInt(at / SECTOR), [back]);
        expect(back.every((b) => b === 0)).toBe(true);
      } finally {
        await dev.disconnect();
      }
      expectFileEquals(image, model);
    });

    it('single queue, single-page ring, no persistent grants, no indirect: still verified', async () => {
      const dev = await open({ maxRingPageOrder: 0, queues: 1, persistent: false, indirect: false });
      try {
        expect(dev.info().features.persistent).toBe(false);
        await randomIo(dev, model, 0x51 + devid, 2, 32, 64);
      } finally {
        await dev.disconnect();
      }
      expectFileEquals(image, model);
    });

    it('leaves nothing behind: no xenstore nodes, no grant mappings, no bound ports, and the loop device goes', async () => {
      const { backend, frontend } = vbdPaths({ frontendDomid: 0, backendDomid: 0, devid });
      expect(await xs.tryRead(frontend)).toBeUndefined();
      // Kernel blkback removes its device once the directory is gone; the directory itself is ours.
      expect(await xs.tryRead(backend)).toBeUndefined();
      expect(grantMappings()).toEqual({ gntalloc: 0, gntdev: 0 });
      expect(userEvtchnIrqs()).toBe(irqs0);
      // blkback lets go of the loop device when its vbd goes away (losetup
      // --detach of a busy device only marks it for autoclear).
      await loop.detach();
      await until('the loop device to go', async () => ((await loopDevicesOf(image)).length === 0 ? true : undefined), 30_000);
    });
  });
}

describe('the kernel', () => {
  it('logged no BUG, WARNING or Oops', async () => {
    await expectKernelClean(log0);
  });
});
