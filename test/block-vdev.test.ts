/**
 * Oracle: Xen's docs/misc/vbd-interface.txt (man xen-vbd-interface(7)),
 * "Concrete encoding in the VBD interface", and its examples:
 *   d0 d0p0 xvda  disk 0 partition 0;  d1p2 xvdb2;  d536p37 xvdtq37;  sdb3;  hdc2
 * The numbers below are worked out by hand from that table, not by our code.
 */
import { describe, expect, it } from 'vitest';
import { VdevType, decodeVdev, diskLetters, encodeVdev, parseVdev, vdevName } from '../src/block/vdev.js';

describe('parseVdev', () => {
  it.each([
    // 202 << 8 | disk << 4 | partition
    ['xvda', 51712], // 202*256
    ['xvdb', 51728], // + 1*16
    ['xvdb2', 51730], // + 1*16 + 2
    ['xvdp', 51952], // disk 15: + 240
    ['xvdp15', 51967],
    ['d0', 51712],
    ['d0p0', 51712],
    ['d1p2', 51730],
    // 1 << 28 | disk << 8 | partition
    ['xvdq', 268439552], // disk 16: 268435456 + 4096
    ['xvda16', 268435472], // disk 0 partition 16 needs the extended form
    ['d536p37', 268572709], // 268435456 + 536*256 + 37
    ['xvdtq37', 268572709], // t=20th letter, q=17th: (20)*26 + 17 - 1 = 536
    ['xvdaa', 268442112], // disk 26: 268435456 + 26*256
    ['d1048575p255', 536870911], // largest: (1<<29) - 1
    // 8 << 8 | disk << 4 | partition
    ['sda', 2048],
    ['sdb3', 2067], // 2048 + 16 + 3
    // 3 << 8 | disk << 6 | partition ; 22 << 8 | (disk-2) << 6 | partition
    ['hda', 768],
    ['hdb1', 833], // 768 + 64 + 1
    ['hdc2', 5634], // 5632 + 2
    ['hdd63', 5759], // 5632 + 64 + 63
    // numbers pass through
    ['51712', 51712],
    ['0', 0],
    ['4294967295', 4294967295],
  ])('%s is %d', (name, n) => {
    expect(parseVdev(name)).toBe(n);
  });

  it.each([
    '',
    'xvd',
    'xvda0', // partition 0 is written as the bare disk
    'xvda01',
    'XVDA',
    'xvda-1',
    ' xvda',
    'vda',
    '0x51712',
    '051712', // leading zero: octal or decimal? refused
    '4294967296', // beyond 32 bits
    '-1',
    'd1048576', // beyond the extended form's 20 disk bits
    'd0p256', // beyond 8 partition bits
    'sdq', // sd only encodes disks up to 15
    'sda16',
    'hde', // hd only disks 0..3
    'hda64',
  ])('refuses %j naming the field', (text) => {
    expect(() => parseVdev(text, 'spec')).toThrow(expect.objectContaining({ code: 'invalid-argument', field: 'spec' }));
  });
});

describe('encodeVdev / decodeVdev / vdevName', () => {
  it('round-trips every xvd disk across the compact/extended boundary', () => {
    for (let disk = 0; disk < 40; disk++) {
      for (const partition of [0, 1, 15, 16, 255]) {
        const n = encodeVdev({ type: VdevType.Xvd, disk, partition });
        const compact = disk <= 15 && partition <= 15;
        expect(n >= 1 << 28).toBe(!compact);
        expect(decodeVdev(n)).toEqual({ type: VdevType.Xvd, disk, partition });
        expect(parseVdev(vdevName(n)!)).toBe(n);
      }
    }
  });

  it('names numbers conventionally', () => {
    expect(vdevName(51712)).toBe('xvda');
    expect(vdevName(51730)).toBe('xvdb2');
    expect(vdevName(268572709)).toBe('xvdtq37');
    expect(vdevName(2067)).toBe('sdb3');
    expect(vdevName(5634)).toBe('hdc2');
  });

  it('has no meaning for deprecated or reserved numbers', () => {
    expect(decodeVdev(2 << 28)).toBeUndefined(); // reserved for future use
    expect(decodeVdev(7 << 8)).toBeUndefined(); // deprecated
    expect(vdevName(-1)).toBeUndefined();
    expect(vdevName(1.5)).toBeUndefined();
  });

  it('disk letters are bijective base 26', () => {
    expect(['a', 'z', 'aa', 'az', 'ba', 'zz', 'aaa'].map((_, i) => diskLetters([0, 25, 26, 51, 52, 701, 702][i]!))).toEqual([
      'a', 'z', 'aa', 'az', 'ba', 'zz', 'aaa',
    ]);
  });
});
