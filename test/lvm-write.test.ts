/**
 * Changing volume groups with our library and asking the LVM2 tools what
 * they see: after every create, extend, shrink and remove, `lvs --segments`
 * must report exactly our LVs and extents, `vgs` our sequence number and
 * free count, and `vgck` and `pvck --dump headers` must find nothing wrong
 * (pvck checks every checksum and that the precommit slot was cleared).
 * PV `a` has two small metadata areas (one at each end), so both copies are
 * written and the circular buffer wraps within a few dozen changes.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { openVolumeGroup, type VolumeGroup } from '../src/lvm/volume-group.js';
import { LvmLab, type Loop } from './support/lvm-lab.js';

let lab: LvmLab;
let a: Loop;
let b: Loop;
let devs: FileBlockDevice[] = [];

/** What the tools report, in our terms: name → "dev:first-last …" per segment. */
function toolsView(vgName: string): Array<{ lv: string; start: number; size: number; ranges: string }> {
  const rows = lab.tryRun('lvs', '--driverloaded', 'n', '--reportformat', 'json', '--segments', '-o', 'lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges', vgName);
  expect(rows.status, rows.stderr).toBe(0);
  const segs = (JSON.parse(rows.stdout) as { report: Array<{ seg: Array<Record<string, string>> }> }).report[0]!.seg;
  return segs.map((r) => ({ lv: r.lv_name!, start: Number(r.seg_start_pe), size: Number(r.seg_size_pe), ranges: r.seg_pe_ranges! }));
}

function ourView(vg: VolumeGroup): Array<{ lv: string; start: number; size: number; ranges: string }> {
  const devOf = new Map(lab.report('pvs', 'pv', '-o', 'pv_name,pv_uuid').map((r) => [r.pv_uuid!, r.pv_name!]));
  const pvDev = new Map(vg.metadata.pvs.map((p) => [p.name, devOf.get(p.id)!]));
  return vg
    .lvs()
    .flatMap((lv) => lv.segments.map((s) => ({ lv: lv.name, start: s.startExtent, size: s.extentCount, ranges: s.areas.map((x) => `${pvDev.get(x.pv)}:${x.extent}-${x.extent + s.extentCount / s.areas.length - 1}`).join(' ') })))
    .sort((x, y) => (x.lv < y.lv ? -1 : x.lv > y.lv ? 1 : x.start - y.start));
}

/** The tools accept the VG and see exactly what we wrote. */
function expectToolsAgree(vg: VolumeGroup): void {
  const ck = lab.tryRun('vgck', vg.name);
  expect(ck.status, ck.stderr).toBe(0);
  expect(ck.stderr).not.toMatch(/WARNING|rror/);
  for (const l of [a, b]) {
    const pv = lab.tryRun('pvck', '--dump', 'headers', l.dev);
    expect(pv.status, pv.stdout + pv.stderr).toBe(0);
    expect(pv.stdout).not.toContain('CHECK:');
  }
  expect(toolsView(vg.name)).toEqual(ourView(vg));
  const v = lab.report('vgs', 'vg', '-o', 'vg_seqno,vg_free_count,lv_count', vg.name)[0]!;
  expect([Number(v.vg_seqno), Number(v.vg_free_count), Number(v.lv_count)]).toEqual([vg.seqno, vg.freeExtents, vg.lvs().length]);
}

/** slot 0 of the mda_header at `at` on `dev`, read with fs (offset, size from the area start). */
function slot0(dev: string, at: number): { offset: number; size: number; areaSize: number } {
  const fd = openSync(dev, 'r');
  const h = Buffer.alloc(512);
  readSync(fd, h, 0, 512, at);
  closeSync(fd);
  return { areaSize: Number(h.readBigUInt64LE(32)), offset: Number(h.readBigUInt64LE(40)), size: Number(h.readBigUInt64LE(48)) };
}

/** The committed text of the area at `at`, read with fs (following a wrap). */
function copyText(dev: string, at: number): string {
  const r = slot0(dev, at);
  const fd = openSync(dev, 'r');
  const text = Buffer.alloc(r.size);
  const first = Math.min(r.size, r.areaSize - r.offset);
  readSync(fd, text, 0, first, at + r.offset);
  if (first < r.size) readSync(fd, text, first, r.size - first, at + 512);
  closeSync(fd);
  return text.toString('latin1');
}

beforeAll(async () => {
  lab = new LvmLab();
  a = lab.attach(64);
  b = lab.attach(32);
  lab.run('pvcreate', '--metadatasize', '4k', '--dataalignment', '64k', '--pvmetadatacopies', '2', a.dev);
  lab.run('pvcreate', b.dev);
  lab.run('vgcreate', '-s', '1m', 'vgw', a.dev, b.dev);
  devs = [await FileBlockDevice.open(a.dev), await FileBlockDevice.open(b.dev)];
});

