/**
 * Bad input to the LVM layer: devices that are not PVs, corrupt labels,
 * headers and metadata text, absurd extents, a metadata area too small for
 * the next copy, too few free extents, a concurrent writer. Each gets its
 * typed error with a stable code, and the device's bytes are unchanged.
 *
 * The PVs are made by the LVM2 tools on loop devices, then copied into
 * memory devices; the corruptions are made by this file's own byte
 * surgery, with a bitwise CRC written here from LVM2's definition (checked
 * below against the checksums LVM2 itself wrote).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { openVolumeGroup } from '../src/lvm/volume-group.js';
import { LvmLab } from './support/lvm-lab.js';

/** LVM2 calc_crc, bit by bit: reflected 0xEDB88320, seed 0xf597a6cf, no final XOR. */
function lvmCrc(bytes: Uint8Array, seed = 0xf597a6cf): number {
  let crc = seed >>> 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return crc >>> 0;
}

let lab: LvmLab;
const images: Record<'plain' | 'two' | 'small', { bytes: Uint8Array; mdas: number[] }> = {} as never;

function readImage(dev: string, bytes: number): Uint8Array {
  const fd = openSync(dev, 'r');
  const b = Buffer.alloc(bytes);
  readSync(fd, b, 0, bytes, 0);
  closeSync(fd);
  return new Uint8Array(b);
}

beforeAll(() => {
  lab = new LvmLab();
  const make = (name: keyof typeof images, pvArgs: string[], vgArgs: string[], lvs: Array<[string, number]>): void => {
    const l = lab.attach(16);
    lab.run('pvcreate', ...pvArgs, l.dev);
    lab.run('vgcreate', ...vgArgs, `vg${name}`, l.dev);
    for (const [lv, n] of lvs) lab.run('lvcreate', '--driverloaded', 'n', '-an', '-Zn', '-l', String(n), '-n', lv, `vg${name}`);
    const mdas = [...lab.run('pvck', l.dev).matchAll(/metadata area: offset=(\d+)/g)].map((m) => Number(m[1]));
    images[name] = { bytes: readImage(l.dev, 16 << 20), mdas };
  };
  make('plain', [], ['-s', '1m'], [['l1', 3], ['l2', 2]]);
  make('two', ['--pvmetadatacopies', '2'], ['-s', '1m'], [['l1', 3]]);
  make('small', ['--metadatasize', '4k', '--dataalignment', '64k'], ['-s', '64k'], []);
});

afterAll(() => lab?.close());

function device(name: keyof typeof images): { dev: MemoryBlockDevice; bytes: Uint8Array; mdas: number[] } {
  const bytes = images[name].bytes.slice();
  return { dev: MemoryBlockDevice.fromBytes(bytes), bytes, mdas: images[name].mdas };
}

/** Replaces the committed text of the area at `mda` by transform(text), fixing every checksum (no wrap: fresh VGs). */
function rewriteText(bytes: Uint8Array, mda: number, transform: (text: string) => string, opts: { keepChecksum?: boolean } = {}): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const off = Number(dv.getBigUint64(mda + 40, true));
  const size = Number(dv.getBigUint64(mda + 48, true));
  const text = Buffer.from(bytes.subarray(mda + off, mda + off + size - 1)).toString('latin1');
  const next = Buffer.concat([Buffer.from(transform(text), 'latin1'), Buffer.alloc(1)]);
  bytes.fill(0, mda + off, mda + off + Math.max(size, next.length));
  bytes.set(next, mda + off);
  dv.setBigUint64(mda + 48, BigInt(next.length), true);
  if (!opts.keepChecksum) dv.setUint32(mda + 56, lvmCrc(next), true);
  dv.setUint32(mda, lvmCrc(bytes.subarray(mda + 4, mda + 512)), true);
}

async function expectRejects(p: Promise<unknown>, code: string, extra: Record<string, unknown> = {}): Promise<void> {
  await expect(p).rejects.toMatchObject({ code, ...extra });
}

function expectUnchanged(before: Uint8Array, dev: MemoryBlockDevice): void {
  expect(Buffer.compare(Buffer.from(before), Buffer.from(dev.bytes))).toBe(0);
}

