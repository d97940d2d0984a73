/**
 * blkif request/response codecs (xen/include/public/io/blkif.h) for the
 * x86_64-abi and x86_32-abi layouts, validation returning a status, and the
 * batch operations that move requests and responses through a ring.
 *
 * Request, x86_64-abi (112 bytes; read, write, write-barrier, flush-diskcache):
 *
 * ```
 *  0    1           2        4      8        16              24                      112
 *  +----+-----------+--------+------+--------+---------------+-----------------------+
 *  | op | nr_segs   | handle | pad  | id u64 | sector_number | seg[11], 8 bytes each |
 *  | u8 |    u8     |  u16   |      |        |     u64       |                       |
 *  +----+-----------+--------+------+--------+---------------+-----------------------+
 * ```
 * x86_32-abi (108 bytes): the same with no pad: id@4, sector_number@12, seg@20.
 *
 * Segment (struct blkif_request_segment), 8 bytes, in slots and indirect pages:
 *
 * ```
 *  0           4            5           6     8
 *  +-----------+------------+-----------+-----+
 *  | gref u32  | first_sect | last_sect | pad |
 *  +-----------+------------+-----------+-----+
 * ```
 *
 * Discard (op 5), x86_64: `op@0 flag@1 handle@2 id@8 sector@16 nr_sectors u64@24`;
 * x86_32: `id@4 sector@12 nr_sectors@20`.
 *
 * ```
 *  0    1      2        4      8        16              24               32
 *  +----+------+--------+------+--------+---------------+----------------+
 *  | op | flag | handle | pad  | id u64 | sector_number | nr_sectors u64 |
 *  +----+------+--------+------+--------+---------------+----------------+
 * ```
 *
 * Indirect (op 6), x86_64: handle@24, indirect_grefs[8]@28; x86_32: id@4,
 * sector@12, handle@20, indirect_grefs@24.
 *
 * ```
 *  0    1           2              4      8        16              24       26    28                  60
 *  +----+-----------+--------------+------+--------+---------------+--------+-----+-------------------+
 *  | op | indir. op | nr_segs u16  | pad  | id u64 | sector_number | handle | pad | indirect_grefs[8] |
 *  +----+-----------+--------------+------+--------+---------------+--------+-----+-------------------+
 * ```
 *
 * Response: 16 bytes (x86_64) / 12 bytes (x86_32), same offsets:
 *
 * ```
 *  0          8    9     10           12          16
 *  +----------+----+-----+------------+-----------+
 *  | id u64   | op | pad | status i16 | pad (x64) |
 *  +----------+----+-----+------------+-----------+
 * ```
 *
 * Host tables (see src/ring/engine.ts): request descriptor, 32 bytes:
 *
 * ```
 *  0    1      2        4            6        8        16           24          32
 *  +----+------+--------+------------+--------+--------+------------+-----------+
 *  | op | flag | handle | nrSegments | status | id u64 | sector u64 | arg u64   |
 *  +----+------+--------+------------+--------+--------+------------+-----------+
 * ```
 * and the completion entry, which is the x86_64 response layout above.
 */
import {
  ABI_X86_32, ABI_X86_64, BLKIF_MAX_INDIRECT_SEGMENTS, BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER, BLKIF_REQUEST_BYTES_X86_32, BLKIF_REQUEST_BYTES_X86_64,
  BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY, BLKIF_SEGMENT_BYTES, BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  SECTORS_PER_PAGE,
} from './constants';
import {
  BAD_ABI, BAD_DISCARD_FLAG, BAD_ID, BAD_INDIRECT_NR_SEGMENTS, BAD_INDIRECT_OP, BAD_NR_SEGMENTS,
  BAD_OPERATION, BAD_SECTOR_RANGE, BAD_SLOT_SIZE, ID_IN_FLIGHT, OK, REQ_PROD_OVERFLOW, RSP_BAD_ID,
  RSP_BAD_OPERATION, RSP_BAD_STATUS, RSP_NOT_IN_FLIGHT, RSP_PROD_OVERFLOW,
} from './status';
import {
  SRING_REQ_PROD, SRING_RSP_PROD, consOf, nrEntsOf, prodPvtOf, requestProdOverflow, setCons,
  setProdPvt, slotAddress, slotSizeOf, sringOf,
} from './ring';

