/**
 * JsEngine: the optimised TypeScript twin of the Wasm engine. Same RingEngine
 * contract, same semantics, same bytes written (checked by
 * test/ring-differential.test.ts); the benchmark baseline.
 *
 * Views over the shared memory are created once (the memory never grows);
 * every method is a thin forward to a module function of ring.ts, blkif.ts
 * or grant.ts, so V8 can inline the whole call chain.
 */
import type { Abi, RingEngine } from '../engine.js';
import * as blkif from './blkif.js';
import * as grant from './grant.js';
import * as ring from './ring.js';
import { Views } from './views.js';

export class JsEngine implements RingEngine {
  readonly kind = 'js' as const;
  readonly memory: WebAssembly.Memory;
  private readonly v: Views;
  private readonly u32: Uint32Array;

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
    this.v = new Views(memory);
    this.u32 = this.v.u32;
  }

  // ---- generic shared ring ----
  ringSize(nrPages: number, slotSize: number): number { return ring.ringSize(nrPages, slotSize); }
  frontRingInit(state: number, sring: number, nrPages: number, slotSize: number): number {
    return ring.frontRingInit(this.u32, state, sring, nrPages, slotSize);
  }
  backRingAttach(state: number, sring: number, nrPages: number, slotSize: number): number {
    return ring.backRingAttach(this.u32, state, sring, nrPages, slotSize);
  }
  freeRequests(state: number): number { return ring.freeRequests(this.u32, state); }
  requestSlot(state: number, index: number): number { return ring.requestSlot(this.u32, state, index); }
  pushRequestsAndCheckNotify(state: number): number { return ring.pushRequestsAndCheckNotify(this.u32, state); }
  finalCheckForResponses(state: number): number { return ring.finalCheckForResponses(this.u32, state); }
  unconsumedRequests(state: number): number { return ring.unconsumedRequests(this.u32, state); }
  pushResponsesAndCheckNotify(state: number): number { return ring.pushResponsesAndCheckNotify(this.u32, state); }
  finalCheckForRequests(state: number): number { return ring.finalCheckForRequests(this.u32, state); }
  requestProdOverflow(state: number, prod: number): number { return ring.requestProdOverflow(this.u32, state, prod); }
  responseProdOverflow(state: number, prod: number): number { return ring.responseProdOverflow(this.u32, state, prod); }

  // ---- blkif batch operations ----
  blkifWriteRequests(state: number, shadow: number, descs: number, n: number, abi: Abi): number {
    return blkif.writeRequests(this.v, state, shadow, descs, n, abi);
  }
  blkifReapResponses(state: number, shadow: number, comps: number, max: number, abi: Abi): number {
    return blkif.reapResponses(this.v, state, shadow, comps, max, abi);
  }
  blkifTakeRequests(state: number, descs: number, segs: number, max: number, abi: Abi): number {
    return blkif.takeRequests(this.v, state, descs, segs, max, abi);
  }
  blkifWriteResponses(state: number, rsps: number, n: number, abi: Abi): number {
    return blkif.writeResponses(this.v, state, rsps, n, abi);
  }

  // ---- single-message codecs ----
  blkifEncodeRequest(desc: number, slot: number, abi: Abi): number { return blkif.encodeRequest(this.v, desc, slot, abi); }
  blkifDecodeRequest(slot: number, desc: number, segs: number, abi: Abi): number {
    return blkif.decodeRequest(this.v, slot, desc, segs, abi);
  }
  blkifEncodeResponse(rsp: number, out: number, abi: Abi): number { return blkif.encodeResponse(this.v, rsp, out, abi); }
  blkifDecodeResponse(input: number, rsp: number, abi: Abi): number { return blkif.decodeResponse(this.v, input, rsp, abi); }
  blkifCopyIndirectSegments(pages: number, count: number, out: number): number {
    return blkif.copyIndirectSegments(this.v, pages, count, out);
  }

  // ---- grants ----
  grantEntryWrite(table: number, gref: number, domid: number, frame: number, flags: number): void {
    grant.grantEntryWrite(this.v, table, gref, domid, frame, flags);
  }
  grantEntryEndAccess(table: number, gref: number): number { return grant.grantEntryEndAccess(this.v, table, gref); }
  grefFreeListInit(list: number, firstGref: number, capacity: number): void {
    grant.grefFreeListInit(this.v, list, firstGref, capacity);
  }
  grefAlloc(list: number, n: number, out: number): number { return grant.grefAlloc(this.v, list, n, out); }
  grefFree(list: number, grefs: number, n: number): number { return grant.grefFree(this.v, list, grefs, n); }
  packSegments(grefs: number, nPages: number, nSectors512: number, out: number): number {
    return grant.packSegments(this.v, grefs, nPages, nSectors512, out);
  }
  packIndirectPages(segs: number, nSegs: number, pages: number): number {
    return grant.packIndirectPages(this.v, segs, nSegs, pages);
  }
}

/** The JS twin over `memory` (views created once). */
export function createJsEngine(memory: WebAssembly.Memory): JsEngine {
  return new JsEngine(memory);
}