afterAll(async () => {
  for (const d of devs) await d.disconnect();
  lab?.close();
});

describe('changes made by our library, as the LVM2 tools see them', () => {
  it('create, extend (in place and in a new segment), shrink and remove linear LVs', async () => {
    const vg = await openVolumeGroup(devs);
    const seq0 = vg.seqno;
    const alpha = await vg.createLogicalVolume('alpha', { extents: 5 });
    expect(alpha.sizeBytes).toBe(5n << 20n);
    expect(vg.seqno).toBe(seq0 + 1);
    expectToolsAgree(vg);

    await vg.createLogicalVolume('beta', { bytes: 3 * 1024 * 1024 - 100 }); // rounds up to 3 extents
    expect(vg.lv('beta').extentCount).toBe(3);
    expectToolsAgree(vg);

    // alpha cannot grow in place (beta follows it): a second segment.
    await vg.extendLogicalVolume('alpha', { extents: 9 });
    expect(vg.lv('alpha').segments.length).toBe(2);
    expectToolsAgree(vg);

    // Down to 4 extents: the second segment goes, the first is cut.
    await vg.shrinkLogicalVolume('alpha', { extents: 4 });
    expect(vg.lv('alpha').segments.map((s) => s.extentCount)).toEqual([4]);
    expectToolsAgree(vg);

    // The extent after beta is free again: beta grows in place, one segment.
    await vg.extendLogicalVolume('beta', { extents: 4 });
    expect(vg.lv('beta').segments.length).toBe(1);
    expectToolsAgree(vg);

    await vg.removeLogicalVolume('beta');
    expectToolsAgree(vg);
    expect(vg.seqno).toBe(seq0 + 6);

    // Larger than PV a's free space: spills onto b.
    const free = vg.freeExtents;
    await vg.createLogicalVolume('gamma', { extents: free });
    expect(vg.freeExtents).toBe(0);
    expectToolsAgree(vg);
    await vg.removeLogicalVolume('gamma');
    await vg.removeLogicalVolume('alpha');
    expectToolsAgree(vg);
  });

  it('keeps an LV\'s data across extend and shrink, and open devices follow the new size', async () => {
    const vg = await openVolumeGroup(devs);
    await vg.createLogicalVolume('data', { extents: 2 });
    await vg.createLogicalVolume('fence', { extents: 1 });
    const dev = await vg.openLogicalVolume('data');
    const sizes: bigint[] = [];
    dev.onResize((i) => sizes.push(i.sizeSectors));
    const payload = new Uint8Array(2 << 20).map((_, i) => (i * 7 + 3) & 0xff);
    await dev.write(0n, [payload]);
    await vg.extendLogicalVolume('data', { extents: 5 });
    const tail = new Uint8Array(3 << 20).fill(0x5a);
    await dev.write(4096n, [tail]);
    const back = new Uint8Array(5 << 20);
    await dev.read(0n, [back]);
    expect(Buffer.from(back.subarray(0, 2 << 20)).equals(Buffer.from(payload))).toBe(true);
    expect(back.subarray(2 << 20).every((x) => x === 0x5a)).toBe(true);
    await vg.shrinkLogicalVolume('data', { extents: 1 });
    await expect(dev.read(2048n, [new Uint8Array(512)])).rejects.toMatchObject({ code: 'out-of-range' });
    expect(sizes).toEqual([5n * 2048n, 2048n]);
    await expect(vg.removeLogicalVolume('data')).rejects.toMatchObject({ code: 'invalid-argument' });
    await dev.disconnect();
    await vg.removeLogicalVolume('data');
    await vg.removeLogicalVolume('fence');
    expectToolsAgree(vg);
  });

  it('reads what the tools changed after us, and the tools read what we changed after them', async () => {
    lab.run('lvcreate', '--driverloaded', 'n', '-an', '-Zn', '-l', '2', '-n', 'fromtools', 'vgw', b.dev);
    const vg = await openVolumeGroup(devs);
    expect(vg.lv('fromtools').extentCount).toBe(2);
    await vg.extendLogicalVolume('fromtools', { extents: 6 });
    expectToolsAgree(vg);
    lab.run('lvextend', '--driverloaded', 'n', '-l', '+1', 'vgw/fromtools');
    const again = await openVolumeGroup(devs);
    expect(again.lv('fromtools').extentCount).toBe(7);
    await again.removeLogicalVolume('fromtools');
    expectToolsAgree(again);
  });

  it('wraps the circular metadata buffer and keeps both copies valid', async () => {
    const vg = await openVolumeGroup(devs);
    const first = slot0(a.dev, 4096);
    let wrapped = false; // a copy straddled the end of the area
    let restarted = false; // a copy started back at the beginning
    let last = first;
    for (let i = 0; i < 80 && !(wrapped && restarted); i++) {
      // Long names make each copy large so the area wraps sooner.
      if (i % 2 === 0) await vg.createLogicalVolume(`lv${i}_${'x'.repeat(100)}`, { extents: 1 });
      else await vg.removeLogicalVolume(`lv${i - 1}_${'x'.repeat(100)}`);
      const now = slot0(a.dev, 4096);
      if (now.offset + now.size > now.areaSize && !wrapped) {
        wrapped = true;
        // The tools must read a copy that continues after the header.
        expectToolsAgree(vg);
      }
      if (now.offset < last.offset) restarted = true;
      last = now;
      if (i % 10 === 0) expectToolsAgree(vg);
    }
    expect([wrapped, restarted]).toEqual([true, true]);
    expectToolsAgree(vg);
    // The second copy (end of PV a) holds the same text as the first.
    const offsets = [...lab.run('pvck', a.dev).matchAll(/metadata area: offset=(\d+)/g)].map((m) => Number(m[1]));
    expect(offsets.length).toBe(2);
    expect(copyText(a.dev, offsets[1]!)).toBe(copyText(a.dev, offsets[0]!));
    expect(copyText(a.dev, offsets[0]!)).toContain(`seqno = ${vg.seqno}`);
    const again = await openVolumeGroup(devs);
    expect(again.seqno).toBe(vg.seqno);
  });
});

