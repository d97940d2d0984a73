/**
 * Golden test: our constants, ring geometry and wire bytes against Xen's own
 * public headers (Debian libxen-dev), compiled by gcc for both ABIs
 * (test/golden/xen-layout.c, read by golden-c.ts). The oracle is the C
 * compiler: sizes, offsets, __CONST_RING_SIZE and messages built with the C
 * structs. Compared with: src/blkif/constants.ts, the codec API
 * (src/blkif/codec.ts), BOTH engines' single-message codecs and ringSize,
 * and src/xenstore/wire.ts's op numbers.
 *
 * Missing headers or gcc make this test FAIL with the install command.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import * as C from '../../src/blkif/constants.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type BlkifRequest, type BlkifResponse } from '../../src/blkif/codec.js';
import { Abi, createEngine, type RingEngine } from '../../src/ring/index.js';
import { createSharedLayout } from '../../src/memory/layout.js';
import { XS_DEBUG, XS_INVALID, XS_TYPE_COUNT, XSD_SOCKMSG_BYTES, XsOp } from '../../src/xenstore/wire.js';
import { buildGolden, type Golden, type GoldenAbi } from './golden-c.js';

let golden: Golden;
beforeAll(() => {
  golden = buildGolden();
});

const ABIS = [
  { name: 'x86_64-abi' as const, abi: Abi.X86_64, get: (): GoldenAbi => golden.x86_64 },
  { name: 'x86_32-abi' as const, abi: Abi.X86_32, get: (): GoldenAbi => golden.x86_32 },
];

// ---------------------------------------------------------------- the messages of xen-layout.c, as our API spells them

const SEGS11 = [
  [0x00000100, 0, 7], [0x00000101, 1, 7], [0x00000102, 0, 0], [0x00010203, 7, 7], [0x7fffffff, 2, 5],
  [0x80000000, 0, 7], [0xfffffffe, 3, 3], [0x12345678, 0, 6], [0x00abcdef, 1, 2], [0x00000009, 4, 7],
  [0xdeadbeef, 0, 7],
].map(([gref, firstSect, lastSect]) => ({ gref: gref!, firstSect: firstSect!, lastSect: lastSect! }));
const seg1 = (gref: number, firstSect: number, lastSect: number) => [{ gref, firstSect, lastSect }];

const REQUESTS: Record<string, BlkifRequest> = {
  read_1seg: { operation: 0, handle: 0x0301, id: 0x0123456789abcdefn, sectorNumber: 0x0000000123456789n, segments: seg1(0x1234, 0, 7) },
  read_11seg: { operation: 0, handle: 0xca00, id: 0xfedcba9876543210n, sectorNumber: 0xffffffff00000000n, segments: SEGS11 },
  write_1seg: { operation: 1, handle: 0x0000, id: 1n, sectorNumber: 8n, segments: seg1(0xffffffff, 3, 4) },
  write_11seg: { operation: 1, handle: 0xffff, id: 0x8000000000000000n, sectorNumber: 0x00000000ffffffffn, segments: SEGS11 },
  barrier_1seg: { operation: 2, handle: 0x0033, id: 0xdeadbeefn, sectorNumber: 0x0000100000000000n, segments: seg1(0x42, 0, 7) },
  barrier_11seg: { operation: 2, handle: 0x1234, id: 0xcafef00dcafef00dn, sectorNumber: 0n, segments: SEGS11 },
  flush_1seg: { operation: 3, handle: 0x0102, id: 0x1111111122222222n, sectorNumber: 0x800n, segments: seg1(0x777, 0, 7) },
  flush_11seg: { operation: 3, handle: 0x0800, id: 0xffffffffn, sectorNumber: 0x7fffffffffffffffn, segments: SEGS11 },
  discard_plain: { operation: 5, handle: 0x0301, id: 0x0102030405060708n, sectorNumber: 0x0000000200000000n, nrSectors: 0x0000000100000001n, secure: false },
  discard_secure: { operation: 5, handle: 0xbeef, id: 0xa0b0c0d0e0f00010n, sectorNumber: 0x100n, nrSectors: 0x800n, secure: true },
  indirect_read_2pages: {
    operation: 6, indirectOp: 0, handle: 0x0301, id: 0x0000123400005678n, sectorNumber: 0x0000000987654321n,
    nrSegments: 1000, indirectGrefs: [0x200, 0x80000201],
  },
  indirect_write_8pages: {
    operation: 6, indirectOp: 1, handle: 0xfffe, id: 0xffffffffffffffffn, sectorNumber: 0xfffffn,
    nrSegments: 4096, indirectGrefs: [1, 2, 3, 0xfffffff0, 5, 6, 0x7fffffff, 8],
  },
  indirect_write_1seg: { operation: 6, indirectOp: 1, handle: 1, id: 7n, sectorNumber: 1n, nrSegments: 1, indirectGrefs: [0x00abcdef] },
};

const RESPONSES: Record<string, BlkifResponse> = {
  response_okay: { id: 0x0123456789abcdefn, operation: 0, status: 0 },
  response_error: { id: 0xfedcba9876543210n, operation: 1, status: -1 },
  response_eopnotsupp: { id: 0x8000000000000001n, operation: 5, status: -2 },
  response_indirect: { id: 0xffffffffn, operation: 6, status: 0 },
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The C object padded with zeros to a full ring slot (our encoders write whole slots). */
function slotOf(c: Uint8Array, slotBytes: number): Uint8Array {
  const out = new Uint8Array(slotBytes);
  out.set(c);
  return out;
}

