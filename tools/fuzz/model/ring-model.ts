/**
 * An independent, deliberately plain model of Xen's shared ring
 * (xen/include/public/io/ring.h) with the blkif request/response checks of
 * the engine contract (src/ring/engine.ts), written from the header's
 * semantics, not from our engines. No memory, no bytes: slots hold the
 * request or response objects last written to them.
 *
 * Indices are u32 that wrap: every difference is taken `>>> 0`. No BigInt.
 *
 * ring.h, in the terms used here:
 *   RING_FREE_REQUESTS            = nrEnts - (reqProdPvt - rspCons)
 *   RING_HAS_UNCONSUMED_REQUESTS  = min(reqProd - reqCons, nrEnts - (reqCons - rspProdPvt))
 *   RING_HAS_UNCONSUMED_RESPONSES = rspProd - rspCons
 *   PUSH_*_AND_CHECK_NOTIFY: old = prod; prod = pvt; notify = (new - event) < (new - old)
 *   FINAL_CHECK_FOR_*: if work, 1; else event = cons + 1; re-check
 *   RING_REQUEST_PROD_OVERFLOW(prod)  = (prod - rspProdPvt) > nrEnts
 *   RING_RESPONSE_PROD_OVERFLOW(prod) = (prod - rspCons) > nrEnts
 */

export const u32 = (x: number): number => x >>> 0;
const diff = (a: number, b: number): number => (a - b) >>> 0;

// Operation numbers (blkif.h) and status codes (engine contract), spelled
// here again on purpose: the model shares no code with what it checks.
export const OP = { read: 0, write: 1, barrier: 2, flush: 3, discard: 5, indirect: 6 } as const;
export const ST = {
  OK: 0, BAD_OPERATION: -1, BAD_NR_SEGMENTS: -2, BAD_SECTOR_RANGE: -3, BAD_INDIRECT_OP: -4,
  BAD_INDIRECT_NR_SEGMENTS: -5, BAD_DISCARD_FLAG: -7, BAD_ID: -8, ID_IN_FLIGHT: -9,
  RSP_PROD_OVERFLOW: -20, RSP_BAD_ID: -21, RSP_NOT_IN_FLIGHT: -22, RSP_BAD_OPERATION: -23,
  RSP_BAD_STATUS: -24, REQ_PROD_OVERFLOW: -25,
} as const;

export interface Seg { gref: number; first: number; last: number }

/** A request as the host describes it (descriptor fields). */
export interface ModelRequest {
  op: number;
  flag: number; // discard: secure; indirect: indirect_op
  handle: number;
  nrSegments: number;
  id: bigint;
  sector: bigint;
  segs: Seg[]; // rw/barrier/flush: the segments
  nrSectors: bigint; // discard
  igrefs: number[]; // indirect: the indirect page grefs
}

export interface ModelResponse { id: bigint; op: number; status: number }

export type Slot =
  | { kind: 'empty' }
  | { kind: 'request'; req: ModelRequest }
  | { kind: 'response'; rsp: ModelResponse }
  | { kind: 'unknown' }; // written by a hostile peer with bytes the model does not follow

/** The largest power of two <= (nrPages*4096 - 64) / slotSize (0 if none). */
export function ringSize(nrPages: number, slotSize: number): number {
  const room = Math.floor((nrPages * 4096 - 64) / slotSize);
  if (!(room >= 1)) return 0;
  let n = 1;
  while (n * 2 <= room) n *= 2;
  return n;
}

/**
 * Every reason a request is invalid (the engine must report one of them, or
 * OK when the list is empty). The contract fixes no order between checks.
 */