// ---- descriptor offsets ----
@inline export const DESC_OP: u32 = 0;
@inline export const DESC_FLAG: u32 = 1;
@inline export const DESC_HANDLE: u32 = 2;
@inline export const DESC_NR_SEGMENTS: u32 = 4;
@inline export const DESC_STATUS: u32 = 6;
@inline export const DESC_ID: u32 = 8;
@inline export const DESC_SECTOR: u32 = 16;
@inline export const DESC_ARG: u32 = 24;
@inline export const REQUEST_DESC_BYTES: u32 = 32;
@inline export const COMPLETION_BYTES: u32 = 16;
/** Room blkifTakeRequests leaves per descriptor for copied segments (11 · 8). */
@inline export const TAKE_SEGMENT_AREA_BYTES: u32 = 88;

// ---- wire offsets that do not depend on the ABI ----
@inline const REQ_OP: u32 = 0;
@inline const REQ_NR_SEGMENTS: u32 = 1; // u8; discard: flag; indirect: indirect_op
@inline const REQ_HANDLE: u32 = 2; // u16; indirect: nr_segments u16
@inline const RSP_ID: u32 = 0;
@inline const RSP_OP: u32 = 8;
@inline const RSP_STATUS: u32 = 10;
/** Keeps gref, first_sect, last_sect of a segment; clears its pad u16. */
@inline const SEGMENT_PAD_MASK: u64 = 0x0000_ffff_ffff_ffff;

// ---- wire offsets per ABI ----
@inline export function abiValid(abi: u32): bool { return abi == ABI_X86_64 || abi == ABI_X86_32; }
@inline export function requestBytes(abi: u32): u32 {
  return abi == ABI_X86_32 ? BLKIF_REQUEST_BYTES_X86_32 : BLKIF_REQUEST_BYTES_X86_64;
}
@inline function reqId(abi: u32): u32 { return abi == ABI_X86_32 ? 4 : 8; }
@inline function reqSector(abi: u32): u32 { return abi == ABI_X86_32 ? 12 : 16; }
/** seg[] of read/write; nr_sectors of discard; handle of indirect. */
@inline function reqTail(abi: u32): u32 { return abi == ABI_X86_32 ? 20 : 24; }
@inline function reqIndirectGrefs(abi: u32): u32 { return abi == ABI_X86_32 ? 24 : 28; }

/** Copy one segment, clearing its pad: every segment we write has pad 0. */
@inline function copySegment(src: usize, dst: usize): void {
  store<u64>(dst, load<u64>(src) & SEGMENT_PAD_MASK);
}

@inline function checkSegments(segs: usize, n: u32): i32 {
  for (let i: u32 = 0; i < n; i++) {
    const seg = segs + <usize>(i * BLKIF_SEGMENT_BYTES);
    const first = load<u8>(seg, 4);
    const last = load<u8>(seg, 5);
    if (first > last || <u32>last >= SECTORS_PER_PAGE) return BAD_SECTOR_RANGE;
  }
  return OK;
}

/**
 * Validate a descriptor (and the segments its `arg` points to). Rules, in
 * this order: op known; read/write 1..11 segments, barrier/flush 0..11; each
 * segment first_sect ≤ last_sect ≤ 7 (in order); discard flag 0/1; indirect
 * indirect_op read/write, then nr_segments 1..4096. Direct requests ignore
 * `flag`; discard ignores nrSegments. Returns OK or the first violation.
 */
