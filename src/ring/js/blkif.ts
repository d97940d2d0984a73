/**
 * blkif request/response codecs and batch ring operations, TypeScript twin of
 * assembly/blkif.ts: the same validation order, the same bytes written.
 *
 * Request, x86_64-abi (112 bytes; read, write, write-barrier, flush-diskcache):
 *
 * ```
 *  0    1           2        4      8        16              24                      112
 *  +----+-----------+--------+------+--------+---------------+-----------------------+
 *  | op | nr_segs   | handle | pad  | id u64 | sector_number | seg[11], 8 bytes each |
 *  +----+-----------+--------+------+--------+---------------+-----------------------+
 * ```
 * x86_32-abi (108 bytes): no pad, id@4, sector_number@12, seg@20.
 *
 * Segment, 8 bytes: `gref u32@0, first_sect u8@4, last_sect u8@5, pad u16@6`.
 *
 * Discard (op 5): `op@0 flag@1 handle@2 id sector nr_sectors u64` with
 * id/sector/nr_sectors at 8/16/24 (x86_64) or 4/12/20 (x86_32).
 *
 * Indirect (op 6): `op@0 indirect_op@1 nr_segments u16@2 id sector handle
 * indirect_grefs[8]` with handle/grefs at 24/28 (x86_64) or 20/24 (x86_32).
 *
 * Response, 16 bytes (x86_64) / 12 (x86_32): `id u64@0 op u8@8 pad status i16@10 [pad]`.
 *
 * Request descriptor (host table), 32 bytes, read as u32 words:
 *
 * ```
 *  word 0                          word 1                 2,3     4,5         6,7
 *  +----+------+--------+          +------------+--------+-------+-----------+-----------+
 *  | op | flag | handle |          | nrSegments | status | id    | sector    | arg       |
 *  | u8 |  u8  |  u16   |          |    u16     |  i16   | lo,hi | lo,hi     | lo,hi     |
 *  +----+------+--------+          +------------+--------+-------+-----------+-----------+
 * ```
 *
 * Completion entry: the x86_64 response layout, pads zero.
 *
 * Everything works in u32 words (one load for op/flag/handle, two for a u64
 * as lo/hi): no BigInt, no allocation. Segments are copied with their pad
 * cleared. Addresses of slots, descriptors and segment arrays are 4-aligned.
 */
import { Abi } from '../engine.js';
import { BlkifStatus } from '../status.js';
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT,
  BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_REQUEST_BYTES_X86_32,
  BLKIF_REQUEST_BYTES_X86_64, BLKIF_SEGMENTS_PER_INDIRECT_PAGE, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  SECTORS_PER_PAGE,
} from '../../blkif/constants.js';
import {
  SRING_REQ_PROD, SRING_RSP_PROD, STATE_CONS, STATE_NR_ENTS, STATE_PROD_PVT, STATE_SLOT_SIZE, STATE_SRING,
  requestProdOverflow, slotAddress,
} from './ring.js';
import type { Views } from './views.js';

const BLKIF_MAX_INDIRECT_SEGMENTS = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
const COMPLETION_WORDS = 4; // 16-byte completion / response entry
const TAKE_SEGMENT_AREA_BYTES = 88;
/** Keeps op (byte 8) and status (bytes 10..11) of a response word; clears the pad byte. */
const RSP_WORD_MASK = 0xffff00ff;
/** Keeps first_sect and last_sect of a segment's second word; clears its pad. */
const SEG_WORD_MASK = 0xffff;

export const abiValid = (abi: number): boolean => abi === Abi.X86_64 || abi === Abi.X86_32;
const requestBytes = (abi: number): number => (abi === Abi.X86_32 ? BLKIF_REQUEST_BYTES_X86_32 : BLKIF_REQUEST_BYTES_X86_64);
/** u32 word of the id in a request slot; sector follows at +2, the tail at +4. */
const reqIdWord = (abi: number): number => (abi === Abi.X86_32 ? 1 : 2);

/** first_sect ≤ last_sect ≤ 7 for `n` segments at byte address `segs`. */
function checkSegments(u32: Uint32Array, segs: number, n: number): number {
  const w = (segs >>> 2) + 1;
  for (let i = 0; i < n; i++) {
    const fl = u32[w + 2 * i]!; // first_sect | last_sect << 8 | pad << 16
    const first = fl & 0xff;
    const last = (fl >>> 8) & 0xff;
    if (first > last || last >= SECTORS_PER_PAGE) return BlkifStatus.BAD_SECTOR_RANGE;
  }
  return BlkifStatus.OK;
}