// ---------------------------------------------------------------- engine harness (descriptors built here, by hand)

const TABLES = 65536;
const DESC = TABLES;
const SEGS = TABLES + 0x40;
const SLOT = TABLES + 0x100;
const OUT_DESC = TABLES + 0x200;
const OUT_SEGS = TABLES + 0x240;
const RSP = TABLES + 0x300;
const WIRE = TABLES + 0x340;

function engines(): { engine: RingEngine; dv: DataView; u8: Uint8Array }[] {
  return (['wasm', 'js'] as const).map((kind) => {
    const { memory } = createSharedLayout({ scratchBytes: 1 << 16, poolPages: 16 });
    return { engine: createEngine(kind, memory), dv: new DataView(memory.buffer), u8: new Uint8Array(memory.buffer) };
  });
}

/** Write the RingEngine descriptor for a request (layout from src/ring/engine.ts). */
function writeDescriptor(dv: DataView, r: BlkifRequest): void {
  dv.setUint8(DESC, r.operation);
  dv.setUint16(DESC + 2, r.handle, true);
  dv.setInt16(DESC + 6, 0x1111, true);
  dv.setBigUint64(DESC + 8, r.id, true);
  dv.setBigUint64(DESC + 16, r.sectorNumber, true);
  if (r.operation === 5) {
    dv.setUint8(DESC + 1, r.secure ? 1 : 0);
    dv.setUint16(DESC + 4, 0, true);
    dv.setBigUint64(DESC + 24, r.nrSectors, true);
  } else if (r.operation === 6) {
    dv.setUint8(DESC + 1, r.indirectOp);
    dv.setUint16(DESC + 4, r.nrSegments, true);
    dv.setBigUint64(DESC + 24, BigInt(SEGS), true);
    r.indirectGrefs.forEach((g, i) => dv.setUint32(SEGS + 4 * i, g, true));
  } else {
    dv.setUint8(DESC + 1, 0);
    dv.setUint16(DESC + 4, r.segments.length, true);
    dv.setBigUint64(DESC + 24, BigInt(SEGS), true);
    r.segments.forEach((s, i) => {
      dv.setUint32(SEGS + 8 * i, s.gref, true);
      dv.setUint8(SEGS + 8 * i + 4, s.firstSect);
      dv.setUint8(SEGS + 8 * i + 5, s.lastSect);
      dv.setUint16(SEGS + 8 * i + 6, 0xabcd, true); // pad: must not reach the wire
    });
  }
}

