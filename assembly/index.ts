/**
 * The Wasm module's exports: one numeric function per RingEngine method
 * (src/ring/engine.ts), same names, nothing else but `xenpvHeapBase`. Only
 * src/wasm calls them. Memory is imported, shared, created by the host.
 *
 * Choices where the RingEngine contract is silent (the JS twin must match):
 * - Every blkif function checks the ABI first (BAD_ABI, nothing touched);
 *   batch functions then need slotSize ≥ sizeof(request) (BAD_SLOT_SIZE).
 * - Descriptor validation order: op; read/write 1..11 segments,
 *   barrier/flush 0..11; each segment first ≤ last ≤ 7 (first bad one wins);
 *   discard flag ≤ 1; indirect_op ∈ {read, write} then nrSegments 1..4096.
 *   Direct ops ignore `flag`; discard ignores `nrSegments`; indirect grefs
 *   beyond ceil(n/512) are written as 0.
 * - Every segment we write (slot, take copy, indirect page) has pad 0.
 * - blkifWriteRequests: the free-slot check comes first in each iteration
 *   (a full ring processes nothing more); then validation, then BAD_ID
 *   (id ≥ nrEnts), then ID_IN_FLIGHT (shadow[id] ≠ 0). A rejected
 *   descriptor leaves slot, shadow and req_prod_pvt untouched; it still
 *   counts as processed and gets its status. Accepted: shadow[id] = op + 1
 *   (indirect: indirect_op + 1), slot fully written (padding 0).
 * - blkifEncodeRequest also writes desc.status; the slot is untouched on failure.
 * - blkifReapResponses on a violation: responses before it stay reaped
 *   (rsp_cons advanced past them, shadow cleared, completions written); the
 *   bad response's completion entry holds its copy; returns the status.
 * - blkifTakeRequests / blkifDecodeRequest write all 32 descriptor bytes:
 *   direct ops copy segments only if nr_segments ≤ 11 (arg = segs anyway);
 *   indirect copies all 8 indirect_grefs (arg = segs); discard: arg =
 *   nr_sectors, nrSegments 0; unknown op: flag 0, nrSegments 0, arg 0,
 *   handle from offset 2, status BAD_OPERATION.
 * - blkifWriteResponses / blkifEncodeResponse encode any status;
 *   blkifDecodeResponse writes the entry and returns RSP_BAD_STATUS unless
 *   status ∈ {0, −1, −2}. Response pads (byte 9, 12..15) are written 0.
 * - backRingAttach uses the shared rsp_prod as BACK_RING_ATTACH's index.
 * - ringSize returns 0 for nrPages outside 1..16 or slotSize 0; ring init
 *   needs a power-of-two page count (BAD_RING_PAGES) and ringSize > 0
 *   (BAD_SLOT_SIZE). frontRingInit does not touch slots.
 * - Free list: head/next are indices; allocated entries' next = 0xfffffffe;
 *   alloc pops the head, free pushes on the head (LIFO) and stops at the
 *   first bad gref (those before it stay freed).
 * - packSegments returns nPages, or BAD_SECTOR_RANGE (nothing written) unless
 *   (nPages−1)·8 < nSectors512 ≤ nPages·8. packIndirectPages returns the
 *   pages used, or BAD_INDIRECT_NR_SEGMENTS for 0 or > 4096 segments.
 * - blkifCopyIndirectSegments returns OK / BAD_INDIRECT_NR_SEGMENTS (count 0
 *   or > 4096, nothing copied) / BAD_SECTOR_RANGE (after copying all).
 */
import * as ring from './ring';
import * as grant from './grant';

/** End of static data: the host checks it stays below SCRATCH_BASE (65536). */
export function xenpvHeapBase(): u32 { return <u32>__heap_base; }

// ---- generic shared ring ----
export function ringSize(nrPages: u32, slotSize: u32): u32 { return ring.ringSize(nrPages, slotSize); }
export function frontRingInit(state: u32, sring: u32, nrPages: u32, slotSize: u32): i32 {
  return ring.frontRingInit(state, sring, nrPages, slotSize);
}
export function backRingAttach(state: u32, sring: u32, nrPages: u32, slotSize: u32): i32 {
  return ring.backRingAttach(state, sring, nrPages, slotSize);
}
export function freeRequests(state: u32): u32 { return ring.freeRequests(state); }
export function requestSlot(state: u32, index: u32): u32 { return <u32>ring.requestSlot(state, index); }
export function pushRequestsAndCheckNotify(state: u32): u32 { return ring.pushRequestsAndCheckNotify(state); }
export function finalCheckForResponses(state: u32): u32 { return ring.finalCheckForResponses(state); }
export function unconsumedRequests(state: u32): u32 { return ring.unconsumedRequests(state); }
export function pushResponsesAndCheckNotify(state: u32): u32 { return ring.pushResponsesAndCheckNotify(state); }
export function finalCheckForRequests(state: u32): u32 { return ring.finalCheckForRequests(state); }
export function requestProdOverflow(state: u32, prod: u32): u32 { return ring.requestProdOverflow(state, prod); }
export function responseProdOverflow(state: u32, prod: u32): u32 { return ring.responseProdOverflow(state, prod); }

// ---- blkif batch operations and single-message codecs ----
// Re-exported as they are (same names, all-integer signatures): a wrapper
// here would stay a separate call once the large bodies are not inlined.
export {
  blkifWriteRequests, blkifReapResponses, blkifTakeRequests, blkifWriteResponses,
  blkifEncodeRequest, blkifDecodeRequest, blkifEncodeResponse, blkifDecodeResponse,
  blkifCopyIndirectSegments,
} from './blkif';

// ---- grants ----
export function grantEntryWrite(table: u32, gref: u32, domid: u32, frame: u32, flags: u32): void {
  grant.grantEntryWrite(table, gref, domid, frame, flags);
}
export function grantEntryEndAccess(table: u32, gref: u32): i32 { return grant.grantEntryEndAccess(table, gref); }
export function grefFreeListInit(list: u32, firstGref: u32, capacity: u32): void {
  grant.grefFreeListInit(list, firstGref, capacity);
}
export function grefAlloc(list: u32, n: u32, out: u32): u32 { return grant.grefAlloc(list, n, out); }
export function grefFree(list: u32, grefs: u32, n: u32): i32 { return grant.grefFree(list, grefs, n); }
export function packSegments(grefs: u32, nPages: u32, nSectors512: u32, out: u32): i32 {
  return grant.packSegments(grefs, nPages, nSectors512, out);
}
export function packIndirectPages(segs: u32, nSegs: u32, pages: u32): i32 { return grant.packIndirectPages(segs, nSegs, pages); }