/**
 * The validation rules, in assembly/blkif.ts's order: op known; read/write
 * 1..11 segments, barrier/flush 0..11; each segment's sector range; discard
 * flag 0/1; indirect indirect_op read/write, then nr_segments 1..4096.
 */
function validate(u32: Uint32Array, op: number, flag: number, nr: number, segs: number): number {
  switch (op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
      if (nr === 0 || nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return BlkifStatus.BAD_NR_SEGMENTS;
      return checkSegments(u32, segs, nr);
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE:
      if (nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return BlkifStatus.BAD_NR_SEGMENTS;
      return checkSegments(u32, segs, nr);
    case BLKIF_OP_DISCARD:
      return flag > 1 ? BlkifStatus.BAD_DISCARD_FLAG : BlkifStatus.OK;
    case BLKIF_OP_INDIRECT:
      if (flag !== BLKIF_OP_READ && flag !== BLKIF_OP_WRITE) return BlkifStatus.BAD_INDIRECT_OP;
      if (nr === 0 || nr > BLKIF_MAX_INDIRECT_SEGMENTS) return BlkifStatus.BAD_INDIRECT_NR_SEGMENTS;
      return BlkifStatus.OK;
    default:
      return BlkifStatus.BAD_OPERATION;
  }
}

/** Validate the descriptor at byte address `desc` (status not written). */
function validateDescriptor(u32: Uint32Array, desc: number): number {
  const d = desc >>> 2;
  const w0 = u32[d]!;
  return validate(u32, w0 & 0xff, (w0 >>> 8) & 0xff, u32[d + 1]! & 0xffff, u32[d + 6]!);
}

/** Write desc.status (i16 at byte 6), keeping nrSegments. */
function setDescStatus(u32: Uint32Array, desc: number, status: number): void {
  const w = (desc >>> 2) + 1;
  u32[w] = ((u32[w]! & 0xffff) | (status << 16)) >>> 0;
}

/** Encode a validated descriptor into a full slot: every byte that is not a field is zero. */
function encodeSlot(u32: Uint32Array, desc: number, slot: number, abi: number): void {
  const d = desc >>> 2;
  const s = slot >>> 2;
  const end = s + (requestBytes(abi) >>> 2);
  const w0 = u32[d]!;
  const op = w0 & 0xff;
  const idW = s + reqIdWord(abi);
  const tail = idW + 4; // seg[] / nr_sectors / indirect handle
  if (abi === Abi.X86_64) u32[s + 1] = 0; // pad between handle and id
  u32[idW] = u32[d + 2]!;
  u32[idW + 1] = u32[d + 3]!;
  u32[idW + 2] = u32[d + 4]!;
  u32[idW + 3] = u32[d + 5]!;
  let w = tail;
  if (op === BLKIF_OP_DISCARD) {
    u32[s] = w0; // op | flag << 8 | handle << 16
    u32[w++] = u32[d + 6]!; // nr_sectors lo
    u32[w++] = u32[d + 7]!; // nr_sectors hi
  } else if (op === BLKIF_OP_INDIRECT) {
    const nr = u32[d + 1]! & 0xffff;
    u32[s] = ((w0 & 0xffff) | (nr << 16)) >>> 0; // op | indirect_op << 8 | nr_segments << 16
    u32[w++] = w0 >>> 16; // handle, pad 0
    const pages = ((nr + BLKIF_SEGMENTS_PER_INDIRECT_PAGE - 1) / BLKIF_SEGMENTS_PER_INDIRECT_PAGE) | 0;
    const g = u32[d + 6]! >>> 2;
    for (let i = 0; i < pages; i++) u32[w++] = u32[g + i]!;
  } else {
    const nr = u32[d + 1]! & 0xffff;
    u32[s] = ((w0 & 0xffff00ff) | (nr << 8)) >>> 0; // op | nr_segments << 8 | handle << 16
    const g = u32[d + 6]! >>> 2;
    for (let i = 0; i < 2 * nr; i += 2) {
      u32[w++] = u32[g + i]!;
      u32[w++] = u32[g + i + 1]! & SEG_WORD_MASK;
    }
  }
  while (w < end) u32[w++] = 0;
}

/**
 * Copy a request slot into a descriptor once, then validate the copy (never
 * the shared slot). All 32 descriptor bytes are written; see
 * assembly/blkif.ts decodeSlot for what each operation puts in flag,
 * nrSegments and arg.
 */
function decodeSlot(u32: Uint32Array, slot: number, desc: number, segs: number, abi: number): number {
  const s = slot >>> 2;
  const d = desc >>> 2;
  const w0 = u32[s]!;
  const op = w0 & 0xff;
  const b1 = (w0 >>> 8) & 0xff;
  let handle = w0 >>> 16;
  const idW = s + reqIdWord(abi);
  const tail = idW + 4;
  let flag = 0;
  let nr = 0;
  let argLo = 0;
  let argHi = 0;
  if (op === BLKIF_OP_DISCARD) {
    flag = b1;
    argLo = u32[tail]!;
    argHi = u32[tail + 1]!;
  } else if (op === BLKIF_OP_INDIRECT) {
    flag = b1;
    nr = handle; // the u16 at offset 2 is nr_segments for indirect
    handle = u32[tail]! & 0xffff;
    const g = segs >>> 2;
    for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) u32[g + i] = u32[tail + 1 + i]!;
    argLo = segs;
  } else if (op <= BLKIF_OP_FLUSH_DISKCACHE) {
    nr = b1;
    if (nr <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      const g = segs >>> 2;
      for (let i = 0; i < 2 * nr; i += 2) {
        u32[g + i] = u32[tail + i]!;
        u32[g + i + 1] = u32[tail + i + 1]! & SEG_WORD_MASK;
      }
    }
    argLo = segs;
  }
  u32[d] = (op | (flag << 8) | (handle << 16)) >>> 0;
  u32[d + 2] = u32[idW]!;
  u32[d + 3] = u32[idW + 1]!;
  u32[d + 4] = u32[idW + 2]!;
  u32[d + 5] = u32[idW + 3]!;
  u32[d + 6] = argLo;
  u32[d + 7] = argHi;
  const status = validate(u32, op, flag, nr, argLo);
  u32[d + 1] = (nr | (status << 16)) >>> 0; // nrSegments | status << 16
  return status;
}

/** status i16 in the high half of a response word is 0, −1 or −2. */
const statusValid = (word: number): boolean => {
  const hi = word >>> 16;
  return hi === 0 || hi === 0xffff || hi === 0xfffe;
};

// ------------------------------------------------------------ single codecs

/** Validate and encode one descriptor into a full slot; writes desc.status. Slot untouched on failure. */
export function encodeRequest(v: Views, desc: number, slot: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const status = validateDescriptor(u32, desc);
  if (status === BlkifStatus.OK) encodeSlot(u32, desc, slot, abi);
  setDescStatus(u32, desc, status);
  return status;
}

/** Copy one slot into a descriptor (+ segments at `segs`) and validate it. */
export function decodeRequest(v: Views, slot: number, desc: number, segs: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  return decodeSlot(v.u32, slot, desc, segs, abi);
}

/** Encode one response entry into 16 / 12 wire bytes. Any status is encoded. */
export function encodeResponse(v: Views, rsp: number, out: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const r = rsp >>> 2;
  const o = out >>> 2;
  u32[o] = u32[r]!;
  u32[o + 1] = u32[r + 1]!;
  u32[o + 2] = u32[r + 2]! & RSP_WORD_MASK;
  if (abi === Abi.X86_64) u32[o + 3] = 0;
  return BlkifStatus.OK;
}

/** Decode one wire response into an entry; RSP_BAD_STATUS (entry still written) unless status is 0/−1/−2. */
export function decodeResponse(v: Views, input: number, rsp: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const i = input >>> 2;
  const r = rsp >>> 2;
  u32[r] = u32[i]!;
  u32[r + 1] = u32[i + 1]!;
  const w = u32[i + 2]! & RSP_WORD_MASK;
  u32[r + 2] = w;
  u32[r + 3] = 0;
  return statusValid(w) ? BlkifStatus.OK : BlkifStatus.RSP_BAD_STATUS;
}

/**
 * Copy `count` segments out of indirect pages (u32 page addresses at
 * `pages`, 512 per page) into `out`, once, pads cleared; then validate the
 * copy. OK, BAD_INDIRECT_NR_SEGMENTS (nothing copied) or BAD_SECTOR_RANGE.
 */
export function copyIndirectSegments(v: Views, pages: number, count: number, out: number): number {
  if (count === 0 || count > BLKIF_MAX_INDIRECT_SEGMENTS) return BlkifStatus.BAD_INDIRECT_NR_SEGMENTS;
  const u32 = v.u32;
  const p = pages >>> 2;
  let o = out >>> 2;
  for (let done = 0, page = 0; done < count; page++) {
    const n = Math.min(BLKIF_SEGMENTS_PER_INDIRECT_PAGE, count - done);
    const src = u32[p + page]! >>> 2;
    for (let i = 0; i < 2 * n; i += 2) {
      u32[o++] = u32[src + i]!;
      u32[o++] = u32[src + i + 1]! & SEG_WORD_MASK;
    }
    done += n;
  }
  return checkSegments(u32, out, count);
}

// --------------------------------------------------------------- batch, front

/**
 * Front: for each descriptor while the ring has a free slot (checked first):
 * validate it, then id < nrEnts (BAD_ID) and shadow[id] == 0 (ID_IN_FLIGHT);
 * encode it at req_prod_pvt, set shadow[id] = op + 1 (indirect: indirect_op
 * + 1), advance req_prod_pvt. A rejected descriptor changes nothing but its
 * status. Returns how many were processed, or BAD_ABI / BAD_SLOT_SIZE.
 * Does not publish: the caller pushes (pushRequestsAndCheckNotify).
 */
export function writeRequests(v: Views, state: number, shadow: number, descs: number, n: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const u8 = v.u8;
  const st = state >>> 2;
  if (u32[st + STATE_SLOT_SIZE]! < requestBytes(abi)) return BlkifStatus.BAD_SLOT_SIZE;
  const nrEnts = u32[st + STATE_NR_ENTS]!;
  const sring = u32[st + STATE_SRING]!;
  const slotSize = u32[st + STATE_SLOT_SIZE]!;
  const mask = nrEnts - 1;
  let prodPvt = u32[st + STATE_PROD_PVT]!;
  let free = (nrEnts - ((prodPvt - u32[st + STATE_CONS]!) >>> 0)) >>> 0;
  let i = 0;
  for (; i < n && free !== 0; i++) {
    const desc = descs + i * 32;
    const d = desc >>> 2;
    let status = validateDescriptor(u32, desc);
    if (status === BlkifStatus.OK) {
      const idLo = u32[d + 2]!;
      if (u32[d + 3]! !== 0 || idLo >= nrEnts) {
        status = BlkifStatus.BAD_ID;
      } else if (u8[shadow + idLo] !== 0) {
        status = BlkifStatus.ID_IN_FLIGHT;
      } else {
        encodeSlot(u32, desc, sring + 64 + ((prodPvt & mask) >>> 0) * slotSize, abi);
        const w0 = u32[d]!;
        const op = w0 & 0xff;
        u8[shadow + idLo] = (op === BLKIF_OP_INDIRECT ? (w0 >>> 8) & 0xff : op) + 1;
        prodPvt = (prodPvt + 1) >>> 0;
        free--;
      }
    }
    setDescStatus(u32, desc, status);
  }
  u32[st + STATE_PROD_PVT] = prodPvt;
  return i;
}

/**
 * Front: copy up to `max` responses into completions, once each, and
 * validate the copy: id < nrEnts, in flight, op as expected, status in
 * {0, −1, −2}; clear shadow[id]; advance rsp_cons. RSP_PROD_OVERFLOW before
 * any slot is read if rsp_prod − rsp_cons > nrEnts. On the first violation
 * returns it: responses before it stay reaped; the bad one's completion
 * holds its copy, nothing else changes.
 */
export function reapResponses(v: Views, state: number, shadow: number, comps: number, max: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const u8 = v.u8;
  const st = state >>> 2;
  if (u32[st + STATE_SLOT_SIZE]! < requestBytes(abi)) return BlkifStatus.BAD_SLOT_SIZE;
  const nrEnts = u32[st + STATE_NR_ENTS]!;
  const sring = u32[st + STATE_SRING]!;
  const slotSize = u32[st + STATE_SLOT_SIZE]!;
  const mask = nrEnts - 1;
  // Acquire: the back wrote responses before publishing rsp_prod; load it once.
  const prod = Atomics.load(u32, (sring >>> 2) + SRING_RSP_PROD);
  let cons = u32[st + STATE_CONS]!;
  const avail = (prod - cons) >>> 0;
  if (avail > nrEnts) return BlkifStatus.RSP_PROD_OVERFLOW;
  const count = avail < max >>> 0 ? avail : max >>> 0;
  let c = comps >>> 2;
  for (let k = 0; k < count; k++, c += COMPLETION_WORDS) {
    // Copy once out of the shared slot; everything below reads the copy.
    const src = (sring + 64 + ((cons & mask) >>> 0) * slotSize) >>> 2;
    const idLo = u32[src]!;
    const idHi = u32[src + 1]!;
    const w = u32[src + 2]! & RSP_WORD_MASK;
    u32[c] = idLo;
    u32[c + 1] = idHi;
    u32[c + 2] = w;
    u32[c + 3] = 0;
    let status: number = BlkifStatus.OK;
    if (idHi !== 0 || idLo >= nrEnts) {
      status = BlkifStatus.RSP_BAD_ID;
    } else {
      const expect = u8[shadow + idLo]!;
      if (expect === 0) status = BlkifStatus.RSP_NOT_IN_FLIGHT;
      else if ((w & 0xff) !== expect - 1) status = BlkifStatus.RSP_BAD_OPERATION;
      else if (!statusValid(w)) status = BlkifStatus.RSP_BAD_STATUS;
    }
    if (status !== BlkifStatus.OK) {
      u32[st + STATE_CONS] = cons;
      return status;
    }
    u8[shadow + idLo] = 0;
    cons = (cons + 1) >>> 0;
  }
  u32[st + STATE_CONS] = cons;
  return count;
}

// ---------------------------------------------------------------- batch, back

/**
 * Back: REQ_PROD_OVERFLOW (nothing consumed) if req_prod claims more than a
 * ring; else copy min(max, RING_UNCONSUMED_REQUESTS) requests into
 * descriptors (segments at segs + i·88), each validated from its copy, and
 * advance req_cons. Returns the count.
 */
export function takeRequests(v: Views, state: number, descs: number, segs: number, max: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const st = state >>> 2;
  if (u32[st + STATE_SLOT_SIZE]! < requestBytes(abi)) return BlkifStatus.BAD_SLOT_SIZE;
  // Acquire: the front wrote requests before publishing req_prod; load it once.
  const prod = Atomics.load(u32, (u32[st + STATE_SRING]! >>> 2) + SRING_REQ_PROD);
  if (requestProdOverflow(u32, state, prod)) return BlkifStatus.REQ_PROD_OVERFLOW;
  const cons = u32[st + STATE_CONS]!;
  const req = (prod - cons) >>> 0;
  const room = (u32[st + STATE_NR_ENTS]! - ((cons - u32[st + STATE_PROD_PVT]!) >>> 0)) >>> 0;
  let count = req < room ? req : room;
  if (max >>> 0 < count) count = max >>> 0;
  for (let k = 0; k < count; k++) {
    decodeSlot(u32, slotAddress(u32, state, (cons + k) >>> 0), descs + k * 32, segs + k * TAKE_SEGMENT_AREA_BYTES, abi);
  }
  u32[st + STATE_CONS] = (cons + count) >>> 0;
  return count;
}

/** Back: write `n` response entries (16 bytes each) at rsp_prod_pvt, any status. Returns n. Does not publish. */
export function writeResponses(v: Views, state: number, rsps: number, n: number, abi: number): number {
  if (!abiValid(abi)) return BlkifStatus.BAD_ABI;
  const u32 = v.u32;
  const st = state >>> 2;
  if (u32[st + STATE_SLOT_SIZE]! < requestBytes(abi)) return BlkifStatus.BAD_SLOT_SIZE;
  const sring = u32[st + STATE_SRING]!;
  const slotSize = u32[st + STATE_SLOT_SIZE]!;
  const mask = u32[st + STATE_NR_ENTS]! - 1;
  const pvt = u32[st + STATE_PROD_PVT]!;
  const x64 = abi === Abi.X86_64;
  let r = rsps >>> 2;
  for (let i = 0; i < n; i++, r += COMPLETION_WORDS) {
    const o = (sring + 64 + (((pvt + i) & mask) >>> 0) * slotSize) >>> 2;
    u32[o] = u32[r]!;
    u32[o + 1] = u32[r + 1]!;
    u32[o + 2] = u32[r + 2]! & RSP_WORD_MASK;
    if (x64) u32[o + 3] = 0;
  }
  u32[st + STATE_PROD_PVT] = (pvt + n) >>> 0;
  return n;
}
