/**
 * WasmEngine: the RingEngine (src/ring/engine.ts) backed by the
 * AssemblyScript module. The only code that calls Wasm exports: every method
 * forwards its integer arguments to the export of the same name and returns
 * its number. No allocation, no BigInt, no throwing on peer data.
 */
import type { Abi, RingEngine } from '../ring/engine.js';
import { instantiateXenpv } from './module.js';

type F1 = (a: number) => number;
type F2 = (a: number, b: number) => number;
type F3 = (a: number, b: number, c: number) => number;
type F4 = (a: number, b: number, c: number, d: number) => number;
type F5 = (a: number, b: number, c: number, d: number, e: number) => number;

export interface WasmEngineOptions {
  /** Use build/xenpv.debug.wasm (assertions, source maps). */
  debug?: boolean;
}

export class WasmEngine implements RingEngine {
  readonly kind = 'wasm' as const;
  readonly memory: WebAssembly.Memory;
  // Exports, typed once. Unsigned u32 results come back as i32: `>>> 0`.
  readonly #ringSize: F2;
  readonly #frontRingInit: F4;
  readonly #backRingAttach: F4;
  readonly #freeRequests: F1;
  readonly #requestSlot: F2;
  readonly #pushRequestsAndCheckNotify: F1;
  readonly #finalCheckForResponses: F1;
  readonly #unconsumedRequests: F1;
  readonly #pushResponsesAndCheckNotify: F1;
  readonly #finalCheckForRequests: F1;
  readonly #requestProdOverflow: F2;
  readonly #responseProdOverflow: F2;
  readonly #blkifWriteRequests: F5;
  readonly #blkifReapResponses: F5;
  readonly #blkifTakeRequests: F5;
  readonly #blkifWriteResponses: F4;
  readonly #blkifEncodeRequest: F3;
  readonly #blkifDecodeRequest: F4;
  readonly #blkifEncodeResponse: F3;
  readonly #blkifDecodeResponse: F3;
  readonly #blkifCopyIndirectSegments: F3;
  readonly #grantEntryWrite: F5;
  readonly #grantEntryEndAccess: F2;
  readonly #grefFreeListInit: F3;
  readonly #grefAlloc: F3;
  readonly #grefFree: F3;
  readonly #packSegments: F4;
  readonly #packIndirectPages: F3;

  constructor(memory: WebAssembly.Memory, opts: WasmEngineOptions = {}) {
    this.memory = memory;
    const x = instantiateXenpv(memory, opts.debug ?? false) as Record<string, (...args: number[]) => number>;
    this.#ringSize = x.ringSize;
    this.#frontRingInit = x.frontRingInit;
    this.#backRingAttach = x.backRingAttach;
    this.#freeRequests = x.freeRequests;
    this.#requestSlot = x.requestSlot;
    this.#pushRequestsAndCheckNotify = x.pushRequestsAndCheckNotify;
    this.#finalCheckForResponses = x.finalCheckForResponses;
    this.#unconsumedRequests = x.unconsumedRequests;
    this.#pushResponsesAndCheckNotify = x.pushResponsesAndCheckNotify;
    this.#finalCheckForRequests = x.finalCheckForRequests;
    this.#requestProdOverflow = x.requestProdOverflow;
    this.#responseProdOverflow = x.responseProdOverflow;
    this.#blkifWriteRequests = x.blkifWriteRequests;
    this.#blkifReapResponses = x.blkifReapResponses;
    this.#blkifTakeRequests = x.blkifTakeRequests;
    this.#blkifWriteResponses = x.blkifWriteResponses;
    this.#blkifEncodeRequest = x.blkifEncodeRequest;
    this.#blkifDecodeRequest = x.blkifDecodeRequest;
    this.#blkifEncodeResponse = x.blkifEncodeResponse;
    this.#blkifDecodeResponse = x.blkifDecodeResponse;
    this.#blkifCopyIndirectSegments = x.blkifCopyIndirectSegments;
    this.#grantEntryWrite = x.grantEntryWrite;
    this.#grantEntryEndAccess = x.grantEntryEndAccess;
    this.#grefFreeListInit = x.grefFreeListInit;
    this.#grefAlloc = x.grefAlloc;
    this.#grefFree = x.grefFree;
    this.#packSegments = x.packSegments;
    this.#packIndirectPages = x.packIndirectPages;
  }