describe('a PV with 4096-byte logical sectors', () => {
  it('takes our changes (label and headers are read-modify-written inside 4 KiB sectors) and the tools agree', async () => {
    const lab4 = new LvmLab();
    let dev: FileBlockDevice | undefined;
    try {
      const l = lab4.attach(32, 4096);
      lab4.run('pvcreate', l.dev);
      lab4.run('vgcreate', '-s', '1m', 'vg4k', l.dev);
      dev = await FileBlockDevice.open(l.dev, { sectorSize: 4096 });
      const vg = await openVolumeGroup(dev);
      await vg.createLogicalVolume('four', { extents: 3 });
      await vg.createLogicalVolume('k', { extents: 2 });
      await vg.extendLogicalVolume('four', { extents: 5 });
      const lv = await vg.openLogicalVolume('four');
      expect(lv.info()).toMatchObject({ sectorSize: 4096, sizeSectors: 5n * 256n });
      const data = new Uint8Array(5 << 20).map((_, i) => (i >> 12) & 0xff);
      await lv.write(0n, [data]);
      const back = new Uint8Array(5 << 20);
      await lv.read(0n, [back]);
      expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
      await lv.disconnect();
      expect(lab4.run('vgck', 'vg4k')).toBe('');
      const pv = lab4.tryRun('pvck', '--dump', 'headers', l.dev);
      expect(pv.stdout).not.toContain('CHECK:');
      const segs = lab4.report('lvs', 'seg', '--segments', '-o', 'lv_name,seg_size_pe', 'vg4k');
      expect(segs.map((r) => `${r.lv_name}:${r.seg_size_pe}`)).toEqual(['four:3', 'four:2', 'k:2']);
    } finally {
      await dev?.disconnect();
      lab4.close();
    }
  });
});

describe('a PV whose metadata area is ignored (pvchange --metadataignore y)', () => {
  it('is left alone by our changes, as LVM2 leaves it, and the tools agree', async () => {
    const labI = new LvmLab();
    const opened: FileBlockDevice[] = [];
    try {
      const p = labI.attach(16);
      const q = labI.attach(16);
      labI.run('pvcreate', p.dev, q.dev);
      labI.run('vgcreate', '-s', '1m', 'vgign', p.dev, q.dev);
      labI.run('pvchange', '--metadataignore', 'y', q.dev);
      const qArea = Number(/metadata area: offset=(\d+)/.exec(labI.run('pvck', q.dev))![1]);
      const qBefore = slot0(q.dev, qArea);
      opened.push(await FileBlockDevice.open(p.dev), await FileBlockDevice.open(q.dev));
      const vg = await openVolumeGroup(opened);
      await vg.createLogicalVolume('span', { extents: 20 }); // more than p holds: uses q's extents too
      expect(new Set(vg.lv('span').segments.flatMap((s) => s.areas.map((x) => x.pv)))).toEqual(new Set(['pv0', 'pv1']));
      expect(slot0(q.dev, qArea)).toEqual(qBefore);
      expect(labI.tryRun('vgck', 'vgign').status).toBe(0);
      const segs = labI.report('lvs', 'seg', '--segments', '-o', 'lv_name,seg_size_pe', 'vgign');
      expect(segs.map((r) => Number(r.seg_size_pe)).reduce((x, y) => x + y, 0)).toBe(20);
      const ign = labI.report('pvs', 'pv', '-o', 'pv_name,pv_mda_used_count', q.dev)[0]!;
      expect(Number(ign.pv_mda_used_count)).toBe(0);
    } finally {
      for (const d of opened) await d.disconnect();
      labI.close();
    }
  });
});
