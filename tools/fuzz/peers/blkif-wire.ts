/**
 * blkif wire layouts for the hostile peers, written from xen/io/blkif.h and
 * xen/io/ring.h (x86_64 ABI), independently of src/ and assembly/: the
 * harness reads and writes shared rings with raw DataView accesses.
 *
 * Shared ring page (ring.h DEFINE_RING_TYPES):
 * ```
 *  0          4           8          12          16        64
 *  +----------+-----------+----------+-----------+-- pad --+--------------------+
 *  | req_prod | req_event | rsp_prod | rsp_event |         | ring[nrEnts] union |
 *  +----------+-----------+----------+-----------+---------+--------------------+
 * ```
 * Slot = union { request, response } = 112 bytes (x86_64).
 * nrEnts = largest power of two <= (pages*4096 - 64) / 112 (32 for one page).
 *
 * blkif_request (112 bytes):
 * ```
 *  0    1            2         4     8        16              24
 *  +----+------------+---------+-----+--------+---------------+------------------------+
 *  | op | nr_segments| handle  | pad | id u64 | sector u64    | seg[11] (8 bytes each) |
 *  +----+------------+---------+-----+--------+---------------+------------------------+
 *  segment: gref u32 @0, first_sect u8 @4, last_sect u8 @5, pad u16
 * ```
 * blkif_request_discard: op, flag u8@1, handle u16@2, id@8, sector@16, nr_sectors u64@24.
 * blkif_request_indirect: op=6, indirect_op u8@1, nr_segments u16@2, id@8,
 *   sector@16, handle u16@24, pad, indirect_grefs u32[8]@28.
 *
 * blkif_response (16 bytes):
 * ```
 *  0        8    9     10         12     16
 *  +--------+----+-----+----------+------+
 *  | id u64 | op | pad | status   | pad  |
 *  +--------+----+-----+----------+------+
 * ```
 */
export const PAGE = 4096;
export const HDR_REQ_PROD = 0;
export const HDR_REQ_EVENT = 4;
export const HDR_RSP_PROD = 8;
export const HDR_RSP_EVENT = 12;
export const RING_HEADER = 64;
export const SLOT = 112;
export const RSP_BYTES = 16;
export const MAX_SEGS = 11;
export const SEGS_PER_INDIRECT_PAGE = 512;

export const OP_READ = 0;
export const OP_WRITE = 1;
export const OP_WRITE_BARRIER = 2;
export const OP_FLUSH_DISKCACHE = 3;
export const OP_DISCARD = 5;
export const OP_INDIRECT = 6;

export const RSP_OKAY = 0;
export const RSP_ERROR = -1;
export const RSP_EOPNOTSUPP = -2;

/** XenbusState wire values (xen/io/xenbus.h). */
export const enum Xb {
  Unknown = 0,
  Initialising = 1,
  InitWait = 2,
  Initialised = 3,
  Connected = 4,
  Closing = 5,
  Closed = 6,
}

export function ringEntries(pages: number): number {
  const n = Math.floor((pages * PAGE - RING_HEADER) / SLOT);
  return 1 << (31 - Math.clz32(n));
}

export interface Segment {
  gref: number;
  first: number;
  last: number;
}

/** A request as the wire carries it (direct, discard or indirect). */
export interface WireRequest {
  op: number;
  /** nr_segments (u8) for direct; discard flag; indirect_op for indirect. */
  byte1: number;
  id: bigint;
  sector: bigint;
  segs: Segment[];
  /** Discard: nr_sectors. */
  nrSectors?: bigint;
  /** Indirect: nr_segments (u16) and indirect grefs. */
  indirectSegs?: number;
  indirectGrefs?: number[];
  handle?: number;
}

export function slotAddr(ring: number, nrEnts: number, index: number): number {
  return ring + RING_HEADER + ((index >>> 0) & (nrEnts - 1)) * SLOT;
}

/** Decode the request in slot `at` (one copy; what the harness sees). */
export function readRequest(dv: DataView, at: number): WireRequest {
  const op = dv.getUint8(at);
  const byte1 = dv.getUint8(at + 1);
  const id = dv.getBigUint64(at + 8, true);
  const sector = dv.getBigUint64(at + 16, true);
  const segs: Segment[] = [];
  if (op === OP_DISCARD) return { op, byte1, id, sector, segs, nrSectors: dv.getBigUint64(at + 24, true) };
  if (op === OP_INDIRECT) {
    const n = dv.getUint16(at + 2, true);
    const pages = Math.ceil(n / SEGS_PER_INDIRECT_PAGE);
    const grefs = Array.from({ length: Math.min(pages, 8) }, (_, i) => dv.getUint32(at + 28 + i * 4, true));
    return { op, byte1, id, sector, segs, indirectSegs: n, indirectGrefs: grefs };
  }
  for (let i = 0; i < Math.min(byte1, MAX_SEGS); i++) {
    const s = at + 24 + i * 8;
    segs.push({ gref: dv.getUint32(s, true), first: dv.getUint8(s + 4), last: dv.getUint8(s + 5) });
  }
  return { op, byte1, id, sector, segs };
}

/** Write a request into slot `at`, zeroing the slot first. */
export function writeRequest(u8: Uint8Array, dv: DataView, at: number, r: WireRequest): void {
  u8.fill(0, at, at + SLOT);
  dv.setUint8(at, r.op);
  dv.setUint8(at + 1, r.byte1);
  dv.setBigUint64(at + 8, r.id, true);
  dv.setBigUint64(at + 16, r.sector, true);
  if (r.op === OP_DISCARD) {
    dv.setUint16(at + 2, r.handle ?? 0, true);
    dv.setBigUint64(at + 24, r.nrSectors ?? 0n, true);
    return;
  }
  if (r.op === OP_INDIRECT) {
    dv.setUint16(at + 2, r.indirectSegs ?? 0, true);
    dv.setUint16(at + 24, r.handle ?? 0, true);
    (r.indirectGrefs ?? []).slice(0, 8).forEach((g, i) => dv.setUint32(at + 28 + i * 4, g, true));
    return;
  }
  dv.setUint16(at + 2, r.handle ?? 0, true);
  r.segs.slice(0, MAX_SEGS).forEach((s, i) => {
    const o = at + 24 + i * 8;
    dv.setUint32(o, s.gref, true);
    dv.setUint8(o + 4, s.first);
    dv.setUint8(o + 5, s.last);
  });
}

export interface WireResponse {
  id: bigint;
  op: number;
  status: number;
}

export function writeResponse(u8: Uint8Array, dv: DataView, at: number, r: WireResponse): void {
  u8.fill(0, at, at + RSP_BYTES);
  dv.setBigUint64(at, r.id, true);
  dv.setUint8(at + 8, r.op);
  dv.setInt16(at + 10, r.status, true);
}

export function readResponse(dv: DataView, at: number): WireResponse {
  return { id: dv.getBigUint64(at, true), op: dv.getUint8(at + 8), status: dv.getInt16(at + 10, true) };
}
