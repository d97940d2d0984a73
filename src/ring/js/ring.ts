/**
 * Xen's generic shared ring (xen/include/public/io/ring.h), TypeScript twin
 * of assembly/ring.ts: any slot size, 1–16 pages, u32 indices that wrap.
 * Pure: no I/O, no notification; "check notify" returns 1/0 and the caller
 * kicks the event channel.
 *
 * Shared ring header (struct xx_sring), in the shared page(s):
 *
 * ```
 *  0          4           8          12          16                    64
 *  +----------+-----------+----------+-----------+---------------------+----------------+
 *  | req_prod | req_event | rsp_prod | rsp_event | pvt / __pad (zero)  | ring[nrEnts]   |
 *  |   u32    |    u32    |   u32    |    u32    |      48 bytes       | slotSize each  |
 *  +----------+-----------+----------+-----------+---------------------+----------------+
 * ```
 *
 * Ring state (struct xx_front_ring / xx_back_ring), 32 bytes, private:
 *
 * ```
 *  0        4        8          12                     16                20      32
 *  +--------+--------+----------+----------------------+-----------------+-------+
 *  | sring  | nrEnts | slotSize | prodPvt              | cons            | 0 ... |
 *  |  u32   |  u32   |   u32    | req_prod_pvt (front) | rsp_cons (front)|       |
 *  |        |        |          | rsp_prod_pvt (back)  | req_cons (back) |       |
 *  +--------+--------+----------+----------------------+-----------------+-------+
 * ```
 *
 * Memory ordering: the shared producer and event indices are read with
 * Atomics.load and written with Atomics.store (both sequentially consistent,
 * like Wasm's atomic.load/store), so plain slot stores made before a producer
 * Atomics.store are visible to a peer that Atomics.loads that producer, and
 * a store-then-load pair also acts as ring.h's full barrier (xen_mb).
 * Private state words are plain loads and stores.
 *
 * Every function takes the u32 view and byte addresses; `>>> 0` keeps index
 * arithmetic in u32.
 */
import { BlkifStatus } from '../status.js';
import { SHARED_RING_HEADER_BYTES, XEN_PAGE_SIZE } from '../../blkif/constants.js';

// ---- shared header, u32 word offsets ----
export const SRING_REQ_PROD = 0;
export const SRING_REQ_EVENT = 1;
export const SRING_RSP_PROD = 2;
export const SRING_RSP_EVENT = 3;

// ---- ring state, u32 word offsets ----
export const STATE_SRING = 0;
export const STATE_NR_ENTS = 1;
export const STATE_SLOT_SIZE = 2;
export const STATE_PROD_PVT = 3;
export const STATE_CONS = 4;
const STATE_WORDS = 8;

/** ring-page-order 0..4: 1..16 pages. */
const MAX_RING_PAGES = 16;

/**
 * __CONST_RING_SIZE: the largest power of two ≤ (nrPages·4096 − 64) / slotSize.
 * 0 when nothing fits, slotSize is 0, or nrPages is not 1..16.
 */
export function ringSize(nrPages: number, slotSize: number): number {
  nrPages >>>= 0;
  slotSize >>>= 0;
  if (nrPages === 0 || nrPages > MAX_RING_PAGES || slotSize === 0) return 0;
  const fit = Math.floor((nrPages * XEN_PAGE_SIZE - SHARED_RING_HEADER_BYTES) / slotSize);
  if (fit === 0) return 0;
  return (1 << (31 - Math.clz32(fit))) >>> 0;
}

/** Ring-page-order and slot size checks: nrEnts, or a negative status. */
function checkGeometry(nrPages: number, slotSize: number): number {
  nrPages >>>= 0;
  if (nrPages === 0 || nrPages > MAX_RING_PAGES || (nrPages & (nrPages - 1)) !== 0) {
    return BlkifStatus.BAD_RING_PAGES;
  }
  const n = ringSize(nrPages, slotSize);
  return n === 0 ? BlkifStatus.BAD_SLOT_SIZE : n;
}

