/**
 * Reading volume groups the LVM2 tools made: the LVs and segments we find
 * must be those `lvs --segments` reports, and the bytes an LV device reads
 * must be those at the physical extents LVM2 names (pe_start + extent ×
 * extent size on the loop device), for linear LVs of several segments on
 * two PVs and for a striped LV.
 *
 * Every sector of both PVs' data areas is tagged, before the test, with its
 * PV and sector number (written with fs, not through our code), so each
 * sector read through an LV says where it came from.
 */
import { closeSync, openSync, readSync, writeSync, fsyncSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { openBlockDevice } from '../src/block/registry.js';
import '../src/lvm/flavour.js';
import { openVolumeGroup, type VolumeGroup } from '../src/lvm/volume-group.js';
import { LvmLab, type Loop } from './support/lvm-lab.js';

const MiB = 1024 * 1024;
const EXTENT_SECTORS = 2048; // vgcreate -s 1m

let lab: LvmLab;
let a: Loop;
let b: Loop;
let peStart: number; // sectors, same on both PVs
const devs: FileBlockDevice[] = [];
let vg: VolumeGroup;

function tag(pv: number, sector: number): string {
  return `pv${pv} sector ${sector}`.padEnd(32, '.');
}

function tagDevice(loop: Loop, pv: number, sizeMiB: number): void {
  const buf = Buffer.alloc(sizeMiB * MiB - peStart * 512);
  for (let s = 0; s * 512 < buf.length; s++) buf.write(tag(pv, peStart + s), s * 512, 'latin1');
  const fd = openSync(loop.dev, 'r+');
  try {
    writeSync(fd, buf, 0, buf.length, peStart * 512);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `/dev/loop3:0-2 /dev/loop4:5-6` → [{dev, first, last}]. */
function ranges(text: string): Array<{ dev: string; first: number; last: number }> {
  return text.trim().split(/\s+/).map((r) => {
    const m = /^(.*):(\d+)-(\d+)$/.exec(r)!;
    return { dev: m[1]!, first: Number(m[2]), last: Number(m[3]) };
  });
}

beforeAll(async () => {
  lab = new LvmLab();
  a = lab.attach(64);
  b = lab.attach(64);
  lab.run('pvcreate', a.dev, b.dev);
  lab.run('vgcreate', '-s', '1m', 'vgread', a.dev, b.dev);
  const create = (...args: string[]): string => lab.run('lvcreate', '--driverloaded', 'n', '-an', '-Zn', ...args);
  create('-l', '3', '-n', 'one', 'vgread', a.dev);
  create('-l', '2', '-n', 'two', 'vgread', a.dev);
  // Grows past `two`: a second segment on a, then a third on b.
  lab.run('lvextend', '--driverloaded', 'n', '-l', '7', 'vgread/one', a.dev);
  lab.run('lvextend', '--driverloaded', 'n', '-l', '+2', 'vgread/one', b.dev);
  create('-i', '2', '-I', '64k', '-l', '4', '-n', 'str', 'vgread', a.dev, b.dev);
  peStart = Number(lab.report('pvs', 'pv', '-o', 'pv_name,pe_start', a.dev)[0]!.pe_start) / 512;
  tagDevice(a, 0, 64);
  tagDevice(b, 1, 64);
  devs.push(await FileBlockDevice.open(a.dev), await FileBlockDevice.open(b.dev));
  vg = await openVolumeGroup(devs);
});

afterAll(async () => {
  for (const d of devs) await d.disconnect();
  lab?.close();
});

describe('a VG made by the LVM2 tools', () => {
  it('has the LVs, segments and extents that lvs --segments reports', () => {
    const rows = lab.report('lvs', 'seg', '--segments', '-o', 'lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges,stripes,stripe_size', 'vgread');
    const devOf = new Map(lab.report('pvs', 'pv', '-o', 'pv_name,pv_uuid').map((r) => [r.pv_uuid!, r.pv_name!]));
    const pvDev = new Map(vg.metadata.pvs.map((p) => [p.name, devOf.get(p.id)!]));
    const ours = vg.lvs().flatMap((lv) =>
      lv.segments.map((s) => {
        const per = s.extentCount / s.areas.length;
        return {
          lv_name: lv.name,
          seg_start_pe: String(s.startExtent),
          seg_size_pe: String(s.extentCount),
          seg_pe_ranges: s.areas.map((x) => `${pvDev.get(x.pv)}:${x.extent}-${x.extent + per - 1}`).join(' '),
          stripes: String(s.areas.length),
          stripe_size: String((s.stripeSize ?? 0) * 512),
        };
      }),
    );
    // lvs sorts by LV name; metadata keeps creation order.
    const byName = (x: { lv_name: string }, y: { lv_name: string }): number => (x.lv_name < y.lv_name ? -1 : x.lv_name > y.lv_name ? 1 : 0);
    expect(ours.sort(byName)).toEqual(rows);
    expect(vg.lvs().map((l) => [l.name, l.segments.length, l.linear])).toEqual([
      ['one', 3, true],
      ['two', 1, true],
      ['str', 1, false],
    ]);
    const vgs = lab.report('vgs', 'vg', '-o', 'vg_name,vg_uuid,vg_seqno,vg_extent_size,vg_free_count', 'vgread')[0]!;
    expect([vg.name, vg.id, String(vg.seqno), String(vg.extentBytes), String(vg.freeExtents)]).toEqual([
      vgs.vg_name, vgs.vg_uuid, vgs.vg_seqno, vgs.vg_extent_size, vgs.vg_free_count,
    ]);
  });

  it('reads through a linear LV of three segments on two PVs the sectors at the extents lvs names', async () => {
    const lv = await vg.openLogicalVolume('one', { readOnly: true });
    const rows = lab.report('lvs', 'seg', '--segments', '-o', 'seg_pe_ranges', 'vgread/one');
    const expected: string[] = [];
    for (const r of rows.flatMap((x) => ranges(x.seg_pe_ranges!))) {
      const pv = r.dev === a.dev ? 0 : 1;
      for (let pe = r.first; pe <= r.last; pe++) {
        for (let s = 0; s < EXTENT_SECTORS; s++) expected.push(tag(pv, peStart + pe * EXTENT_SECTORS + s));
      }
    }
    expect(lv.info().sizeSectors).toBe(BigInt(expected.length));
    const buf = new Uint8Array(expected.length * 512);
    // Odd-sized pieces so requests cross segment (and PV) boundaries.
    const pieces = [buf.subarray(0, 3 * MiB + 512 * 7), buf.subarray(3 * MiB + 512 * 7)];
    await lv.read(0n, pieces);
    const got = Array.from({ length: expected.length }, (_, s) => Buffer.from(buf.subarray(s * 512, s * 512 + 32)).toString('latin1'));
    expect(got.filter((t, i) => t !== expected[i]).length).toBe(0);
    await lv.disconnect();
  });

  it('reads through a striped LV in 64 KiB chunks alternating between the stripes lvs names', async () => {
    const lv = await vg.openLogicalVolume('str', { readOnly: true });
    const row = lab.report('lvs', 'seg', '--segments', '-o', 'seg_pe_ranges,stripe_size', 'vgread/str')[0]!;
    const stripes = ranges(row.seg_pe_ranges!);
    const chunk = Number(row.stripe_size) / 512;
    const total = Number(lv.info().sizeSectors);
    expect(total).toBe(4 * EXTENT_SECTORS);
    const buf = new Uint8Array(total * 512);
    await lv.read(0n, [buf]);
    let wrong = 0;
    for (let s = 0; s < total; s++) {
      const c = Math.floor(s / chunk);
      const st = stripes[c % stripes.length]!;
      const phys = peStart + st.first * EXTENT_SECTORS + Math.floor(c / stripes.length) * chunk + (s % chunk);
      if (Buffer.from(buf.subarray(s * 512, s * 512 + 32)).toString('latin1') !== tag(st.dev === a.dev ? 0 : 1, phys)) wrong++;
    }
    expect(wrong).toBe(0);
    await lv.disconnect();
  });

  it('writes through an LV onto exactly the extents lvs names, and nowhere else', async () => {
    const lv = await openBlockDevice('lvm:vgread/two', { on: devs });
    const data = Buffer.alloc(2 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2654435761 >>> 0, i);
    await lv.write(0n, [data]);
    await lv.flush();
    const r = ranges(lab.report('lvs', 'seg', '--segments', '-o', 'seg_pe_ranges', 'vgread/two')[0]!.seg_pe_ranges!)[0]!;
    const fd = openSync(r.dev, 'r');
    const onDisk = Buffer.alloc(2 * MiB + 1024);
    // One sector either side too: they must still carry their tags.
    readSync(fd, onDisk, 0, onDisk.length, (peStart + r.first * EXTENT_SECTORS) * 512 - 512);
    closeSync(fd);
    expect(onDisk.subarray(512, 512 + 2 * MiB).equals(data)).toBe(true);
    expect(onDisk.subarray(0, 32).toString('latin1')).toBe(tag(0, peStart + r.first * EXTENT_SECTORS - 1));
    expect(onDisk.subarray(onDisk.length - 512, onDisk.length - 480).toString('latin1')).toBe(tag(0, peStart + (r.last + 1) * EXTENT_SECTORS));
    await lv.disconnect();
    // The VG's metadata is untouched by I/O: the tools still see the same VG.
    lab.run('vgck', 'vgread');
  });
});
