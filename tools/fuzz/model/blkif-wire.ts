/**
 * An independent blkif wire builder and parser for the fuzzers, written from
 * xen/include/public/io/blkif.h (not from our codecs). x86_64 aligns u64 to
 * 8, x86_32 (i386) to 4; that is the whole difference between the ABIs.
 *
 * read/write/barrier/flush (struct blkif_request):
 * ```
 *  x86_64: 0 op | 1 nr_segments | 2 handle u16 | 4 pad | 8 id u64 | 16 sector u64 | 24 seg[11]  = 112
 *  x86_32: 0 op | 1 nr_segments | 2 handle u16 |         4 id u64 | 12 sector u64 | 20 seg[11]  = 108
 *  seg:    0 gref u32 | 4 first_sect u8 | 5 last_sect u8 | 6 pad u16                           = 8
 * ```
 * discard (struct blkif_request_discard):
 * ```
 *  x86_64: 0 op | 1 flag | 2 handle | 4 pad | 8 id | 16 sector | 24 nr_sectors u64 | zero to 112
 *  x86_32: 0 op | 1 flag | 2 handle |         4 id | 12 sector | 20 nr_sectors u64 | zero to 108
 * ```
 * indirect (struct blkif_request_indirect):
 * ```
 *  x86_64: 0 op | 1 indirect_op | 2 nr_segments u16 | 4 pad | 8 id | 16 sector | 24 handle | 26 pad | 28 grefs[8] u32 | zero
 *  x86_32: 0 op | 1 indirect_op | 2 nr_segments u16 |         4 id | 12 sector | 20 handle | 22 pad | 24 grefs[8] u32 | zero
 * ```
 * response (struct blkif_response), both ABIs: 0 id u64 | 8 operation u8 | 9 pad | 10 status i16 | (x86_64: 12 pad to 16)
 */

export const REQ_BYTES = [112, 108] as const;
export const RSP_BYTES = [16, 12] as const;

export interface WireSeg { gref: number; first: number; last: number }
export interface WireRequest {
  op: number;
  /** discard: secure flag; indirect: indirect_op; else unused (0). */
  flag: number;
  handle: number;
  /** u8 on the wire for rw/flush/barrier, u16 for indirect. */
  nrSegments: number;
  id: bigint;
  sector: bigint;
  /** rw/flush/barrier: nrSegments segments. */
  segs: WireSeg[];
  /** discard. */
  nrSectors: bigint;
  /** indirect: ceil(nrSegments / 512) grefs. */
  grefs: number[];
}
export interface WireResponse { id: bigint; op: number; status: number }

const idAt = (abi: number) => (abi === 0 ? 8 : 4);
const sectorAt = (abi: number) => (abi === 0 ? 16 : 12);
const thirdAt = (abi: number) => (abi === 0 ? 24 : 20); // seg[0] / nr_sectors / indirect handle

export const DISCARD = 5;
export const INDIRECT = 6;

export function indirectPages(nrSegments: number): number {
  return Math.min(8, Math.ceil(nrSegments / 512));
}

/** Bytes of a request, padding zeroed. */
export function buildRequest(abi: 0 | 1, r: WireRequest): Uint8Array {
  const b = new Uint8Array(REQ_BYTES[abi]);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, r.op);
  dv.setBigUint64(idAt(abi), r.id, true);
  dv.setBigUint64(sectorAt(abi), r.sector, true);
  if (r.op === DISCARD) {
    dv.setUint8(1, r.flag);
    dv.setUint16(2, r.handle, true);
    dv.setBigUint64(thirdAt(abi), r.nrSectors, true);
  } else if (r.op === INDIRECT) {
    dv.setUint8(1, r.flag);
    dv.setUint16(2, r.nrSegments, true);
    dv.setUint16(thirdAt(abi), r.handle, true);
    const g = thirdAt(abi) + 4;
    r.grefs.forEach((x, k) => dv.setUint32(g + 4 * k, x, true));
  } else {
    dv.setUint8(1, r.nrSegments);
    dv.setUint16(2, r.handle, true);
    r.segs.forEach((s, k) => {
      const at = thirdAt(abi) + 8 * k;
      dv.setUint32(at, s.gref, true);
      dv.setUint8(at + 4, s.first);
      dv.setUint8(at + 5, s.last);
    });
  }
  return b;
}

/** Parse what a request's bytes say (no validation); segments/grefs limited to what the counts name. */
export function parseRequest(abi: 0 | 1, b: Uint8Array): WireRequest {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const op = dv.getUint8(0);
  const r: WireRequest = {
    op, flag: 0, handle: 0, nrSegments: 0, id: dv.getBigUint64(idAt(abi), true),
    sector: dv.getBigUint64(sectorAt(abi), true), segs: [], nrSectors: 0n, grefs: [],
  };
  if (op === DISCARD) {
    r.flag = dv.getUint8(1);
    r.handle = dv.getUint16(2, true);
    r.nrSectors = dv.getBigUint64(thirdAt(abi), true);
  } else if (op === INDIRECT) {
    r.flag = dv.getUint8(1);
    r.nrSegments = dv.getUint16(2, true);
    r.handle = dv.getUint16(thirdAt(abi), true);
    for (let k = 0; k < indirectPages(r.nrSegments); k++) r.grefs.push(dv.getUint32(thirdAt(abi) + 4 + 4 * k, true));
  } else {
    r.nrSegments = dv.getUint8(1);
    r.handle = dv.getUint16(2, true);
    for (let k = 0; k < Math.min(11, r.nrSegments); k++) {
      const at = thirdAt(abi) + 8 * k;
      r.segs.push({ gref: dv.getUint32(at, true), first: dv.getUint8(at + 4), last: dv.getUint8(at + 5) });
    }
  }
  return r;
}

/** The same request with every padding byte, unused segment and unused gref zeroed. */
export function canonicalRequest(abi: 0 | 1, b: Uint8Array): Uint8Array {
  return buildRequest(abi, parseRequest(abi, b));
}

export function buildResponse(abi: 0 | 1, r: WireResponse): Uint8Array {
  const b = new Uint8Array(RSP_BYTES[abi]);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, r.id, true);
  dv.setUint8(8, r.op);
  dv.setInt16(10, r.status, true);
  return b;
}

export function parseResponse(b: Uint8Array): WireResponse {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { id: dv.getBigUint64(0, true), op: dv.getUint8(8), status: dv.getInt16(10, true) };
}

/** Status codes a decoder may return for a request, from the spec; empty: valid. */
export function requestFaults(r: WireRequest): number[] {
  const f: number[] = [];
  const badSegs = (segs: WireSeg[]) => segs.some((s) => s.first > s.last || s.last > 7);
  switch (r.op) {
    case 0: case 1:
      if (r.nrSegments < 1 || r.nrSegments > 11) f.push(-2);
      else if (badSegs(r.segs)) f.push(-3);
      break;
    case 2: case 3:
      if (r.nrSegments > 11) f.push(-2);
      else if (badSegs(r.segs)) f.push(-3);
      break;
    case DISCARD:
      if (r.flag > 1) f.push(-7);
      break;
    case INDIRECT:
      if (r.flag !== 0 && r.flag !== 1) f.push(-4);
      if (r.nrSegments < 1 || r.nrSegments > 4096) f.push(-5);
      break;
    default:
      f.push(-1);
  }
  return f;
}
