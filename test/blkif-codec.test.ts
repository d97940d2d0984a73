// The convenience codec (src/blkif). Expected bytes come from an independent
// little builder below, written from xen/io/blkif.h's layouts (gcc -m64/-m32
// offsets), never from the encoder under test.
import { describe, expect, it } from 'vitest';
import { blkif } from '../src/index.js';
import type { BlkifAbi, BlkifRequest } from '../src/blkif/index.js';

type Abi = BlkifAbi;
const ABIS: Abi[] = ['x86_64-abi', 'x86_32-abi'];
const is32 = (abi: Abi) => abi === 'x86_32-abi';

/** Byte builder: a zeroed slot plus little-endian field writers. */
function slot(abi: Abi): { bytes: Uint8Array; dv: DataView } {
  const bytes = new Uint8Array(is32(abi) ? 108 : 112);
  return { bytes, dv: new DataView(bytes.buffer) };
}
function expectedSegReq(abi: Abi, op: number, id: bigint, handle: number, sector: bigint, segs: [number, number, number][]): Uint8Array {
  const { bytes, dv } = slot(abi);
  dv.setUint8(0, op); dv.setUint8(1, segs.length); dv.setUint16(2, handle, true);
  dv.setBigUint64(is32(abi) ? 4 : 8, id, true);
  dv.setBigUint64(is32(abi) ? 12 : 16, sector, true);
  segs.forEach(([gref, first, last], i) => {
    const at = (is32(abi) ? 20 : 24) + 8 * i;
    dv.setUint32(at, gref, true); dv.setUint8(at + 4, first); dv.setUint8(at + 5, last);
  });
  return bytes;
}
function expectedDiscard(abi: Abi, id: bigint, handle: number, sector: bigint, nr: bigint, secure: boolean): Uint8Array {
  const { bytes, dv } = slot(abi);
  dv.setUint8(0, 5); dv.setUint8(1, secure ? 1 : 0); dv.setUint16(2, handle, true);
  dv.setBigUint64(is32(abi) ? 4 : 8, id, true);
  dv.setBigUint64(is32(abi) ? 12 : 16, sector, true);
  dv.setBigUint64(is32(abi) ? 20 : 24, nr, true);
  return bytes;
}
function expectedIndirect(abi: Abi, iop: number, id: bigint, handle: number, sector: bigint, nr: number, grefs: number[]): Uint8Array {
  const { bytes, dv } = slot(abi);
  dv.setUint8(0, 6); dv.setUint8(1, iop); dv.setUint16(2, nr, true);
  dv.setBigUint64(is32(abi) ? 4 : 8, id, true);
  dv.setBigUint64(is32(abi) ? 12 : 16, sector, true);
  dv.setUint16(is32(abi) ? 20 : 24, handle, true);
  grefs.forEach((g, i) => dv.setUint32((is32(abi) ? 24 : 28) + 4 * i, g, true));
  return bytes;
}
function expectedResponse(abi: Abi, id: bigint, op: number, status: number): Uint8Array {
  const bytes = new Uint8Array(is32(abi) ? 12 : 16);
  const dv = new DataView(bytes.buffer);
  dv.setBigUint64(0, id, true); dv.setUint8(8, op); dv.setInt16(10, status, true);
  return bytes;
}

const segReq = (operation: 0 | 1 | 2 | 3, n: number): BlkifRequest => ({
  operation, id: 0xfedcba9876543210n, handle: 51712, sectorNumber: 0x1_0000_0001n,
  segments: Array.from({ length: n }, (_, i) => ({ gref: 1000 + i, firstSect: i % 8, lastSect: 7 })),
});

