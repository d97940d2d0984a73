/**
 * The RingEngine contract: the one narrow boundary between TypeScript and the
 * data path. Two implementations obey it byte for byte:
 *
 *   - WasmEngine (src/wasm)   — calls the AssemblyScript module (assembly/)
 *   - JsEngine   (src/ring/js) — the optimised TypeScript twin (baseline)
 *
 * Every method takes byte offsets into the engine's shared memory and plain
 * numbers, and returns one number. Nothing here allocates, throws on peer
 * data, or knows about promises: status codes come back, and exactly one
 * function (src/ring/status.ts) turns a status into an error.
 *
 * ## Tables the host builds in memory
 *
 * Ring state (ring.h's `struct xx_front_ring` / `xx_back_ring`), 32 bytes,
 * 4-aligned, private to one side (never in a shared page):
 *
 * ```
 *  0        4        8          12                    16               20       32
 *  +--------+--------+----------+---------------------+----------------+--------+
 *  | sring  | nrEnts | slotSize | prodPvt             | cons           | 0 ...  |
 *  |  u32   |  u32   |   u32    | req_prod_pvt (front)| rsp_cons (front)|       |
 *  |        |        |          | rsp_prod_pvt (back) | req_cons (back) |       |
 *  +--------+--------+----------+---------------------+----------------+--------+
 * ```
 * `sring` is the byte offset of the (page-aligned) shared ring.
 *
 * Shadow table (front only): `nrEnts` bytes, one per request id. 0 = id free;
 * otherwise the operation the response must carry, plus one (for an indirect
 * request: its indirect_op + 1). Request ids are < nrEnts; the host picks them.
 *
 * Request descriptor, 32 bytes (host → engine for push/encode; engine → host
 * for take/decode):
 *
 * ```
 *  0    1      2       4            6        8         16            24          32
 *  +----+------+-------+------------+--------+---------+-------------+-----------+
 *  | op | flag |handle | nrSegments | status | id u64  | sector u64  | arg u64   |
 *  | u8 |  u8  |  u16  |    u16     |  i16   | (lo,hi) |  (lo,hi)    |           |
 *  +----+------+-------+------------+--------+---------+-------------+-----------+
 * ```
 * - `flag`: discard → secure (0/1); indirect → indirect_op; else 0.
 * - `arg`: discard → nr_sectors (u64); read/write/barrier/flush → low u32 is
 *   the byte offset of `nrSegments` wire segments (8 bytes each:
 *   `gref u32, first_sect u8, last_sect u8, pad u16`); indirect → low u32 is
 *   the byte offset of ceil(nrSegments / 512) u32 indirect grefs.
 * - `status`: written by the engine (0 accepted, negative BlkifStatus).
 *
 * Completion / response entry, 16 bytes (= x86_64 `blkif_response`):
 *
 * ```
 *  0          8    9     10       12      16
 *  +----------+----+-----+--------+-------+
 *  | id u64   | op | pad | status | pad   |
 *  +----------+----+-----+--------+-------+
 * ```
 *
 * Gref free list: header + links, all u32:
 * `[0] head, [1] free count, [2] capacity, [3] first gref, [4..4+capacity) next`
 * (next = 0xffffffff ends the list). Grefs are `first + index`.
 */

/** Wire ABI of a blkif ring (xenstore `protocol`). Numbers cross the boundary. */
export const enum Abi {
  X86_64 = 0,
  X86_32 = 1,
}

export const RING_STATE_BYTES = 32;
export const REQUEST_DESC_BYTES = 32;
export const COMPLETION_BYTES = 16;
/** Room the backend's take leaves per descriptor for copied segments. */
export const TAKE_SEGMENT_AREA_BYTES = 11 * 8;

export interface RingEngine {
  readonly kind: 'wasm' | 'js';
  /** The shared memory every offset below points into. */
  readonly memory: WebAssembly.Memory;

  // ---- generic shared ring (assembly/ring.ts), ring.h names ----