/** Read a decoded descriptor back into the API's request shape. */
function readDescriptor(dv: DataView): BlkifRequest {
  const operation = dv.getUint8(OUT_DESC);
  const flag = dv.getUint8(OUT_DESC + 1);
  const handle = dv.getUint16(OUT_DESC + 2, true);
  const nr = dv.getUint16(OUT_DESC + 4, true);
  const id = dv.getBigUint64(OUT_DESC + 8, true);
  const sectorNumber = dv.getBigUint64(OUT_DESC + 16, true);
  const arg = dv.getBigUint64(OUT_DESC + 24, true);
  if (operation === 5) return { operation, handle, id, sectorNumber, nrSectors: arg, secure: flag === 1 };
  const at = Number(arg);
  if (operation === 6) {
    const pages = Math.ceil(nr / 512);
    return {
      operation, indirectOp: flag as 0 | 1, handle, id, sectorNumber, nrSegments: nr,
      indirectGrefs: Array.from({ length: pages }, (_, i) => dv.getUint32(at + 4 * i, true)),
    };
  }
  return {
    operation: operation as 0 | 1 | 2 | 3, handle, id, sectorNumber,
    segments: Array.from({ length: nr }, (_, i) => ({
      gref: dv.getUint32(at + 8 * i, true), firstSect: dv.getUint8(at + 8 * i + 4), lastSect: dv.getUint8(at + 8 * i + 5),
    })),
  };
}

// ---------------------------------------------------------------- tests

