/**
 * Real-Xen lane (dom0, root, device-mapper): LVs our library made or
 * changed, activated by LVM2 (`lvchange -ay`), must hold exactly the bytes
 * we wrote through our LV device, and what is written to the activated
 * device-mapper device must be what our LV device reads. Covers a linear LV
 * of several segments made by us, and a striped LV made by the tools
 * (device-mapper's dm-stripe is then the oracle of our stripe mapping).
 *
 * Runs inside the lab's dom0 (npm run test:xen); anywhere else it fails,
 * saying so.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../../src/block/file.js';
import { openVolumeGroup } from '../../src/lvm/volume-group.js';
import { LvmLab, type Loop } from '../support/lvm-lab.js';

const MiB = 1 << 20;
let lab: LvmLab;
let a: Loop;
let b: Loop;
const devs: FileBlockDevice[] = [];

function pattern(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

/**
 * Our PV devices read the loop devices through their page cache, which
 * writes arriving through device-mapper (bios straight to the loop driver)
 * do not invalidate: BLKFLSBUF drops it before we read what dm wrote.
 */
function dropLoopCaches(): void {
  execFileSync('blockdev', ['--flushbufs', a.dev, b.dev]);
}

/** Up to `n` bytes from the start of `path` (fewer at its end). */
function readDm(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(n);
  try {
    let got = 0;
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, got);
      if (r === 0) break;
      got += r;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function writeDm(path: string, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

beforeAll(async () => {
  if (process.env.XENPV_DOM0 !== '1') {
    throw new Error('test/xen/lvm-activate runs inside the real-Xen lab\'s dom0 (npm run test:xen, tools/xen-vm); XENPV_DOM0 is not set here');
  }
  lab = new LvmLab();
  a = lab.attach(64);
  b = lab.attach(64);
  lab.run('pvcreate', a.dev, b.dev);
  lab.run('vgcreate', '-s', '1m', 'vgdom0', a.dev, b.dev);
  lab.run('lvcreate', '-an', '-Zn', '-i', '2', '-I', '64k', '-l', '6', '-n', 'str', 'vgdom0');
  devs.push(await FileBlockDevice.open(a.dev), await FileBlockDevice.open(b.dev));
});

afterAll(async () => {
  if (lab) lab.tryRun('vgchange', '-an', 'vgdom0');
  for (const d of devs) await d.disconnect();
  lab?.close();
});

describe('LVs activated by LVM2 in dom0', () => {
  it('a linear LV we made in three segments holds what we wrote, and we read what dm wrote', async () => {
    const vg = await openVolumeGroup(devs);
    await vg.createLogicalVolume('ours', { extents: 3 });
    await vg.createLogicalVolume('gap', { extents: 1 });
    await vg.extendLogicalVolume('ours', { extents: 8 });
    expect(vg.lv('ours').segments.length).toBeGreaterThan(1);
    const lv = await vg.openLogicalVolume('ours');
    const size = Number(lv.info().sizeSectors) * 512;
    const data = pattern(size, 1);
    await lv.write(0n, [data]);
    await lv.flush();

    lab.run('lvchange', '-ay', 'vgdom0/ours');
    try {
      const dm = '/dev/mapper/vgdom0-ours';
      // The dm device ends where the LV ends, and holds what we wrote.
      expect(readDm(dm, size + MiB).length).toBe(size);
      expect(readDm(dm, size).equals(data)).toBe(true);
      const back = pattern(size, 2);
      writeDm(dm, back);
      lab.run('lvchange', '-an', 'vgdom0/ours');
      dropLoopCaches();
      const ours = Buffer.alloc(size);
      await lv.read(0n, [ours]);
      expect(ours.equals(back)).toBe(true);
    } finally {
      lab.tryRun('lvchange', '-an', 'vgdom0/ours');
      await lv.disconnect();
    }
  });

  it('a striped LV the tools made reads through our mapping as dm-stripe lays it out', async () => {
    const vg = await openVolumeGroup(devs);
    const lv = await vg.openLogicalVolume('str');
    const size = Number(lv.info().sizeSectors) * 512;
    expect(size).toBe(6 * MiB);
    lab.run('lvchange', '-ay', 'vgdom0/str');
    try {
      const dm = '/dev/mapper/vgdom0-str';
      const viaDm = pattern(size, 3);
      writeDm(dm, viaDm);
      dropLoopCaches();
      const ours = Buffer.alloc(size);
      await lv.read(0n, [ours]);
      expect(ours.equals(viaDm)).toBe(true);
      const viaUs = pattern(size, 4);
      await lv.write(0n, [viaUs]);
      await lv.flush();
      lab.run('lvchange', '-an', 'vgdom0/str');
      lab.run('lvchange', '-ay', 'vgdom0/str');
      expect(readDm(dm, size).equals(viaUs)).toBe(true);
    } finally {
      lab.tryRun('lvchange', '-an', 'vgdom0/str');
      await lv.disconnect();
    }
  });
});