describe('LVM bad input', () => {
  it('our test CRC is LVM2\'s: it reproduces the label and mda_header checksums the tools wrote', () => {
    const { bytes, mdas } = device('plain');
    const dv = new DataView(bytes.buffer);
    expect(lvmCrc(bytes.subarray(512 + 20, 1024))).toBe(dv.getUint32(512 + 16, true));
    expect(lvmCrc(bytes.subarray(mdas[0]! + 4, mdas[0]! + 512))).toBe(dv.getUint32(mdas[0]!, true));
  });

  it('a device without a label is invalid-argument naming the device, and is not written', async () => {
    const zeros = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
    await expectRejects(openVolumeGroup(zeros), 'invalid-argument', { field: 'device' });
    expect(zeros.bytes.every((b) => b === 0)).toBe(true);
    await expectRejects(openVolumeGroup(new MemoryBlockDevice({ sizeBytes: 512 })), 'invalid-argument', { field: 'device' });
  });

  it('the same PV given twice is invalid-argument naming devices', async () => {
    const { dev } = device('plain');
    await expectRejects(openVolumeGroup([dev, MemoryBlockDevice.fromBytes(dev.bytes.slice())]), 'invalid-argument', { field: 'devices' });
  });

  it('a PV in no VG is invalid-argument', async () => {
    const l = lab.attach(8);
    lab.run('pvcreate', l.dev);
    const dev = MemoryBlockDevice.fromBytes(readImage(l.dev, 8 << 20));
    await expectRejects(openVolumeGroup(dev), 'invalid-argument', { field: 'device' });
  });

  const corruptions: Array<[string, (b: Uint8Array, mdas: number[]) => void, string]> = [
    ['a label whose checksum does not match', (b) => void (b[512 + 40] ^= 1), 'label'],
    ['a label that names another sector', (b) => void (b[512 + 8] = 3), 'label'],
    ['an mda_header whose checksum does not match', (b, m) => void (b[m[0]! + 30] ^= 1), 'mda_header'],
    ['metadata text whose checksum does not match', (b, m) => {
      const off = Number(new DataView(b.buffer).getBigUint64(m[0]! + 40, true));
      b[m[0]! + off + 10] ^= 0x20;
    }, 'metadata'],
    ['a metadata location outside its area', (b, m) => {
      const dv = new DataView(b.buffer);
      dv.setBigUint64(m[0]! + 40, 1n << 40n, true);
      dv.setUint32(m[0]!, lvmCrc(b.subarray(m[0]! + 4, m[0]! + 512)), true);
    }, 'mda_header'],
    ['truncated metadata text (with a valid checksum)', (b, m) => rewriteText(b, m[0]!, (t) => t.slice(0, t.indexOf('logical_volumes') + 40)), 'metadata'],
    ['an LV with more extents than its PV has', (b, m) => rewriteText(b, m[0]!, (t) => t.replace('extent_count = 3', 'extent_count = 3000000')), 'metadata'],
    ['a stripe starting past the PV\'s last extent', (b, m) => rewriteText(b, m[0]!, (t) => t.replace(/"pv0", 3\b/, '"pv0", 4000000000')), 'metadata'],
    ['two LVs on the same extents', (b, m) => rewriteText(b, m[0]!, (t) => t.replace(/"pv0", 3\b/, '"pv0", 1')), 'metadata'],
    ['a segment naming an unknown PV', (b, m) => rewriteText(b, m[0]!, (t) => t.replace('"pv0", 0', '"pv7", 0')), 'metadata'],
    ['extents past the end of the device', (b, m) => rewriteText(b, m[0]!, (t) => t.replace(/pe_count = \d+/, 'pe_count = 100').replace(/dev_size = \d+/, 'dev_size = 409600')), 'metadata'],
    ['a syntax error', (b, m) => rewriteText(b, m[0]!, (t) => t.replace('seqno =', 'seqno')), 'metadata'],
    ['an extent_size of 0', (b, m) => rewriteText(b, m[0]!, (t) => t.replace(/extent_size = \d+/, 'extent_size = 0')), 'metadata'],
  ];
  for (const [what, corrupt, part] of corruptions) {
    it(`${what} is corrupt (${part}), and nothing is written`, async () => {
      const { dev, bytes, mdas } = device('plain');
      corrupt(bytes, mdas);
      const before = bytes.slice();
      await expectRejects(openVolumeGroup(dev), 'corrupt', { part });
      expectUnchanged(before, dev);
    });
  }

  it('with one of two metadata areas unreadable, the VG reads from the other but refuses changes, writing nothing', async () => {
    const { dev, bytes, mdas } = device('two');
    expect(mdas.length).toBe(2);
    bytes[mdas[1]! + 30] ^= 1;
    const before = bytes.slice();
    const vg = await openVolumeGroup(dev);
    expect(vg.lvs().map((l) => l.name)).toEqual(['l1']);
    await expectRejects(vg.createLogicalVolume('new', { extents: 1 }), 'corrupt', { part: 'mda_header' });
    await expectRejects(vg.removeLogicalVolume('l1'), 'corrupt');
    expectUnchanged(before, dev);
  });

  it('a newer copy wins over an older one, as in LVM2', async () => {
    const { dev, bytes, mdas } = device('two');
    const seqno = (await openVolumeGroup(MemoryBlockDevice.fromBytes(bytes.slice()))).seqno;
    // Copy 2 one change ahead: l1 renamed l9.
    rewriteText(bytes, mdas[1]!, (t) => t.replace(/seqno = \d+/, `seqno = ${seqno + 1}`).replace(/\bl1 \{/, 'l9 {'));
    const vg = await openVolumeGroup(dev);
    expect([vg.seqno, vg.lvs().map((l) => l.name)]).toEqual([seqno + 1, ['l9']]);
  });

  it('metadata that outgrows the metadata area is no-space, and that change writes nothing', async () => {
    const { dev } = device('small');
    const vg = await openVolumeGroup(dev);
    let refused: unknown;
    let made = 0;
    for (let i = 0; i < 500 && refused === undefined; i++) {
      const before = dev.bytes.slice();
      try {
        await vg.createLogicalVolume(`lv${i}_${'m'.repeat(110)}`, { extents: 1 });
        made++;
      } catch (err) {
        refused = err;
        expectUnchanged(before, dev);
      }
    }
    expect(refused).toMatchObject({ code: 'no-space' });
    expect((refused as Error).message).toMatch(/exceeds the \d+-byte maximum/);
    expect(made).toBeGreaterThan(10);
    // The VG is still usable: a removal shrinks the text and fits.
    await vg.removeLogicalVolume(`lv0_${'m'.repeat(110)}`);
    expect((await openVolumeGroup(dev)).lvs().length).toBe(made - 1);
  });

  it('too few free extents is no-space; bad names and sizes are invalid-argument; nothing is written', async () => {
    const { dev, bytes } = device('plain');
    const before = bytes.slice();
    const vg = await openVolumeGroup(dev);
    await expectRejects(vg.createLogicalVolume('big', { extents: vg.freeExtents + 1 }), 'no-space');
    await expectRejects(vg.extendLogicalVolume('l1', { extents: 3 + vg.freeExtents + 1 }), 'no-space');
    for (const name of ['', '-x', '..', 'a/b', 'snapshot1', 'x_mlog', 'x'.repeat(128), 'l1']) {
      await expectRejects(vg.createLogicalVolume(name, { extents: 1 }), 'invalid-argument', { field: 'name' });
    }
    await expectRejects(vg.createLogicalVolume('ok', { extents: 0 }), 'invalid-argument', { field: 'size' });
    await expectRejects(vg.createLogicalVolume('ok', { bytes: -1 }), 'invalid-argument', { field: 'size' });
    await expectRejects(vg.extendLogicalVolume('l1', { extents: 2 }), 'invalid-argument', { field: 'size' });
    await expectRejects(vg.shrinkLogicalVolume('l1', { extents: 3 }), 'invalid-argument', { field: 'size' });
    await expectRejects(vg.removeLogicalVolume('nope'), 'invalid-argument', { field: 'name' });
    await expectRejects(vg.openLogicalVolume('nope'), 'invalid-argument', { field: 'name' });
    expectUnchanged(before, dev);
  });

  it('an LV of a type we do not map cannot be opened, and its VG cannot be changed (unsupported); reading the rest works', async () => {
    const { dev, bytes, mdas } = device('plain');
    rewriteText(bytes, mdas[0]!, (t) => t.replace(/(l2 \{[\s\S]*?)type = "striped"/, '$1type = "mirror"'));
    const before = bytes.slice();
    const vg = await openVolumeGroup(dev);
    expect(vg.lvs().map((l) => [l.name, l.mappable])).toEqual([['l1', true], ['l2', false]]);
    await expectRejects(vg.openLogicalVolume('l2'), 'unsupported');
    await expectRejects(vg.createLogicalVolume('x', { extents: 1 }), 'unsupported');
    const l1 = await vg.openLogicalVolume('l1');
    await l1.read(0n, [new Uint8Array(4096)]);
    await l1.disconnect();
    expectUnchanged(before, dev);
  });

  it('a VG whose status lacks WRITE refuses changes with read-only', async () => {
    const { dev, bytes, mdas } = device('plain');
    rewriteText(bytes, mdas[0]!, (t) => t.replace('status = ["RESIZEABLE", "READ", "WRITE"]', 'status = ["RESIZEABLE", "READ"]'));
    const before = bytes.slice();
    const vg = await openVolumeGroup(dev);
    await expectRejects(vg.createLogicalVolume('x', { extents: 1 }), 'read-only');
    expectUnchanged(before, dev);
  });

  it('a VG opened without all its PVs reads the LVs it can map but refuses changes (unsupported)', async () => {
    const l1 = lab.attach(8);
    const l2 = lab.attach(8);
    lab.run('pvcreate', l1.dev, l2.dev);
    lab.run('vgcreate', '-s', '1m', 'vgpart', l1.dev, l2.dev);
    lab.run('lvcreate', '--driverloaded', 'n', '-an', '-Zn', '-l', '2', '-n', 'here', 'vgpart', l1.dev);
    lab.run('lvcreate', '--driverloaded', 'n', '-an', '-Zn', '-l', '2', '-n', 'there', 'vgpart', l2.dev);
    const dev = MemoryBlockDevice.fromBytes(readImage(l1.dev, 8 << 20));
    const before = dev.bytes.slice();
    const vg = await openVolumeGroup(dev);
    expect(vg.missingPvs).toEqual(['pv1']);
    expect(vg.lvs().map((l) => [l.name, l.mappable])).toEqual([['here', true], ['there', false]]);
    await expectRejects(vg.openLogicalVolume('there'), 'unsupported');
    await expectRejects(vg.removeLogicalVolume('here'), 'unsupported');
    expectUnchanged(before, dev);
  });

  it('a VG changed by another writer since it was read refuses to write over it (io)', async () => {
    const { dev } = device('plain');
    const first = await openVolumeGroup(dev);
    const second = await openVolumeGroup(dev);
    await first.createLogicalVolume('mine', { extents: 1 });
    const after = dev.bytes.slice();
    await expectRejects(second.createLogicalVolume('theirs', { extents: 1 }), 'io');
    expectUnchanged(after, dev);
  });

  it('the lvm: flavour checks its spec and its on option', async () => {
    const { openBlockDevice } = await import('../src/block/registry.js');
    await import('../src/lvm/flavour.js');
    const { dev } = device('plain');
    await expectRejects(openBlockDevice('lvm:vgplain', { on: dev }), 'invalid-argument', { field: 'spec' });
    await expectRejects(openBlockDevice('lvm:vgplain/l1', {}), 'invalid-argument', { field: 'on' });
    await expectRejects(openBlockDevice('lvm:other/l1', { on: dev }), 'invalid-argument', { field: 'spec' });
    const lv = await openBlockDevice('lvm:vgplain/l1', { on: dev, readOnly: true });
    expect(lv.info()).toMatchObject({ readWrite: false, sizeSectors: 3n * 2048n });
    await expectRejects(lv.write(0n, [new Uint8Array(512)]), 'read-only');
    await lv.disconnect();
    await expectRejects(lv.read(0n, [new Uint8Array(512)]), 'disconnected');
  });
});
