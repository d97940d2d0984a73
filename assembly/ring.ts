/**
 * Xen's generic shared ring (xen/include/public/io/ring.h) for any slot size
 * and 1–16 pages. Pure: no I/O, no notification. "Check notify" functions
 * return 1/0 and the caller kicks the event channel.
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
 * Indices are u32 and wrap: every comparison is a u32 difference. The
 * peer's producer and event indices are read with atomic.load (seq-cst) and
 * ours are published with atomic.store, so plain slot stores before a
 * producer store are visible to a peer that atomic.loads that producer. Our
 * own producer, which only we write, is re-read with a plain load (as the JS
 * twin does): program order already gives us our last store.
 */
import { SHARED_RING_HEADER_BYTES, XEN_PAGE_SIZE, XENBUS_MAX_RING_PAGES } from './constants';
import { BAD_RING_PAGES, BAD_SLOT_SIZE } from './status';

// ---- shared header offsets ----
@inline export const SRING_REQ_PROD: u32 = 0;
@inline export const SRING_REQ_EVENT: u32 = 4;
@inline export const SRING_RSP_PROD: u32 = 8;
@inline export const SRING_RSP_EVENT: u32 = 12;

// ---- ring state offsets ----
@inline export const STATE_SRING: u32 = 0;
@inline export const STATE_NR_ENTS: u32 = 4;
@inline export const STATE_SLOT_SIZE: u32 = 8;
@inline export const STATE_PROD_PVT: u32 = 12;
@inline export const STATE_CONS: u32 = 16;
@inline export const RING_STATE_BYTES: u32 = 32;

// ---- state accessors ----
@inline export function sringOf(state: usize): usize { return load<u32>(state + STATE_SRING); }
@inline export function nrEntsOf(state: usize): u32 { return load<u32>(state + STATE_NR_ENTS); }
@inline export function slotSizeOf(state: usize): u32 { return load<u32>(state + STATE_SLOT_SIZE); }
@inline export function prodPvtOf(state: usize): u32 { return load<u32>(state + STATE_PROD_PVT); }
@inline export function consOf(state: usize): u32 { return load<u32>(state + STATE_CONS); }
@inline export function setProdPvt(state: usize, v: u32): void { store<u32>(state + STATE_PROD_PVT, v); }
@inline export function setCons(state: usize, v: u32): void { store<u32>(state + STATE_CONS, v); }

/** Address of ring[0], the first slot (after the 64-byte shared header). */
@inline export function ringOf(state: usize): usize { return sringOf(state) + SHARED_RING_HEADER_BYTES; }

/** Address of the slot for ring index `idx` (RING_GET_REQUEST / RING_GET_RESPONSE). */
@inline export function slotAddress(state: usize, idx: u32): usize {
  return sringOf(state) + SHARED_RING_HEADER_BYTES + <usize>((idx & (nrEntsOf(state) - 1)) * slotSizeOf(state));
}

/**
 * __CONST_RING_SIZE: the largest power of two ≤ (nrPages·4096 − 64) / slotSize.
 * Returns 0 when nothing fits, slotSize is 0, or nrPages is not 1..16.
 */
export function ringSize(nrPages: u32, slotSize: u32): u32 {
  if (nrPages == 0 || nrPages > XENBUS_MAX_RING_PAGES || slotSize == 0) return 0;
  const fit = (nrPages * XEN_PAGE_SIZE - SHARED_RING_HEADER_BYTES) / slotSize;
  if (fit == 0) return 0;
  return (<u32>1) << (31 - clz<u32>(fit));
}

/** Common checks of ring-page-order and slot size. Returns nrEnts or a negative status. */
function checkGeometry(nrPages: u32, slotSize: u32): i32 {
  // ring-page-order 0..4: a power of two from 1 to 16 pages.
  if (nrPages == 0 || nrPages > XENBUS_MAX_RING_PAGES || (nrPages & (nrPages - 1)) != 0) return BAD_RING_PAGES;
  const n = ringSize(nrPages, slotSize);
  if (n == 0) return BAD_SLOT_SIZE;
  return <i32>n;
}

function writeState(state: usize, sring: usize, nrEnts: u32, slotSize: u32, idx: u32): void {
  store<u32>(state + STATE_SRING, <u32>sring);
  store<u32>(state + STATE_NR_ENTS, nrEnts);
  store<u32>(state + STATE_SLOT_SIZE, slotSize);
  store<u32>(state + STATE_PROD_PVT, idx);
  store<u32>(state + STATE_CONS, idx);
  memory.fill(state + 20, 0, RING_STATE_BYTES - 20);
}

/**
 * SHARED_RING_INIT + FRONT_RING_INIT (front only): producers 0, both event
 * indices 1, header pad zeroed; req_prod_pvt = rsp_cons = 0. Slots are not
 * touched (ring.h does not clear them either). Returns nrEnts or a negative
 * status (BAD_RING_PAGES, BAD_SLOT_SIZE), writing nothing on failure.
 */
export function frontRingInit(state: usize, sring: usize, nrPages: u32, slotSize: u32): i32 {
  const n = checkGeometry(nrPages, slotSize);
  if (n < 0) return n;
  // Not yet shared with the back: plain stores (the grant that publishes the
  // page to the peer is written later, flags last).
  store<u32>(sring + SRING_REQ_PROD, 0);
  store<u32>(sring + SRING_RSP_PROD, 0);
  store<u32>(sring + SRING_REQ_EVENT, 1);
  store<u32>(sring + SRING_RSP_EVENT, 1);
  memory.fill(sring + 16, 0, SHARED_RING_HEADER_BYTES - 16);
  writeState(state, sring, <u32>n, slotSize, 0);
  return n;
}