function writeState(u32: Uint32Array, state: number, sring: number, nrEnts: number, slotSize: number, idx: number): void {
  const s = state >>> 2;
  u32[s + STATE_SRING] = sring;
  u32[s + STATE_NR_ENTS] = nrEnts;
  u32[s + STATE_SLOT_SIZE] = slotSize;
  u32[s + STATE_PROD_PVT] = idx;
  u32[s + STATE_CONS] = idx;
  for (let i = 5; i < STATE_WORDS; i++) u32[s + i] = 0;
}

/**
 * SHARED_RING_INIT + FRONT_RING_INIT: producers 0, both events 1, header pad
 * zeroed, req_prod_pvt = rsp_cons = 0. Slots untouched. Returns nrEnts or a
 * negative status, writing nothing on failure.
 */
export function frontRingInit(u32: Uint32Array, state: number, sring: number, nrPages: number, slotSize: number): number {
  const n = checkGeometry(nrPages, slotSize);
  if (n < 0) return n;
  const w = sring >>> 2;
  // Not yet shared with the back (the grant that publishes the page is
  // written later, flags last): plain stores suffice.
  u32[w + SRING_REQ_PROD] = 0;
  u32[w + SRING_RSP_PROD] = 0;
  u32[w + SRING_REQ_EVENT] = 1;
  u32[w + SRING_RSP_EVENT] = 1;
  for (let i = 4; i < SHARED_RING_HEADER_BYTES >>> 2; i++) u32[w + i] = 0;
  writeState(u32, state, sring, n, slotSize >>> 0, 0);
  return n;
}

/**
 * BACK_RING_ATTACH with _i = the shared rsp_prod: everything the front
 * produced past the last response is still to be consumed. Never writes the
 * shared page. Returns nrEnts or a negative status.
 */
export function backRingAttach(u32: Uint32Array, state: number, sring: number, nrPages: number, slotSize: number): number {
  const n = checkGeometry(nrPages, slotSize);
  if (n < 0) return n;
  // Reads the index the front (or a previous back) left in the shared page.
  const rspProd = Atomics.load(u32, (sring >>> 2) + SRING_RSP_PROD);
  writeState(u32, state, sring, n, slotSize >>> 0, rspProd);
  return n;
}

/** Address of the slot for ring index `idx` (RING_GET_REQUEST / RING_GET_RESPONSE). */
export function slotAddress(u32: Uint32Array, state: number, idx: number): number {
  const s = state >>> 2;
  return u32[s + STATE_SRING] + SHARED_RING_HEADER_BYTES + ((idx & (u32[s + STATE_NR_ENTS] - 1)) >>> 0) * u32[s + STATE_SLOT_SIZE];
}

// ---------------------------------------------------------------- front side

/** RING_FREE_REQUESTS: nrEnts − (req_prod_pvt − rsp_cons), u32. */
export function freeRequests(u32: Uint32Array, state: number): number {
  const s = state >>> 2;
  return (u32[s + STATE_NR_ENTS] - ((u32[s + STATE_PROD_PVT] - u32[s + STATE_CONS]) >>> 0)) >>> 0;
}

/** RING_GET_REQUEST(req_prod_pvt + i): the slot address. */
export function requestSlot(u32: Uint32Array, state: number, i: number): number {
  return slotAddress(u32, state, (u32[(state >>> 2) + STATE_PROD_PVT] + i) >>> 0);
}

/** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY. 1 if the back must be notified. */
export function pushRequestsAndCheckNotify(u32: Uint32Array, state: number): number {
  const w = u32[(state >>> 2) + STATE_SRING] >>> 2;
  // Only the front ever writes req_prod: a plain load reads our own last
  // store (program order); no ordering against the peer is needed here.
  const oldProd = u32[w + SRING_REQ_PROD]!;
  const newProd = u32[(state >>> 2) + STATE_PROD_PVT];
  // Seq-cst store after the slot stores: back sees requests /before/ the
  // updated producer index.
  Atomics.store(u32, w + SRING_REQ_PROD, newProd);
  // Seq-cst load after that store: back sees new requests /before/ we check req_event.
  const event = Atomics.load(u32, w + SRING_REQ_EVENT);
  return ((newProd - event) >>> 0) < ((newProd - oldProd) >>> 0) ? 1 : 0;
}

