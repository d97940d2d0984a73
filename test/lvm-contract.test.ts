/**
 * An LV device passes the same BlockDevice contract as every flavour. The
 * LV under test is fragmented on purpose (one segment per extent, with a
 * spacer LV between each), so every multi-sector request crosses segment
 * boundaries. The PV is a VG the LVM2 tools made, copied into a memory
 * device; `backing()` reads the LV's extents straight from the PV's bytes.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { afterAll } from 'vitest';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { openVolumeGroup } from '../src/lvm/volume-group.js';
import { describeBlockContract } from './block-contract.js';
import { LvmLab } from './support/lvm-lab.js';

const EXTENT = 8192; // vgcreate -s 8k
let lab: LvmLab | undefined;
let template: Promise<Uint8Array> | undefined;

/** A 4 MiB PV in VG `vgc`, no LVs, made by the tools (once per file). */
function pvTemplate(): Promise<Uint8Array> {
  template ??= (async () => {
    lab = new LvmLab();
    const l = lab.attach(4);
    lab.run('pvcreate', l.dev);
    lab.run('vgcreate', '-s', '8k', 'vgc', l.dev);
    const fd = openSync(l.dev, 'r');
    const b = Buffer.alloc(4 << 20);
    readSync(fd, b, 0, b.length, 0);
    closeSync(fd);
    return new Uint8Array(b);
  })();
  return template;
}

afterAll(() => lab?.close());

describeBlockContract('lvm', async ({ sizeBytes, sectorSize, readOnly, content }) => {
  const pv = MemoryBlockDevice.fromBytes((await pvTemplate()).slice(), { sectorSize });
  const vg = await openVolumeGroup(pv);
  const extents = sizeBytes / EXTENT;
  await vg.createLogicalVolume('subject', { extents: 1 });
  for (let i = 1; i < extents; i++) {
    await vg.createLogicalVolume(`spacer${i}`, { extents: 1 });
    await vg.extendLogicalVolume('subject', { extents: i + 1 });
  }
  const lv = vg.lv('subject');
  if (lv.segments.length !== extents) throw new Error(`expected ${extents} segments, got ${lv.segments.length}`);
  const peStart = Number(vg.metadata.pvs[0]!.peStart) * 512;
  const where = (ext: number): number => peStart + lv.segments[ext]!.areas[0]!.extent * EXTENT;
  if (content) for (let e = 0; e < extents; e++) pv.bytes.set(content.subarray(e * EXTENT, (e + 1) * EXTENT), where(e));
  const dev = await vg.openLogicalVolume('subject', { readOnly });
  return {
    dev,
    backing: async () => {
      const out = new Uint8Array(sizeBytes);
      for (let e = 0; e < extents; e++) out.set(pv.bytes.subarray(where(e), where(e) + EXTENT), e * EXTENT);
      return out;
    },
    cleanup: async () => {
      await dev.disconnect();
      await pv.disconnect();
    },
  };
});