describe.each(ABIS)('blkif codec round trips (%s)', (abi) => {
  it.each([
    [0, 1], [1, 11], [2, 3], [3, 0], [3, 2],
  ] as const)('op %i with %i segments encodes to the header layout and decodes back', (op, n) => {
    const req = segReq(op, n);
    const bytes = blkif.encodeRequest(req, abi);
    const segs = (req as { segments: { gref: number; firstSect: number; lastSect: number }[] }).segments;
    expect(bytes).toEqual(expectedSegReq(abi, op, req.id, req.handle, req.sectorNumber, segs.map((s) => [s.gref, s.firstSect, s.lastSect])));
    expect(blkif.decodeRequest(bytes, abi)).toEqual(req);
  });
  it.each([true, false])('discard (secure %s) round trips', (secure) => {
    const req = { operation: 5, id: 7n, handle: 2, sectorNumber: 2048n, nrSectors: (1n << 40n) + 3n, secure } as const;
    const bytes = blkif.encodeRequest(req, abi);
    expect(bytes).toEqual(expectedDiscard(abi, 7n, 2, 2048n, (1n << 40n) + 3n, secure));
    expect(blkif.decodeRequest(bytes, abi)).toEqual(req);
  });
  it.each([[1, [9]], [512, [9]], [513, [9, 10]], [4096, [1, 2, 3, 4, 5, 6, 7, 8]]] as const)(
    'indirect with %i segments round trips', (nr, grefs) => {
      const req = { operation: 6, indirectOp: 1, id: 3n, handle: 0xffff, sectorNumber: 8n, nrSegments: nr, indirectGrefs: [...grefs] as number[] } as BlkifRequest;
      const bytes = blkif.encodeRequest(req, abi);
      expect(bytes).toEqual(expectedIndirect(abi, 1, 3n, 0xffff, 8n, nr, [...grefs]));
      expect(blkif.decodeRequest(bytes, abi)).toEqual(req);
    });
  it.each([0, -1, -2])('response with status %i round trips', (status) => {
    const rsp = { id: (1n << 64n) - 1n, operation: 1, status };
    const bytes = blkif.encodeResponse(rsp, abi);
    expect(bytes).toEqual(expectedResponse(abi, rsp.id, 1, status));
    expect(blkif.decodeResponse(bytes, abi)).toEqual(rsp);
  });
});