/**
 * BACK_RING_ATTACH with _i = the shared rsp_prod: everything the front
 * produced past the last response is still to be consumed. Never writes the
 * shared page. Returns nrEnts or a negative status.
 */
export function backRingAttach(state: usize, sring: usize, nrPages: u32, slotSize: u32): i32 {
  const n = checkGeometry(nrPages, slotSize);
  if (n < 0) return n;
  // Reads the index the front (or a previous back) left in the shared page.
  const rspProd = atomic.load<u32>(sring + SRING_RSP_PROD);
  writeState(state, sring, <u32>n, slotSize, rspProd);
  return n;
}

// ---------------------------------------------------------------- front side

/** RING_FREE_REQUESTS: nrEnts − (req_prod_pvt − rsp_cons). */
export function freeRequests(state: usize): u32 {
  return nrEntsOf(state) - (prodPvtOf(state) - consOf(state));
}

/** RING_GET_REQUEST(req_prod_pvt + i): the slot address. */
export function requestSlot(state: usize, i: u32): usize {
  return slotAddress(state, prodPvtOf(state) + i);
}

/** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY. Returns 1 if the back must be notified. */
export function pushRequestsAndCheckNotify(state: usize): u32 {
  const sring = sringOf(state);
  // Only the front ever writes req_prod: a plain load reads our own last
  // store (program order); nothing of the peer's needs ordering here.
  const oldProd = load<u32>(sring + SRING_REQ_PROD);
  const newProd = prodPvtOf(state);
  // Seq-cst store after the slot stores: back sees requests before the
  // updated producer index.
  atomic.store<u32>(sring + SRING_REQ_PROD, newProd);
  // Seq-cst load after the store: back sees new requests before we check req_event.
  const event = atomic.load<u32>(sring + SRING_REQ_EVENT);
  return <u32>(newProd - event < newProd - oldProd);
}

/** Responses the back has published that we have not consumed (may be > nrEnts for a hostile back). */
@inline export function unconsumedResponses(state: usize): u32 {
  // Acquire the back's producer before any response slot is read.
  return atomic.load<u32>(sringOf(state) + SRING_RSP_PROD) - consOf(state);
}

/**
 * RING_FINAL_CHECK_FOR_RESPONSES: 1 if responses are waiting; otherwise set
 * rsp_event = rsp_cons + 1 and check once more (a response published before
 * the back saw the new rsp_event would not raise an event).
 */
export function finalCheckForResponses(state: usize): u32 {
  if (unconsumedResponses(state) != 0) return 1;
  // Seq-cst store, then seq-cst load: the back sees our new rsp_event before
  // we re-read rsp_prod.
  atomic.store<u32>(sringOf(state) + SRING_RSP_EVENT, consOf(state) + 1);
  return <u32>(unconsumedResponses(state) != 0);
}

/** RING_RESPONSE_PROD_OVERFLOW: 1 if prod − rsp_cons > nrEnts. */
export function responseProdOverflow(state: usize, prod: u32): u32 {
  return <u32>(prod - consOf(state) > nrEntsOf(state));
}

// ----------------------------------------------------------------- back side

/** RING_UNCONSUMED_REQUESTS: min(req_prod − req_cons, nrEnts − (req_cons − rsp_prod_pvt)). */
export function unconsumedRequests(state: usize): u32 {
  // Acquire the front's producer before any request slot is read.
  const req = atomic.load<u32>(sringOf(state) + SRING_REQ_PROD) - consOf(state);
  const rsp = nrEntsOf(state) - (consOf(state) - prodPvtOf(state));
  return req < rsp ? req : rsp;
}

/** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY. Returns 1 if the front must be notified. */
export function pushResponsesAndCheckNotify(state: usize): u32 {
  const sring = sringOf(state);
  // Only the back ever writes rsp_prod: a plain load reads our own last store.
  const oldProd = load<u32>(sring + SRING_RSP_PROD);
  const newProd = prodPvtOf(state);
  // Seq-cst store after the slot stores: front sees responses before the
  // updated producer index.
  atomic.store<u32>(sring + SRING_RSP_PROD, newProd);
  // Seq-cst load after the store: front sees new responses before we check rsp_event.
  const event = atomic.load<u32>(sring + SRING_RSP_EVENT);
  return <u32>(newProd - event < newProd - oldProd);
}

/**
 * RING_FINAL_CHECK_FOR_REQUESTS: 1 if requests are waiting; otherwise set
 * req_event = req_cons + 1 and check once more.
 */
export function finalCheckForRequests(state: usize): u32 {
  if (unconsumedRequests(state) != 0) return 1;
  // Seq-cst store, then seq-cst load: the front sees our new req_event before
  // we re-read req_prod.
  atomic.store<u32>(sringOf(state) + SRING_REQ_EVENT, consOf(state) + 1);
  return <u32>(unconsumedRequests(state) != 0);
}

/** RING_REQUEST_PROD_OVERFLOW: 1 if prod − rsp_prod_pvt > nrEnts. */
export function requestProdOverflow(state: usize, prod: u32): u32 {
  return <u32>(prod - prodPvtOf(state) > nrEntsOf(state));
}