/** Responses published and not consumed (may exceed nrEnts for a hostile back). */
export function unconsumedResponses(u32: Uint32Array, state: number): number {
  const s = state >>> 2;
  // Acquire the back's producer before any response slot is read.
  return (Atomics.load(u32, (u32[s + STATE_SRING] >>> 2) + SRING_RSP_PROD) - u32[s + STATE_CONS]) >>> 0;
}

/**
 * RING_FINAL_CHECK_FOR_RESPONSES: 1 if responses are waiting; otherwise set
 * rsp_event = rsp_cons + 1 and check once more.
 */
export function finalCheckForResponses(u32: Uint32Array, state: number): number {
  if (unconsumedResponses(u32, state) !== 0) return 1;
  const s = state >>> 2;
  // Seq-cst store, then seq-cst load (in unconsumedResponses): the back sees
  // the new rsp_event /before/ we re-read rsp_prod.
  Atomics.store(u32, (u32[s + STATE_SRING] >>> 2) + SRING_RSP_EVENT, (u32[s + STATE_CONS] + 1) >>> 0);
  return unconsumedResponses(u32, state) !== 0 ? 1 : 0;
}

/** RING_RESPONSE_PROD_OVERFLOW: 1 if prod − rsp_cons > nrEnts. */
export function responseProdOverflow(u32: Uint32Array, state: number, prod: number): number {
  const s = state >>> 2;
  return ((prod - u32[s + STATE_CONS]) >>> 0) > u32[s + STATE_NR_ENTS] ? 1 : 0;
}

// ----------------------------------------------------------------- back side

/** RING_UNCONSUMED_REQUESTS: min(req_prod − req_cons, nrEnts − (req_cons − rsp_prod_pvt)). */
export function unconsumedRequests(u32: Uint32Array, state: number): number {
  const s = state >>> 2;
  const cons = u32[s + STATE_CONS];
  // Acquire the front's producer before any request slot is read.
  const req = (Atomics.load(u32, (u32[s + STATE_SRING] >>> 2) + SRING_REQ_PROD) - cons) >>> 0;
  const rsp = (u32[s + STATE_NR_ENTS] - ((cons - u32[s + STATE_PROD_PVT]) >>> 0)) >>> 0;
  return req < rsp ? req : rsp;
}

/** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY. 1 if the front must be notified. */
export function pushResponsesAndCheckNotify(u32: Uint32Array, state: number): number {
  const w = u32[(state >>> 2) + STATE_SRING] >>> 2;
  // Only the back ever writes rsp_prod: a plain load reads our own last store.
  const oldProd = u32[w + SRING_RSP_PROD]!;
  const newProd = u32[(state >>> 2) + STATE_PROD_PVT];
  // Seq-cst store after the slot stores: front sees responses /before/ the
  // updated producer index.
  Atomics.store(u32, w + SRING_RSP_PROD, newProd);
  // Seq-cst load after that store: front sees new responses /before/ we check rsp_event.
  const event = Atomics.load(u32, w + SRING_RSP_EVENT);
  return ((newProd - event) >>> 0) < ((newProd - oldProd) >>> 0) ? 1 : 0;
}

/**
 * RING_FINAL_CHECK_FOR_REQUESTS: 1 if requests are waiting; otherwise set
 * req_event = req_cons + 1 and check once more.
 */
export function finalCheckForRequests(u32: Uint32Array, state: number): number {
  if (unconsumedRequests(u32, state) !== 0) return 1;
  const s = state >>> 2;
  // Seq-cst store, then seq-cst load (in unconsumedRequests): the front sees
  // the new req_event /before/ we re-read req_prod.
  Atomics.store(u32, (u32[s + STATE_SRING] >>> 2) + SRING_REQ_EVENT, (u32[s + STATE_CONS] + 1) >>> 0);
  return unconsumedRequests(u32, state) !== 0 ? 1 : 0;
}

/** RING_REQUEST_PROD_OVERFLOW: 1 if prod − rsp_prod_pvt > nrEnts. */
export function requestProdOverflow(u32: Uint32Array, state: number, prod: number): number {
  const s = state >>> 2;
  return ((prod - u32[s + STATE_PROD_PVT]) >>> 0) > u32[s + STATE_NR_ENTS] ? 1 : 0;
}