export function validateDescriptor(desc: usize): i32 {
  const op = load<u8>(desc, DESC_OP);
  const flag = load<u8>(desc, DESC_FLAG);
  const nr = <u32>load<u16>(desc, DESC_NR_SEGMENTS);
  switch (op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE: {
      if (nr == 0 || nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return BAD_NR_SEGMENTS;
      return checkSegments(<usize>load<u32>(desc, DESC_ARG), nr);
    }
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE: {
      if (nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return BAD_NR_SEGMENTS;
      return checkSegments(<usize>load<u32>(desc, DESC_ARG), nr);
    }
    case BLKIF_OP_DISCARD:
      return flag > 1 ? BAD_DISCARD_FLAG : OK;
    case BLKIF_OP_INDIRECT: {
      if (flag != BLKIF_OP_READ && flag != BLKIF_OP_WRITE) return BAD_INDIRECT_OP;
      if (nr == 0 || nr > BLKIF_MAX_INDIRECT_SEGMENTS) return BAD_INDIRECT_NR_SEGMENTS;
      return OK;
    }
    default:
      return BAD_OPERATION;
  }
}

/** Indirect pages needed for `nr` segments: ceil(nr / 512). */
@inline export function indirectPages(nr: u32): u32 {
  return (nr + BLKIF_SEGMENTS_PER_INDIRECT_PAGE - 1) / BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
}

/** Encode a validated descriptor into a full slot: every byte not a field is zero. */
function encodeSlot(desc: usize, slot: usize, abi: u32): void {
  const op = load<u8>(desc, DESC_OP);
  memory.fill(slot, 0, requestBytes(abi));
  store<u8>(slot + REQ_OP, op);
  store<u64>(slot + reqId(abi), load<u64>(desc, DESC_ID));
  store<u64>(slot + reqSector(abi), load<u64>(desc, DESC_SECTOR));
  if (op == BLKIF_OP_DISCARD) {
    store<u8>(slot + REQ_NR_SEGMENTS, load<u8>(desc, DESC_FLAG));
    store<u16>(slot + REQ_HANDLE, load<u16>(desc, DESC_HANDLE));
    store<u64>(slot + reqTail(abi), load<u64>(desc, DESC_ARG));
  } else if (op == BLKIF_OP_INDIRECT) {
    const nr = <u32>load<u16>(desc, DESC_NR_SEGMENTS);
    store<u8>(slot + REQ_NR_SEGMENTS, load<u8>(desc, DESC_FLAG));
    store<u16>(slot + REQ_HANDLE, <u16>nr);
    store<u16>(slot + reqTail(abi), load<u16>(desc, DESC_HANDLE));
    const grefs = <usize>load<u32>(desc, DESC_ARG);
    const out = slot + reqIndirectGrefs(abi);
    const pages = indirectPages(nr);
    for (let i: u32 = 0; i < pages; i++) store<u32>(out + (i << 2), load<u32>(grefs + (i << 2)));
  } else {
    const nr = <u32>load<u16>(desc, DESC_NR_SEGMENTS);
    store<u8>(slot + REQ_NR_SEGMENTS, <u8>nr);
    store<u16>(slot + REQ_HANDLE, load<u16>(desc, DESC_HANDLE));
    const segs = <usize>load<u32>(desc, DESC_ARG);
    const out = slot + reqTail(abi);
    for (let i: u32 = 0; i < nr; i++) copySegment(segs + (i << 3), out + (i << 3));
  }
}

/**
 * Copy a request slot into a descriptor once, then validate the copy. All 32
 * descriptor bytes are written. Direct requests copy their segments (pad
 * cleared) to `segs` only when nr_segments ≤ 11, and set arg = segs;
 * indirect requests copy all 8 indirect_grefs to `segs` and set arg = segs;
 * discard sets arg = nr_sectors; an unknown op gets flag, nrSegments, arg 0
 * and the generic handle/id/sector, so the back can answer EOPNOTSUPP.
 */
function decodeSlot(slot: usize, desc: usize, segs: usize, abi: u32): i32 {
  const op = load<u8>(slot + REQ_OP);
  const b1 = load<u8>(slot + REQ_NR_SEGMENTS);
  let flag: u8 = 0;
  let handle = load<u16>(slot + REQ_HANDLE);
  let nr: u32 = 0;
  let arg: u64 = 0;
  if (op == BLKIF_OP_DISCARD) {
    flag = b1;
    arg = load<u64>(slot + reqTail(abi));
  } else if (op == BLKIF_OP_INDIRECT) {
    flag = b1;
    nr = <u32>handle; // the u16 at offset 2 is nr_segments for indirect
    handle = load<u16>(slot + reqTail(abi));
    memory.copy(segs, slot + reqIndirectGrefs(abi), 8 << 2);
    arg = <u64>segs;
  } else if (op <= BLKIF_OP_FLUSH_DISKCACHE) {
    nr = <u32>b1;
    if (nr <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      const src = slot + reqTail(abi);
      for (let i: u32 = 0; i < nr; i++) copySegment(src + (i << 3), segs + (i << 3));
    }
    arg = <u64>segs;
  }
  store<u8>(desc + DESC_OP, op);
  store<u8>(desc + DESC_FLAG, flag);
  store<u16>(desc + DESC_HANDLE, handle);
  store<u16>(desc + DESC_NR_SEGMENTS, <u16>nr);
  store<u64>(desc + DESC_ID, load<u64>(slot + reqId(abi)));
  store<u64>(desc + DESC_SECTOR, load<u64>(slot + reqSector(abi)));
  store<u64>(desc + DESC_ARG, arg);
  const status = validateDescriptor(desc);
  store<i16>(desc + DESC_STATUS, <i16>status);
  return status;
}

/** Copy a wire response into a completion entry (x86_64 layout, pads zero). */
@inline function copyResponse(src: usize, dst: usize): void {
  store<u64>(dst, load<u64>(src + RSP_ID));
  store<u32>(dst + 8, <u32>load<u8>(src + RSP_OP) | (<u32>load<u16>(src + RSP_STATUS) << 16));
  store<u32>(dst + 12, 0);
}

/** Write a response entry in wire form: 16 bytes (x86_64) or 12 (x86_32), pads zero. */
@inline function writeResponse(rsp: usize, out: usize, abi: u32): void {
  store<u64>(out + RSP_ID, load<u64>(rsp));
  store<u32>(out + RSP_OP, <u32>load<u8>(rsp, 8) | (<u32>load<u16>(rsp, 10) << 16));
  if (abi == ABI_X86_64) store<u32>(out + 12, 0);
}

@inline function statusValid(s: i16): bool { return s <= BLKIF_RSP_OKAY && s >= BLKIF_RSP_EOPNOTSUPP; }

// ------------------------------------------------------------ single codecs

/** Validate and encode one descriptor into a full slot; writes desc.status. Slot untouched on failure. */
export function blkifEncodeRequest(desc: usize, slot: usize, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  const status = validateDescriptor(desc);
  if (status == OK) encodeSlot(desc, slot, abi);
  store<i16>(desc + DESC_STATUS, <i16>status);
  return status;
}

/** Copy one slot into a descriptor (+ segments at `segs`) and validate it. */
export function blkifDecodeRequest(slot: usize, desc: usize, segs: usize, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  return decodeSlot(slot, desc, segs, abi);
}

/** Encode one response entry into 16 / 12 wire bytes. Any status is encoded. */
export function blkifEncodeResponse(rsp: usize, out: usize, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  writeResponse(rsp, out, abi);
  return OK;
}

/** Decode one wire response into a response entry; RSP_BAD_STATUS (entry still written) unless status is 0/−1/−2. */
export function blkifDecodeResponse(input: usize, rsp: usize, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  copyResponse(input, rsp);
  return statusValid(load<i16>(rsp, 10)) ? OK : RSP_BAD_STATUS;
}

/**
 * Copy `count` segments out of indirect pages (u32 page addresses at
 * `pages`, 512 segments per page) into `out`, once, pads cleared; then
 * validate the copy. Returns OK, BAD_INDIRECT_NR_SEGMENTS (count 0 or > 4096,
 * nothing copied) or BAD_SECTOR_RANGE (everything copied).
 */
export function blkifCopyIndirectSegments(pages: usize, count: u32, out: usize): i32 {
  if (count == 0 || count > BLKIF_MAX_INDIRECT_SEGMENTS) return BAD_INDIRECT_NR_SEGMENTS;
  for (let i: u32 = 0; i < count; i++) {
    const page = <usize>load<u32>(pages + ((i / BLKIF_SEGMENTS_PER_INDIRECT_PAGE) << 2));
    copySegment(page + ((i % BLKIF_SEGMENTS_PER_INDIRECT_PAGE) << 3), out + (i << 3));
  }
  return checkSegments(out, count);
}

// --------------------------------------------------------------- batch, front

/**
 * Front: for each descriptor while the ring has a free slot (checked first,
 * so a full ring processes nothing): validate it, check id < nrEnts
 * (BAD_ID) and shadow[id] == 0 (ID_IN_FLIGHT), then encode it into the slot
 * at req_prod_pvt, set shadow[id] = op + 1 (indirect: indirect_op + 1) and
 * advance req_prod_pvt. A rejected descriptor touches neither slot, shadow
 * nor req_prod_pvt. desc.status is written for each processed descriptor.
 * Returns how many were processed, or BAD_ABI / BAD_SLOT_SIZE (slot smaller
 * than a request) before touching anything.
 */
export function blkifWriteRequests(state: usize, shadow: usize, descs: usize, n: u32, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  if (slotSizeOf(state) < requestBytes(abi)) return BAD_SLOT_SIZE;
  const nrEnts = nrEntsOf(state);
  let prodPvt = prodPvtOf(state);
  let free = nrEnts - (prodPvt - consOf(state));
  let i: u32 = 0;
  for (; i < n && free != 0; i++) {
    const desc = descs + <usize>(i * REQUEST_DESC_BYTES);
    let status = validateDescriptor(desc);
    if (status == OK) {
      const id = load<u64>(desc, DESC_ID);
      if (id >= <u64>nrEnts) {
        status = BAD_ID;
      } else if (load<u8>(shadow + <usize>id) != 0) {
        status = ID_IN_FLIGHT;
      } else {
        encodeSlot(desc, slotAddress(state, prodPvt), abi);
        const op = load<u8>(desc, DESC_OP);
        store<u8>(shadow + <usize>id, (op == BLKIF_OP_INDIRECT ? load<u8>(desc, DESC_FLAG) : op) + 1);
        prodPvt++;
        free--;
      }
    }
    store<i16>(desc + DESC_STATUS, <i16>status);
  }
  setProdPvt(state, prodPvt);
  return <i32>i;
}

/**
 * Front: copy up to `max` responses out of the ring into completions, once
 * each, and validate the copy: id < nrEnts, shadow[id] != 0, op ==
 * shadow[id] − 1, status in {0, −1, −2}; then clear shadow[id] and advance
 * rsp_cons. Checks rsp_prod − rsp_cons ≤ nrEnts before reading any slot.
 * On the first violation returns its (negative) status: the responses before
 * it stay reaped (shadow cleared, rsp_cons past them, completions written),
 * the bad one's completion entry holds its copy but nothing else changes.
 */
export function blkifReapResponses(state: usize, shadow: usize, comps: usize, max: u32, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  if (slotSizeOf(state) < requestBytes(abi)) return BAD_SLOT_SIZE;
  const nrEnts = nrEntsOf(state);
  // Acquire: the back wrote responses before publishing rsp_prod; load it once.
  const prod = atomic.load<u32>(sringOf(state) + SRING_RSP_PROD);
  let cons = consOf(state);
  if (prod - cons > nrEnts) return RSP_PROD_OVERFLOW;
  const avail = prod - cons;
  const count = avail < max ? avail : max;
  for (let k: u32 = 0; k < count; k++) {
    const comp = comps + <usize>(k * COMPLETION_BYTES);
    copyResponse(slotAddress(state, cons), comp);
    const id = load<u64>(comp);
    let status = OK;
    if (id >= <u64>nrEnts) {
      status = RSP_BAD_ID;
    } else {
      const expect = load<u8>(shadow + <usize>id);
      if (expect == 0) status = RSP_NOT_IN_FLIGHT;
      else if (load<u8>(comp, 8) != expect - 1) status = RSP_BAD_OPERATION;
      else if (!statusValid(load<i16>(comp, 10))) status = RSP_BAD_STATUS;
    }
    if (status != OK) {
      setCons(state, cons);
      return status;
    }
    store<u8>(shadow + <usize>id, 0);
    cons++;
  }
  setCons(state, cons);
  return <i32>count;
}

// ---------------------------------------------------------------- batch, back

/**
 * Back: check req_prod against RING_REQUEST_PROD_OVERFLOW (REQ_PROD_OVERFLOW,
 * nothing consumed), then copy min(max, RING_UNCONSUMED_REQUESTS) requests
 * into descriptors (segments at segs + i·88), each validated from its copy
 * (desc.status), and advance req_cons. Returns the count.
 */
export function blkifTakeRequests(state: usize, descs: usize, segs: usize, max: u32, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  if (slotSizeOf(state) < requestBytes(abi)) return BAD_SLOT_SIZE;
  // Acquire: the front wrote requests before publishing req_prod; load it once.
  const prod = atomic.load<u32>(sringOf(state) + SRING_REQ_PROD);
  if (requestProdOverflow(state, prod)) return REQ_PROD_OVERFLOW;
  const cons = consOf(state);
  const req = prod - cons;
  const room = nrEntsOf(state) - (cons - prodPvtOf(state));
  let count = req < room ? req : room;
  if (max < count) count = max;
  for (let k: u32 = 0; k < count; k++) {
    decodeSlot(slotAddress(state, cons + k), descs + <usize>(k * REQUEST_DESC_BYTES),
      segs + <usize>(k * TAKE_SEGMENT_AREA_BYTES), abi);
  }
  setCons(state, cons + count);
  return <i32>count;
}

/** Back: write `n` response entries (16 bytes each) at rsp_prod_pvt, any status. Returns n. */
export function blkifWriteResponses(state: usize, rsps: usize, n: u32, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  if (slotSizeOf(state) < requestBytes(abi)) return BAD_SLOT_SIZE;
  const pvt = prodPvtOf(state);
  for (let i: u32 = 0; i < n; i++) {
    writeResponse(rsps + <usize>(i * COMPLETION_BYTES), slotAddress(state, pvt + i), abi);
  }
  setProdPvt(state, pvt + n);
  return <i32>n;
}