export function requestFaults(req: ModelRequest, nrEnts: number, shadow: number[]): number[] {
  const faults: number[] = [];
  const segFaults = (segs: Seg[]) => segs.some((s) => s.first > s.last || s.last > 7);
  switch (req.op) {
    case OP.read:
    case OP.write:
      if (req.nrSegments < 1 || req.nrSegments > 11) faults.push(ST.BAD_NR_SEGMENTS);
      else if (segFaults(req.segs.slice(0, req.nrSegments))) faults.push(ST.BAD_SECTOR_RANGE);
      break;
    case OP.barrier:
    case OP.flush:
      // Linux sends flush/barrier with 0 segments, or carrying data.
      if (req.nrSegments > 11) faults.push(ST.BAD_NR_SEGMENTS);
      else if (segFaults(req.segs.slice(0, req.nrSegments))) faults.push(ST.BAD_SECTOR_RANGE);
      break;
    case OP.discard:
      if (req.flag !== 0 && req.flag !== 1) faults.push(ST.BAD_DISCARD_FLAG);
      break;
    case OP.indirect:
      if (req.flag !== OP.read && req.flag !== OP.write) faults.push(ST.BAD_INDIRECT_OP);
      if (req.nrSegments < 1 || req.nrSegments > 8 * 512) faults.push(ST.BAD_INDIRECT_NR_SEGMENTS);
      break;
    default:
      faults.push(ST.BAD_OPERATION);
  }
  if (req.id >= BigInt(nrEnts)) faults.push(ST.BAD_ID);
  else if (shadow[Number(req.id)] !== 0) faults.push(ST.ID_IN_FLIGHT);
  return faults;
}

/** What a reap of `max` responses must do, per the contract. */
export type ReapOutcome =
  | { kind: 'ok'; count: number; completions: ModelResponse[] }
  | { kind: 'violation'; statuses: number[]; /** slot index of the offending response */ at: number; /** responses before it */ before: ModelResponse[] }
  | { kind: 'unknown' }; // a slot holds bytes the model does not follow

export class RingModel {
  // shared header
  reqProd: number;
  reqEvent: number;
  rspProd: number;
  rspEvent: number;
  // front private
  reqProdPvt: number;
  rspCons: number;
  // back private
  rspProdPvt: number;
  reqCons: number;
  readonly slots: Slot[];
  /** 0 free, else the response operation expected + 1. */
  readonly shadow: number[];

  /** SHARED_RING_INIT + FRONT_RING_INIT, then every index moved to `start` (events start + 1); BACK_RING_ATTACH. */
  constructor(readonly nrEnts: number, start: number) {
    start = u32(start);
    this.reqProd = this.rspProd = this.reqProdPvt = this.rspCons = this.rspProdPvt = this.reqCons = start;
    this.reqEvent = this.rspEvent = u32(start + 1);
    this.slots = Array.from({ length: nrEnts }, () => ({ kind: 'empty' }) as Slot);
    this.shadow = new Array<number>(nrEnts).fill(0);
  }

  private slot(i: number): number { return i & (this.nrEnts - 1); }

  freeRequests(): number { return u32(this.nrEnts - diff(this.reqProdPvt, this.rspCons)); }

  requestSlotIndex(i: number): number { return this.slot(u32(this.reqProdPvt + i)); }

  /** blkifWriteRequests: statuses of the processed descriptors (stops when full). */
  writeRequests(reqs: ModelRequest[]): { processed: number; statuses: number[][] } {
    const statuses: number[][] = [];
    for (const req of reqs) {
      if (this.freeRequests() === 0) break;
      const faults = requestFaults(req, this.nrEnts, this.shadow);
      statuses.push(faults.length ? faults : [ST.OK]);
      if (faults.length) continue;
      this.slots[this.slot(this.reqProdPvt)] = { kind: 'request', req };
      this.shadow[Number(req.id)] = (req.op === OP.indirect ? req.flag : req.op) + 1;
      this.reqProdPvt = u32(this.reqProdPvt + 1);
    }
    return { processed: statuses.length, statuses };
  }

  pushRequestsAndCheckNotify(): number {
    const old = this.reqProd;
    const now = this.reqProdPvt;
    this.reqProd = now;
    return diff(now, this.reqEvent) < diff(now, old) ? 1 : 0;
  }