  // ---- generic shared ring ----
  ringSize(nrPages: number, slotSize: number): number { return this.#ringSize(nrPages, slotSize) >>> 0; }
  frontRingInit(state: number, sring: number, nrPages: number, slotSize: number): number {
    return this.#frontRingInit(state, sring, nrPages, slotSize);
  }
  backRingAttach(state: number, sring: number, nrPages: number, slotSize: number): number {
    return this.#backRingAttach(state, sring, nrPages, slotSize);
  }
  freeRequests(state: number): number { return this.#freeRequests(state) >>> 0; }
  requestSlot(state: number, index: number): number { return this.#requestSlot(state, index) >>> 0; }
  pushRequestsAndCheckNotify(state: number): number { return this.#pushRequestsAndCheckNotify(state); }
  finalCheckForResponses(state: number): number { return this.#finalCheckForResponses(state); }
  unconsumedRequests(state: number): number { return this.#unconsumedRequests(state) >>> 0; }
  pushResponsesAndCheckNotify(state: number): number { return this.#pushResponsesAndCheckNotify(state); }
  finalCheckForRequests(state: number): number { return this.#finalCheckForRequests(state); }
  requestProdOverflow(state: number, prod: number): number { return this.#requestProdOverflow(state, prod); }
  responseProdOverflow(state: number, prod: number): number { return this.#responseProdOverflow(state, prod); }

  // ---- blkif batch operations ----
  blkifWriteRequests(state: number, shadow: number, descs: number, n: number, abi: Abi): number {
    return this.#blkifWriteRequests(state, shadow, descs, n, abi);
  }
  blkifReapResponses(state: number, shadow: number, comps: number, max: number, abi: Abi): number {
    return this.#blkifReapResponses(state, shadow, comps, max, abi);
  }
  blkifTakeRequests(state: number, descs: number, segs: number, max: number, abi: Abi): number {
    return this.#blkifTakeRequests(state, descs, segs, max, abi);
  }
  blkifWriteResponses(state: number, rsps: number, n: number, abi: Abi): number {
    return this.#blkifWriteResponses(state, rsps, n, abi);
  }

  // ---- single-message codecs ----
  blkifEncodeRequest(desc: number, slot: number, abi: Abi): number { return this.#blkifEncodeRequest(desc, slot, abi); }
  blkifDecodeRequest(slot: number, desc: number, segs: number, abi: Abi): number {
    return this.#blkifDecodeRequest(slot, desc, segs, abi);
  }
  blkifEncodeResponse(rsp: number, out: number, abi: Abi): number { return this.#blkifEncodeResponse(rsp, out, abi); }
  blkifDecodeResponse(input: number, rsp: number, abi: Abi): number { return this.#blkifDecodeResponse(input, rsp, abi); }
  blkifCopyIndirectSegments(pages: number, count: number, out: number): number {
    return this.#blkifCopyIndirectSegments(pages, count, out);
  }

  // ---- grants ----
  grantEntryWrite(table: number, gref: number, domid: number, frame: number, flags: number): void {
    this.#grantEntryWrite(table, gref, domid, frame, flags);
  }
  grantEntryEndAccess(table: number, gref: number): number { return this.#grantEntryEndAccess(table, gref); }
  grefFreeListInit(list: number, firstGref: number, capacity: number): void { this.#grefFreeListInit(list, firstGref, capacity); }
  grefAlloc(list: number, n: number, out: number): number { return this.#grefAlloc(list, n, out); }
  grefFree(list: number, grefs: number, n: number): number { return this.#grefFree(list, grefs, n); }
  packSegments(grefs: number, nPages: number, nSectors512: number, out: number): number {
    return this.#packSegments(grefs, nPages, nSectors512, out);
  }
  packIndirectPages(segs: number, nSegs: number, pages: number): number { return this.#packIndirectPages(segs, nSegs, pages); }
}

/** A Wasm engine over `memory` (shared, created by the host with initial == maximum). Synchronous. */
export function createWasmEngine(memory: WebAssembly.Memory, opts: WasmEngineOptions = {}): WasmEngine {
  return new WasmEngine(memory, opts);
}