describe('blkif codec defaults and sizes', () => {
  it('defaults to x86_64-abi: 112-byte requests, 16-byte responses', () => {
    expect(blkif.encodeRequest(segReq(0, 1)).length).toBe(112);
    expect(blkif.encodeRequest(segReq(0, 1), 'x86_32-abi').length).toBe(108);
    expect(blkif.encodeResponse({ id: 1n, operation: 0, status: 0 }).length).toBe(16);
    expect(blkif.encodeResponse({ id: 1n, operation: 0, status: 0 }, 'x86_32-abi').length).toBe(12);
  });
  it('returns a copy independent of the codec memory', () => {
    const a = blkif.encodeRequest(segReq(0, 1));
    blkif.encodeRequest(segReq(1, 11));
    expect(a[0]).toBe(0);
    expect(a.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });
});

/** Expect `fn` to throw an invalid-argument error naming `field`. */
function rejects(fn: () => unknown, field: string, code = 'invalid-argument'): void {
  try {
    fn();
  } catch (e) {
    expect((e as { code: string }).code).toBe(code);
    if (code === 'invalid-argument') expect((e as { field: string }).field).toBe(field);
    expect(String((e as Error).message)).toContain(code === 'invalid-argument' ? field : '');
    return;
  }
  throw new Error(`expected a ${code} error for ${field}`);
}
const base = segReq(1, 4) as unknown as { segments: { gref: number; firstSect: number; lastSect: number }[] } & Record<string, unknown>;
const withSeg = (i: number, patch: object) => ({ ...base, segments: base.segments.map((s, j) => (j === i ? { ...s, ...patch } : s)) });

describe('encodeRequest validation names the field', () => {
  it.each([
    ['operation', { ...base, operation: 4 }],
    ['operation', { ...base, operation: '1' }],
    ['id', { ...base, id: 1 }],
    ['id', { ...base, id: -1n }],
    ['id', { ...base, id: 1n << 64n }],
    ['handle', { ...base, handle: 0x10000 }],
    ['handle', { ...base, handle: 1.5 }],
    ['sectorNumber', { ...base, sectorNumber: 5 }],
    ['segments', { ...base, segments: 'x' }],
    ['segments', { ...base, segments: [] }],
    ['segments', { ...base, segments: Array(12).fill({ gref: 1, firstSect: 0, lastSect: 7 }) }],
    ['segments[3].lastSect', withSeg(3, { firstSect: 5, lastSect: 4 })],
    ['segments[2].lastSect', withSeg(2, { lastSect: 8 })],
    ['segments[1].firstSect', withSeg(1, { firstSect: -1 })],
    ['segments[0].gref', withSeg(0, { gref: 2 ** 32 })],
    ['segments[0]', { ...base, segments: [null] }],
    ['nrSectors', { operation: 5, id: 1n, handle: 0, sectorNumber: 0n, nrSectors: 1, secure: false }],
    ['secure', { operation: 5, id: 1n, handle: 0, sectorNumber: 0n, nrSectors: 1n, secure: 1 }],
    ['indirectOp', { operation: 6, indirectOp: 2, id: 1n, handle: 0, sectorNumber: 0n, nrSegments: 1, indirectGrefs: [1] }],
    ['nrSegments', { operation: 6, indirectOp: 0, id: 1n, handle: 0, sectorNumber: 0n, nrSegments: 0, indirectGrefs: [] }],
    ['nrSegments', { operation: 6, indirectOp: 0, id: 1n, handle: 0, sectorNumber: 0n, nrSegments: 4097, indirectGrefs: [] }],
    ['indirectGrefs', { operation: 6, indirectOp: 0, id: 1n, handle: 0, sectorNumber: 0n, nrSegments: 513, indirectGrefs: [1] }],
    ['indirectGrefs[1]', { operation: 6, indirectOp: 0, id: 1n, handle: 0, sectorNumber: 0n, nrSegments: 513, indirectGrefs: [1, -1] }],
    ['request', null],
  ])('rejects bad %s', (field, req) => {
    rejects(() => blkif.encodeRequest(req as BlkifRequest), field);
  });
  it('rejects an unknown abi', () => {
    rejects(() => blkif.encodeRequest(segReq(0, 1), 'arm-abi' as Abi), 'abi');
  });
  it('allows flush and barrier without segments, but not read or write', () => {
    expect(blkif.encodeRequest(segReq(3, 0)).length).toBe(112);
    expect(blkif.encodeRequest(segReq(2, 0)).length).toBe(112);
    rejects(() => blkif.encodeRequest(segReq(0, 0)), 'segments');
  });
});

describe('decodeRequest enforces the rules on wire bytes', () => {
  const bad = (abi: Abi, edit: (dv: DataView) => void) => {
    const b = blkif.encodeRequest(segReq(0, 2), abi);
    edit(new DataView(b.buffer));
    return b;
  };
  it.each(ABIS)('%s: unknown op, too many segments, bad sector range', (abi) => {
    const seg0 = is32(abi) ? 20 : 24;
    rejects(() => blkif.decodeRequest(bad(abi, (dv) => dv.setUint8(0, 9)), abi), 'operation');
    rejects(() => blkif.decodeRequest(bad(abi, (dv) => dv.setUint8(1, 12)), abi), 'segments');
    rejects(() => blkif.decodeRequest(bad(abi, (dv) => dv.setUint8(1, 0)), abi), 'segments');
    rejects(() => blkif.decodeRequest(bad(abi, (dv) => dv.setUint8(seg0 + 8 + 5, 0)), abi), 'segments');
    rejects(() => blkif.decodeRequest(bad(abi, (dv) => dv.setUint8(seg0 + 5, 8)), abi), 'segments');
  });
  it('bad discard flag, bad indirect op and count', () => {
    const d = blkif.encodeRequest({ operation: 5, id: 1n, handle: 0, sectorNumber: 0n, nrSectors: 1n, secure: false });
    d[1] = 2;
    rejects(() => blkif.decodeRequest(d), 'secure');
    const ind = blkif.encodeRequest({ operation: 6, indirectOp: 0, id: 1n, handle: 0, sectorNumber: 0n, nrSegments: 1, indirectGrefs: [5] });
    ind[1] = 3;
    rejects(() => blkif.decodeRequest(ind), 'indirectOp');
    ind[1] = 0; ind[2] = 0; ind[3] = 0;
    rejects(() => blkif.decodeRequest(ind), 'nrSegments');
    ind[2] = 0x01; ind[3] = 0x10; // 4097
    rejects(() => blkif.decodeRequest(ind), 'nrSegments');
  });
  it('rejects short or non-byte input', () => {
    rejects(() => blkif.decodeRequest(new Uint8Array(111)), 'bytes');
    rejects(() => blkif.decodeRequest([1, 2] as unknown as Uint8Array), 'bytes');
    rejects(() => blkif.decodeResponse(new Uint8Array(11), 'x86_32-abi'), 'bytes');
  });
});

describe('response validation', () => {
  it.each([
    ['id', { id: 5, operation: 0, status: 0 }],
    ['operation', { id: 5n, operation: 256, status: 0 }],
    ['status', { id: 5n, operation: 0, status: 1 }],
    ['status', { id: 5n, operation: 0, status: -3 }],
  ])('encodeResponse rejects bad %s', (field, rsp) => {
    rejects(() => blkif.encodeResponse(rsp as never), field);
  });
  it('decodeResponse treats a status outside {0,-1,-2} as a protocol error', () => {
    const b = expectedResponse('x86_64-abi', 1n, 0, 5);
    rejects(() => blkif.decodeResponse(b), 'status', 'protocol');
  });
});