  finalCheckForResponses(): number {
    if (diff(this.rspProd, this.rspCons) !== 0) return 1;
    this.rspEvent = u32(this.rspCons + 1);
    return diff(this.rspProd, this.rspCons) !== 0 ? 1 : 0;
  }

  unconsumedRequests(): number {
    const req = diff(this.reqProd, this.reqCons);
    const rsp = u32(this.nrEnts - diff(this.reqCons, this.rspProdPvt));
    return req < rsp ? req : rsp;
  }

  requestProdOverflow(prod: number): number { return diff(prod, this.rspProdPvt) > this.nrEnts ? 1 : 0; }
  responseProdOverflow(prod: number): number { return diff(prod, this.rspCons) > this.nrEnts ? 1 : 0; }

  /** blkifTakeRequests: what the back copies out (undefined entries: slot bytes not followed). */
  takeRequests(max: number): { status: number } | { count: number; taken: Array<ModelRequest | undefined> } {
    if (this.requestProdOverflow(this.reqProd)) return { status: ST.REQ_PROD_OVERFLOW };
    const n = Math.min(max, this.unconsumedRequests());
    const taken: Array<ModelRequest | undefined> = [];
    for (let k = 0; k < n; k++) {
      const s = this.slots[this.slot(this.reqCons)];
      taken.push(s.kind === 'request' ? s.req : undefined);
      this.reqCons = u32(this.reqCons + 1);
    }
    return { count: n, taken };
  }

  writeResponses(rsps: ModelResponse[]): number {
    for (const rsp of rsps) {
      this.slots[this.slot(this.rspProdPvt)] = { kind: 'response', rsp };
      this.rspProdPvt = u32(this.rspProdPvt + 1);
    }
    return rsps.length;
  }

  pushResponsesAndCheckNotify(): number {
    const old = this.rspProd;
    const now = this.rspProdPvt;
    this.rspProd = now;
    return diff(now, this.rspEvent) < diff(now, old) ? 1 : 0;
  }

  finalCheckForRequests(): number {
    if (this.unconsumedRequests() !== 0) return 1;
    this.reqEvent = u32(this.reqCons + 1);
    return this.unconsumedRequests() !== 0 ? 1 : 0;
  }

  /**
   * blkifReapResponses. On success the model advances. On a violation it
   * says which statuses are acceptable and where; the caller then treats
   * the front as failed (the contract leaves the consumed prefix open).
   */
  reapResponses(max: number): ReapOutcome {
    if (this.responseProdOverflow(this.rspProd)) {
      return { kind: 'violation', statuses: [ST.RSP_PROD_OVERFLOW], at: this.rspCons, before: [] };
    }
    const out: ModelResponse[] = [];
    const shadow = [...this.shadow];
    let i = this.rspCons;
    while (i !== this.rspProd && out.length < max) {
      const s = this.slots[this.slot(i)];
      if (s.kind !== 'response') return { kind: 'unknown' };
      const { id, op, status } = s.rsp;
      const faults: number[] = [];
      if (id >= BigInt(this.nrEnts)) faults.push(ST.RSP_BAD_ID);
      else {
        const want = shadow[Number(id)];
        if (want === 0) faults.push(ST.RSP_NOT_IN_FLIGHT);
        else if (op !== want - 1) faults.push(ST.RSP_BAD_OPERATION);
      }
      if (status !== 0 && status !== -1 && status !== -2) faults.push(ST.RSP_BAD_STATUS);
      if (faults.length) return { kind: 'violation', statuses: faults, at: i, before: out };
      shadow[Number(id)] = 0;
      out.push(s.rsp);
      i = u32(i + 1);
    }
    for (let k = 0; k < this.nrEnts; k++) this.shadow[k] = shadow[k];
    this.rspCons = i;
    return { kind: 'ok', count: out.length, completions: out };
  }
}
