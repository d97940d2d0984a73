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
 *
 * Segment arrays (copy with pads cleared, sector-range checks, two segments
 * per v128 in the release build) live in segments.ts.
 */
import {
  ABI_X86_32, ABI_X86_64, BLKIF_MAX_INDIRECT_SEGMENTS, BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER, BLKIF_REQUEST_BYTES_X86_32, BLKIF_REQUEST_BYTES_X86_64,
  BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY, BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
} from './constants';
import {
  BAD_ABI, BAD_DISCARD_FLAG, BAD_ID, BAD_INDIRECT_NR_SEGMENTS, BAD_INDIRECT_OP, BAD_NR_SEGMENTS,
  BAD_OPERATION, BAD_SECTOR_RANGE, BAD_SLOT_SIZE, ID_IN_FLIGHT, OK, REQ_PROD_OVERFLOW, RSP_BAD_ID,
  RSP_BAD_OPERATION, RSP_BAD_STATUS, RSP_NOT_IN_FLIGHT, RSP_PROD_OVERFLOW,
} from './status';
import {
  checkRequestSegments, checkSegments, copySegment, copySegmentsChecked, encodeSegmentArea, zeroWords64,
} from './segments';
import {
  SRING_REQ_PROD, SRING_RSP_PROD, consOf, nrEntsOf, prodPvtOf, requestProdOverflow, setCons,
  ringOf, setProdPvt, slotSizeOf, sringOf,
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
/** u32 at 0: op | nr_segments (discard: flag; indirect: indirect_op) << 8 | handle (indirect: nr_segments) << 16. */
@inline const REQ_OP: u32 = 0;
@inline const RSP_ID: u32 = 0;
/** u32 at 8: op u8, pad u8, status i16. */
@inline const RSP_OP: u32 = 8;

// ---- wire offsets per ABI ----
@inline export function abiValid(abi: u32): bool { return abi == ABI_X86_64 || abi == ABI_X86_32; }
@inline export function requestBytes(abi: u32): u32 {
  return abi == ABI_X86_32 ? BLKIF_REQUEST_BYTES_X86_32 : BLKIF_REQUEST_BYTES_X86_64;
}
/** id u64; sector_number u64 follows at +8. */
@inline function reqId(abi: u32): u32 { return abi == ABI_X86_32 ? 4 : 8; }
/** seg[] of read/write; nr_sectors of discard; handle of indirect. */
@inline function reqTail(abi: u32): u32 { return abi == ABI_X86_32 ? 20 : 24; }
@inline function reqIndirectGrefs(abi: u32): u32 { return abi == ABI_X86_32 ? 24 : 28; }

/**
 * Validate a descriptor (and the segments its `arg` points to). Rules, in
 * this order: op known; read/write 1..11 segments, barrier/flush 0..11; each
 * segment first_sect ≤ last_sect ≤ 7 (in order); discard flag 0/1; indirect
 * indirect_op read/write, then nr_segments 1..4096. Direct requests ignore
 * `flag`; discard ignores nrSegments. Returns OK or the first violation.
 */
@inline export function validateDescriptor(desc: usize): i32 {
  const op = load<u8>(desc, DESC_OP);
  const flag = load<u8>(desc, DESC_FLAG);
  const nr = <u32>load<u16>(desc, DESC_NR_SEGMENTS);
  switch (op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE: {
      if (nr == 0 || nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return BAD_NR_SEGMENTS;
      return checkRequestSegments(<usize>load<u32>(desc, DESC_ARG), nr);
    }
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE: {
      if (nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return BAD_NR_SEGMENTS;
      return checkRequestSegments(<usize>load<u32>(desc, DESC_ARG), nr);
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

/**
 * Encode a validated descriptor into a full slot: every byte not a field is
 * zero. No memory.fill (V8 compiles it to a call out of Wasm): the header
 * word (with the x86_64 pad), id and sector are stored whole, then the
 * 88-byte tail after them (x86_64: 24..112, x86_32: 20..108): seg[11] with
 * zero after the last segment, every byte stored once (read/write,
 * barrier, flush); or zeroed, then nr_sectors (discard) or handle and
 * indirect_grefs[ceil(n/512)] (indirect) stored over it.
 */
@inline function encodeSlot(desc: usize, slot: usize, abi: u32): void {
  const w0 = load<u32>(desc, DESC_OP); // op | flag << 8 | handle << 16
  const op = <u8>w0;
  const x32 = abi == ABI_X86_32;
  const idAt = slot + reqId(abi);
  const tail = slot + reqTail(abi);
  let head: u32;
  if (op == BLKIF_OP_DISCARD) {
    head = w0; // op | secure << 8 | handle << 16
    store<u64>(tail, load<u64>(desc, DESC_ARG));
    zeroWords64(tail + 8, TAKE_SEGMENT_AREA_BYTES / 8 - 1);
  } else if (op == BLKIF_OP_INDIRECT) {
    const nr = <u32>load<u16>(desc, DESC_NR_SEGMENTS);
    head = (w0 & 0xffff) | (nr << 16); // op | indirect_op << 8 | nr_segments << 16
    zeroWords64(tail, TAKE_SEGMENT_AREA_BYTES / 8);
    store<u16>(tail, <u16>(w0 >> 16)); // handle (pad after it stays 0)
    const grefs = <usize>load<u32>(desc, DESC_ARG);
    const out = slot + reqIndirectGrefs(abi);
    const pages = indirectPages(nr);
    for (let i: u32 = 0; i < pages; i++) store<u32>(out + (i << 2), load<u32>(grefs + (i << 2)));
  } else {
    const nr = <u32>load<u16>(desc, DESC_NR_SEGMENTS); // ≤ 11: validated
    head = (w0 & 0xffff_00ff) | (nr << 8); // op | nr_segments << 8 | handle << 16
    encodeSegmentArea(<usize>load<u32>(desc, DESC_ARG), tail, nr);
  }
  // x86_64 has a u32 pad between handle and id: the u64 store zeroes it.
  if (x32) store<u32>(slot, head);
  else store<u64>(slot, <u64>head);
  store<u64>(idAt, load<u64>(desc, DESC_ID));
  store<u64>(idAt, load<u64>(desc, DESC_SECTOR), 8);
}

/**
 * Copy a request slot into a descriptor once, then validate the copy. All 32
 * descriptor bytes are written. Direct requests copy their segments (pad
 * cleared) to `segs` only when nr_segments ≤ 11, and set arg = segs;
 * indirect requests copy all 8 indirect_grefs to `segs` and set arg = segs;
 * discard sets arg = nr_sectors; an unknown op gets flag, nrSegments, arg 0
 * and the generic handle/id/sector, so the back can answer EOPNOTSUPP.
 *
 * Each slot byte is read once into a register; the descriptor and segments
 * are written from those registers and validated from them (the same rules,
 * in the same order, as validateDescriptor applies to the written copy), so
 * a peer rewriting the slot meanwhile cannot split what we check from what
 * we keep.
 */
@inline function decodeSlot(slot: usize, desc: usize, segs: usize, abi: u32): i32 {
  const w0 = load<u32>(slot, REQ_OP); // op | nr_segments (or flag) << 8 | handle << 16
  const op = w0 & 0xff;
  const b1 = (w0 >> 8) & 0xff;
  const idAt = slot + reqId(abi);
  const id = load<u64>(idAt);
  const sector = load<u64>(idAt, 8);
  const tail = slot + reqTail(abi);
  let flag: u32 = 0;
  let handle = w0 >> 16;
  let nr: u32 = 0;
  let arg: u64 = 0;
  let status: i32;
  if (op <= <u32>BLKIF_OP_FLUSH_DISKCACHE) {
    // read, write, write-barrier, flush-diskcache
    nr = b1;
    arg = <u64>segs;
    let check: i32 = 0;
    if (nr <= BLKIF_MAX_SEGMENTS_PER_REQUEST) check = copySegmentsChecked(tail, segs, nr);
    if (nr > BLKIF_MAX_SEGMENTS_PER_REQUEST || (nr == 0 && op <= <u32>BLKIF_OP_WRITE)) status = BAD_NR_SEGMENTS;
    else status = check < 0 ? BAD_SECTOR_RANGE : OK;
  } else if (op == <u32>BLKIF_OP_DISCARD) {
    flag = b1;
    arg = load<u64>(tail);
    status = flag > 1 ? BAD_DISCARD_FLAG : OK;
  } else if (op == <u32>BLKIF_OP_INDIRECT) {
    flag = b1;
    nr = handle; // the u16 at offset 2 is nr_segments for indirect
    handle = <u32>load<u16>(tail);
    const grefs = slot + reqIndirectGrefs(abi); // 8 u32, 4-aligned in both ABIs
    store<u64>(segs, load<u64>(grefs));
    store<u64>(segs, load<u64>(grefs, 8), 8);
    store<u64>(segs, load<u64>(grefs, 16), 16);
    store<u64>(segs, load<u64>(grefs, 24), 24);
    arg = <u64>segs;
    if (flag != <u32>BLKIF_OP_READ && flag != <u32>BLKIF_OP_WRITE) status = BAD_INDIRECT_OP;
    else if (nr == 0 || nr > BLKIF_MAX_INDIRECT_SEGMENTS) status = BAD_INDIRECT_NR_SEGMENTS;
    else status = OK;
  } else {
    status = BAD_OPERATION;
  }
  // op | flag << 8 | handle << 16 | nrSegments << 32 | status << 48
  store<u64>(desc, <u64>(op | (flag << 8) | (handle << 16)) | (<u64>nr << 32) | (<u64>(status & 0xffff) << 48));
  store<u64>(desc, id, DESC_ID);
  store<u64>(desc, sector, DESC_SECTOR);
  store<u64>(desc, arg, DESC_ARG);
  return status;
}

/** Keeps op (byte 8) and status (bytes 10..11) of a response's third u32; clears the pad byte 9. */
@inline const RSP_WORD_MASK: u32 = 0xffff_00ff;

/** Copy a wire response into a completion entry (x86_64 layout, pads zero). Returns its op | status << 16 word. */
@inline function copyResponse(src: usize, dst: usize): u32 {
  const w = load<u32>(src, RSP_OP) & RSP_WORD_MASK;
  store<u64>(dst, load<u64>(src, RSP_ID));
  store<u64>(dst, <u64>w, RSP_OP); // op, pad, status, then 4 pad bytes zero
  return w;
}

/** Write a response entry in wire form: 16 bytes (x86_64) or 12 (x86_32), pads zero. */
@inline function writeResponse(rsp: usize, out: usize, abi: u32): void {
  const w = load<u32>(rsp, RSP_OP) & RSP_WORD_MASK;
  store<u64>(out, load<u64>(rsp), RSP_ID);
  if (abi == ABI_X86_64) store<u64>(out, <u64>w, RSP_OP);
  else store<u32>(out, w, RSP_OP);
}

/**
 * The status (high u16 of a response's op | status << 16 word) is one of
 * BLKIF_RSP_EOPNOTSUPP (−2), BLKIF_RSP_ERROR (−1), BLKIF_RSP_OKAY (0): adding
 * 2 modulo 2^16 maps exactly those to 0..2.
 */
@inline function statusWordValid(w: u32): bool {
  return (((w >> 16) - <u32><i32>BLKIF_RSP_EOPNOTSUPP) & 0xffff) <= <u32>(BLKIF_RSP_OKAY - BLKIF_RSP_EOPNOTSUPP);
}

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
  return statusWordValid(copyResponse(input, rsp)) ? OK : RSP_BAD_STATUS;
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
  const slotSize = slotSizeOf(state);
  if (slotSize < requestBytes(abi)) return BAD_SLOT_SIZE;
  // The ring state is private to this side: read it once into locals.
  const ring = ringOf(state);
  const nrEnts = nrEntsOf(state);
  const mask = nrEnts - 1;
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
        encodeSlot(desc, ring + <usize>((prodPvt & mask) * slotSize), abi);
        const w = <u32>load<u16>(desc, DESC_OP); // op | flag << 8
        const op = w & 0xff;
        store<u8>(shadow + <usize>id, <u8>((op == <u32>BLKIF_OP_INDIRECT ? w >> 8 : op) + 1));
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
  const slotSize = slotSizeOf(state);
  if (slotSize < requestBytes(abi)) return BAD_SLOT_SIZE;
  const sring = sringOf(state);
  const ring = ringOf(state);
  const nrEnts = nrEntsOf(state);
  const mask = nrEnts - 1;
  // Acquire: the back wrote responses before publishing rsp_prod; load it once.
  const prod = atomic.load<u32>(sring + SRING_RSP_PROD);
  let cons = consOf(state);
  if (prod - cons > nrEnts) return RSP_PROD_OVERFLOW;
  const avail = prod - cons;
  const count = avail < max ? avail : max;
  for (let k: u32 = 0; k < count; k++) {
    const comp = comps + <usize>(k * COMPLETION_BYTES);
    // Copy once out of the shared slot; the checks below use the copied values.
    const w = copyResponse(ring + <usize>((cons & mask) * slotSize), comp);
    const id = load<u64>(comp);
    let status = OK;
    if (id >= <u64>nrEnts) {
      status = RSP_BAD_ID;
    } else {
      const expect = <u32>load<u8>(shadow + <usize>id);
      if (expect == 0) status = RSP_NOT_IN_FLIGHT;
      else if ((w & 0xff) != expect - 1) status = RSP_BAD_OPERATION;
      else if (!statusWordValid(w)) status = RSP_BAD_STATUS;
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
  const slotSize = slotSizeOf(state);
  if (slotSize < requestBytes(abi)) return BAD_SLOT_SIZE;
  const ring = ringOf(state);
  const nrEnts = nrEntsOf(state);
  const mask = nrEnts - 1;
  // Acquire: the front wrote requests before publishing req_prod; load it once.
  const prod = atomic.load<u32>(sringOf(state) + SRING_REQ_PROD);
  if (requestProdOverflow(state, prod)) return REQ_PROD_OVERFLOW;
  const cons = consOf(state);
  const req = prod - cons;
  const room = nrEnts - (cons - prodPvtOf(state));
  let count = req < room ? req : room;
  if (max < count) count = max;
  for (let k: u32 = 0; k < count; k++) {
    decodeSlot(ring + <usize>(((cons + k) & mask) * slotSize), descs + <usize>(k * REQUEST_DESC_BYTES),
      segs + <usize>(k * TAKE_SEGMENT_AREA_BYTES), abi);
  }
  setCons(state, cons + count);
  return <i32>count;
}

/** Back: write `n` response entries (16 bytes each) at rsp_prod_pvt, any status. Returns n. */
export function blkifWriteResponses(state: usize, rsps: usize, n: u32, abi: u32): i32 {
  if (!abiValid(abi)) return BAD_ABI;
  const slotSize = slotSizeOf(state);
  if (slotSize < requestBytes(abi)) return BAD_SLOT_SIZE;
  const ring = ringOf(state);
  const mask = nrEntsOf(state) - 1;
  const pvt = prodPvtOf(state);
  for (let i: u32 = 0; i < n; i++) {
    writeResponse(rsps + <usize>(i * COMPLETION_BYTES), ring + <usize>(((pvt + i) & mask) * slotSize), abi);
  }
  setProdPvt(state, pvt + n);
  return <i32>n;
}