describe('golden values from the Xen public headers', () => {
  test('the assembly reader gives the same x86_64 values the program printed', () => {
    expect(golden.x86_64FromAssembly.numbers).toEqual(golden.x86_64.numbers);
    expect(Object.keys(golden.x86_64FromAssembly.messages).sort()).toEqual(Object.keys(golden.x86_64.messages).sort());
    for (const [name, bytes] of Object.entries(golden.x86_64.messages)) {
      expect(hex(golden.x86_64FromAssembly.messages[name]!), name).toBe(hex(bytes));
    }
    // And the two ABIs really differ where the headers say they do.
    expect(golden.x86_32.numbers['sizeof.blkif_request']).toBe(108);
    expect(golden.x86_64.numbers['sizeof.blkif_request']).toBe(112);
  });

  test('src/blkif/constants.ts matches blkif.h, grant_table.h, xenbus.h and ring.h', () => {
    const n = golden.x86_64.numbers;
    const n32 = golden.x86_32.numbers;
    const ours: Record<string, number> = {
      BLKIF_OP_READ: C.BLKIF_OP_READ,
      BLKIF_OP_WRITE: C.BLKIF_OP_WRITE,
      BLKIF_OP_WRITE_BARRIER: C.BLKIF_OP_WRITE_BARRIER,
      BLKIF_OP_FLUSH_DISKCACHE: C.BLKIF_OP_FLUSH_DISKCACHE,
      BLKIF_OP_DISCARD: C.BLKIF_OP_DISCARD,
      BLKIF_OP_INDIRECT: C.BLKIF_OP_INDIRECT,
      BLKIF_RSP_OKAY: C.BLKIF_RSP_OKAY,
      BLKIF_RSP_ERROR: C.BLKIF_RSP_ERROR,
      BLKIF_RSP_EOPNOTSUPP: C.BLKIF_RSP_EOPNOTSUPP,
      BLKIF_MAX_SEGMENTS_PER_REQUEST: C.BLKIF_MAX_SEGMENTS_PER_REQUEST,
      BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: C.BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
      BLKIF_DISCARD_SECURE: C.BLKIF_DISCARD_SECURE,
      VDISK_CDROM: C.VDISK_CDROM,
      VDISK_REMOVABLE: C.VDISK_REMOVABLE,
      VDISK_READONLY: C.VDISK_READONLY,
      GTF_permit_access: C.GTF_permit_access,
      GTF_readonly: C.GTF_readonly,
      GTF_reading: C.GTF_reading,
      GTF_writing: C.GTF_writing,
      XenbusStateUnknown: C.XenbusState.Unknown,
      XenbusStateInitialising: C.XenbusState.Initialising,
      XenbusStateInitWait: C.XenbusState.InitWait,
      XenbusStateInitialised: C.XenbusState.Initialised,
      XenbusStateConnected: C.XenbusState.Connected,
      XenbusStateClosing: C.XenbusState.Closing,
      XenbusStateClosed: C.XenbusState.Closed,
      XenbusStateReconfiguring: C.XenbusState.Reconfiguring,
      XenbusStateReconfigured: C.XenbusState.Reconfigured,
    };
    for (const [name, value] of Object.entries(ours)) expect(value, name).toBe(n[name]);
    expect(C.BLKIF_REQUEST_BYTES_X86_64).toBe(n['sizeof.blkif_request']);
    expect(C.BLKIF_REQUEST_BYTES_X86_32).toBe(n32['sizeof.blkif_request']);
    expect(C.BLKIF_RESPONSE_BYTES_X86_64).toBe(n['sizeof.blkif_response']);
    expect(C.BLKIF_RESPONSE_BYTES_X86_32).toBe(n32['sizeof.blkif_response']);
    expect(C.BLKIF_SEGMENT_BYTES).toBe(n['sizeof.blkif_request_segment']);
    expect(C.BLKIF_SEGMENTS_PER_INDIRECT_PAGE).toBe(C.XEN_PAGE_SIZE / n['sizeof.blkif_request_segment']!);
    expect(C.SHARED_RING_HEADER_BYTES).toBe(n['offsetof.blkif_sring.ring']);
    expect(C.SHARED_RING_HEADER_BYTES).toBe(n32['offsetof.blkif_sring.ring']);
    expect(C.GRANT_ENTRY_V1_BYTES).toBe(n['sizeof.grant_entry_v1']);
    // Shared ring header: the offsets src/ring/js/ring.ts and assembly/ring.ts index by.
    for (const g of [n, n32]) {
      expect([g['offsetof.blkif_sring.req_prod'], g['offsetof.blkif_sring.req_event'], g['offsetof.blkif_sring.rsp_prod'], g['offsetof.blkif_sring.rsp_event']]).toEqual([0, 4, 8, 12]);
      expect([g['offsetof.grant_entry_v1.flags'], g['offsetof.grant_entry_v1.domid'], g['offsetof.grant_entry_v1.frame']]).toEqual([0, 2, 4]);
      // The response layout is the completion entry's (src/ring/engine.ts): id@0, op@8, status@10.
      expect([g['offsetof.blkif_response.id'], g['offsetof.blkif_response.operation'], g['offsetof.blkif_response.status']]).toEqual([0, 8, 10]);
    }
  });

  test('xenstore op numbers in src/xenstore/wire.ts match xs_wire.h', () => {
    const n = golden.x86_64.numbers;
    const names = golden.names.filter((k) => /^XS_[A-Z_]+$/.test(k) && !['XS_DEBUG', 'XS_TYPE_COUNT', 'XS_INVALID'].includes(k));
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) expect((XsOp as unknown as Record<string, number>)[name], name).toBe(n[name]);
    expect(XS_DEBUG).toBe(n.XS_DEBUG);
    expect(XS_TYPE_COUNT).toBe(n.XS_TYPE_COUNT);
    expect(XS_INVALID).toBe(n.XS_INVALID);
    expect(XSD_SOCKMSG_BYTES).toBe(n['sizeof.xsd_sockmsg']);
  });

  test('both engines compute __CONST_RING_SIZE for every slot size and 1..16 pages', () => {
    const sizes = [...new Set(golden.names.map((k) => /^ring\.slot(\d+)\./.exec(k)?.[1]).filter(Boolean))].map(Number);
    expect(sizes.length).toBeGreaterThanOrEqual(10);
    for (const { engine } of engines()) {
      for (const { abi, get } of ABIS) {
        const g = get().numbers;
        for (const pages of [1, 2, 4, 8, 16]) {
          for (const slot of sizes) {
            expect(engine.ringSize(pages, slot), `${engine.kind} slot ${slot} pages ${pages}`).toBe(g[`ring.slot${slot}.pages${pages}`]);
          }
          // The blkif ring itself, with this ABI's request size, through ring init too.
          const want = g[`ring.blkif.pages${pages}`];
          expect(engine.ringSize(pages, g['sizeof.blkif_sring_entry']!), `${engine.kind} blkif ${abi}`).toBe(want);
        }
      }
    }
  });

  test('both engines initialise a blkif ring with the header values ring.h writes', () => {
    for (const { engine, dv } of engines()) {
      for (const { get } of ABIS) {
        const g = get().numbers;
        for (const pages of [1, 2, 4, 8, 16]) {
          const sring = 65536 * 2;
          for (let i = 0; i < 64; i += 4) dv.setUint32(sring + i, 0xdeadbeef, true);
          expect(engine.frontRingInit(TABLES + 0x800, sring, pages, g['sizeof.blkif_sring_entry']!)).toBe(g[`ring.blkif.pages${pages}`]);
          // SHARED_RING_INIT: producers 0, events 1, the rest of the header zero.
          expect(dv.getUint32(sring + g['offsetof.blkif_sring.req_prod']!, true)).toBe(0);
          expect(dv.getUint32(sring + g['offsetof.blkif_sring.rsp_prod']!, true)).toBe(0);
          expect(dv.getUint32(sring + g['offsetof.blkif_sring.req_event']!, true)).toBe(1);
          expect(dv.getUint32(sring + g['offsetof.blkif_sring.rsp_event']!, true)).toBe(1);
          for (let i = 16; i < g['offsetof.blkif_sring.ring']!; i++) expect(dv.getUint8(sring + i)).toBe(0);
          // RING_GET_REQUEST(0) is at offsetof(ring), slot i at + i * sizeof(entry).
          expect(engine.requestSlot(TABLES + 0x800, 3)).toBe(sring + g['offsetof.blkif_sring.ring']! + 3 * g['sizeof.blkif_sring_entry']!);
        }
      }
    }
  });

  for (const { name: abiName, abi, get } of ABIS) {
    describe(abiName, () => {
      for (const [name, req] of Object.entries(REQUESTS)) {
        test(`request ${name}: codec API and both engines give the C bytes, and decode them back`, () => {
          const g = get();
          const c = g.messages[name]!;
          expect(c, `C object golden_msg_${name}`).toBeDefined();
          const slotBytes = g.numbers['sizeof.blkif_request']!;
          const want = hex(slotOf(c, slotBytes));
          // Codec API.
          expect(hex(encodeRequest(req, abiName))).toBe(want);
          expect(decodeRequest(slotOf(c, slotBytes), abiName)).toEqual(req);
          // Both engines, descriptors built by hand.
          for (const { engine, dv, u8 } of engines()) {
            writeDescriptor(dv, req);
            u8.fill(0xee, SLOT, SLOT + 112);
            expect(engine.blkifEncodeRequest(DESC, SLOT, abi), engine.kind).toBe(0);
            expect(hex(u8.subarray(SLOT, SLOT + slotBytes)), `${engine.kind} encode`).toBe(want);
            expect(dv.getInt16(DESC + 6, true)).toBe(0); // status written
            u8.fill(0xee, SLOT, SLOT + 112);
            u8.set(c, SLOT);
            expect(engine.blkifDecodeRequest(SLOT, OUT_DESC, OUT_SEGS, abi), engine.kind).toBe(0);
            expect(readDescriptor(dv), `${engine.kind} decode`).toEqual(req);
          }
        });
      }

      for (const [name, rsp] of Object.entries(RESPONSES)) {
        test(`response ${name}: codec API and both engines give the C bytes, and decode them back`, () => {
          const g = get();
          const c = g.messages[name]!;
          expect(c.length).toBe(g.numbers['sizeof.blkif_response']);
          expect(hex(encodeResponse(rsp, abiName))).toBe(hex(c));
          expect(decodeResponse(c, abiName)).toEqual(rsp);
          for (const { engine, dv, u8 } of engines()) {
            dv.setBigUint64(RSP, rsp.id, true);
            dv.setUint8(RSP + 8, rsp.operation);
            dv.setUint8(RSP + 9, 0x77); // pad: must not reach the wire
            dv.setInt16(RSP + 10, rsp.status, true);
            dv.setUint32(RSP + 12, 0x77777777, true);
            u8.fill(0xee, WIRE, WIRE + 16);
            expect(engine.blkifEncodeResponse(RSP, WIRE, abi)).toBe(0);
            expect(hex(u8.subarray(WIRE, WIRE + c.length)), `${engine.kind} encode`).toBe(hex(c));
            u8.set(c, WIRE);
            expect(engine.blkifDecodeResponse(WIRE, RSP, abi)).toBe(0);
            expect(dv.getBigUint64(RSP, true)).toBe(rsp.id);
            expect(dv.getUint8(RSP + 8)).toBe(rsp.operation);
            expect(dv.getInt16(RSP + 10, true)).toBe(rsp.status);
          }
        });
      }
    });
  }
});