  /** __CONST_RING_SIZE: largest power of two ≤ (nrPages*4096 − 64) / slotSize. */
  ringSize(nrPages: number, slotSize: number): number;
  /** SHARED_RING_INIT + FRONT_RING_INIT. Front only. Returns nrEnts, or a negative status. */
  frontRingInit(state: number, sring: number, nrPages: number, slotSize: number): number;
  /** BACK_RING_ATTACH: reads the indices the front left; never re-initialises. Returns nrEnts or negative. */
  backRingAttach(state: number, sring: number, nrPages: number, slotSize: number): number;
  /** RING_FREE_REQUESTS. */
  freeRequests(state: number): number;
  /** RING_GET_REQUEST slot address for index req_prod_pvt + i (front) — for tests and fuzzers. */
  requestSlot(state: number, index: number): number;
  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish req_prod_pvt; 1 if the back must be notified. */
  pushRequestsAndCheckNotify(state: number): number;
  /** RING_FINAL_CHECK_FOR_RESPONSES: 1 if responses are waiting (rsp_event re-armed otherwise). */
  finalCheckForResponses(state: number): number;
  /** RING_UNCONSUMED_REQUESTS (back). */
  unconsumedRequests(state: number): number;
  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish rsp_prod_pvt; 1 if the front must be notified. */
  pushResponsesAndCheckNotify(state: number): number;
  /** RING_FINAL_CHECK_FOR_REQUESTS: 1 if requests are waiting (req_event re-armed otherwise). */
  finalCheckForRequests(state: number): number;
  /** RING_REQUEST_PROD_OVERFLOW: 1 if `prod` claims more than a ring of unconsumed requests. */
  requestProdOverflow(state: number, prod: number): number;
  /** RING_RESPONSE_PROD_OVERFLOW: 1 if `prod` claims more than a ring of unconsumed responses. */
  responseProdOverflow(state: number, prod: number): number;

  // ---- blkif batch operations (assembly/blkif.ts) ----

  /**
   * Front: encode descriptors into free slots at req_prod_pvt, marking shadow
   * ids in flight. Does not publish (call pushRequestsAndCheckNotify).
   * Returns how many descriptors were processed (stops when the ring is
   * full); each processed descriptor has its `status` set: 0 placed in the
   * ring, negative rejected (not placed, id untouched).
   */
  blkifWriteRequests(state: number, shadow: number, descs: number, n: number, abi: Abi): number;
  /**
   * Front: copy up to `max` responses out of the ring, once each, validate
   * them (producer not past the ring, id < nrEnts and in flight, operation as
   * expected, status in {0,−1,−2}), clear their shadow ids, advance rsp_cons
   * and write completions. Returns the count (≥ 0), or a negative
   * BlkifStatus on the first violation: the device must fail.
   */
  blkifReapResponses(state: number, shadow: number, comps: number, max: number, abi: Abi): number;
  /**
   * Back: copy up to `max` unconsumed requests out of the ring, once each,
   * into descriptors (segments into `segs + i * TAKE_SEGMENT_AREA_BYTES`,
   * pointed to by `arg`), validate each (status field), advance req_cons.
   * Returns the count, or a negative BlkifStatus if req_prod overflows.
   */
  blkifTakeRequests(state: number, descs: number, segs: number, max: number, abi: Abi): number;
  /** Back: write `n` response entries at rsp_prod_pvt. Returns n (caller checks free room). */
  blkifWriteResponses(state: number, rsps: number, n: number, abi: Abi): number;

  // ---- single-message codecs (assembly/blkif.ts) ----

  /** Validate and encode one descriptor into a full slot (padding zeroed). Returns a BlkifStatus. */
  blkifEncodeRequest(desc: number, slot: number, abi: Abi): number;
  /** Copy one slot into a descriptor (+ segments at `segs`) and validate it. Returns a BlkifStatus. */
  blkifDecodeRequest(slot: number, desc: number, segs: number, abi: Abi): number;
  /** Encode one response entry into 16 (x86_64) or 12 (x86_32) bytes. Returns a BlkifStatus. */
  blkifEncodeResponse(rsp: number, out: number, abi: Abi): number;
  /** Decode one wire response into a response entry. Returns a BlkifStatus. */
  blkifDecodeResponse(input: number, rsp: number, abi: Abi): number;
  /** Copy and validate `count` segments out of indirect pages (u32 page addresses at `pages`) into `out`. */
  blkifCopyIndirectSegments(pages: number, count: number, out: number): number;

  // ---- grants (assembly/grant.ts) ----

  /** Write a v1 grant entry: domid and frame first, then flags (ordered after them). */
  grantEntryWrite(table: number, gref: number, domid: number, frame: number, flags: number): void;
  /** gnttab_end_foreign_access_ref: clear flags unless the peer is reading/writing. 0 ok, negative busy. */
  grantEntryEndAccess(table: number, gref: number): number;
  /** Initialise a free list of `capacity` grefs starting at `firstGref`. */
  grefFreeListInit(list: number, firstGref: number, capacity: number): void;
  /** Take up to `n` grefs into the u32 array at `out`; returns how many (0 when empty). */
  grefAlloc(list: number, n: number, out: number): number;
  /** Return `n` grefs from the u32 array at `grefs`. Returns 0, or negative for a gref not from this list or already free. */
  grefFree(list: number, grefs: number, n: number): number;
  /** Fill `nPages` wire segments from grefs, covering `nSectors512` 512-byte sectors from offset 0 of each page. */
  packSegments(grefs: number, nPages: number, nSectors512: number, out: number): number;
  /** Copy `nSegs` wire segments into indirect pages (u32 addresses at `pages`), 512 per page, zeroing the rest. */
  packIndirectPages(segs: number, nSegs: number, pages: number): number;
}
