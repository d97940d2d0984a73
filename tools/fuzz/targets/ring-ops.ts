/**
 * The `ring` target's case: a ring geometry, a start index (often near 2^31
 * or 2^32 so indices wrap mid-case) and a sequence of ring operations by the
 * front, the back, and a peer scribbling on shared indices.
 */
import * as fc from 'fast-check';

export interface GenSeg { gref: number; first: number; last: number }

export interface GenRequest {
  /** 0 read, 1 write, 2 barrier, 3 flush, 5 discard, 6 indirect; others are bogus. */
  op: number;
  /** 'free': the (id mod #free)-th free shadow id; 'raw': `id` as is. */
  idMode: 'free' | 'raw';
  id: number;
  nrSegments: number;
  segs: GenSeg[]; // always 11
  sector: bigint;
  handle: number;
  flag: number;
  nrSectors: bigint;
  igrefs: number[]; // 8 indirect grefs
}

export type RspKind = 'ok' | 'error' | 'eopnotsupp' | 'badStatus' | 'badOp' | 'badId' | 'dup';
export interface GenResponse { kind: RspKind; pick: number; status: number }

export type RingOp =
  | { k: 'write'; reqs: GenRequest[] }
  | { k: 'push' }
  | { k: 'take'; max: number }
  | { k: 'respond'; rsps: GenResponse[] }
  | { k: 'pushRsp' }
  | { k: 'reap'; max: number }
  | { k: 'finalRsp' }
  | { k: 'finalReq' }
  | { k: 'free' }
  | { k: 'unconsumed' }
  | { k: 'slot'; i: number }
  /** The back moves req_event (peer of the front) to req_cons + delta. */
  | { k: 'reqEvent'; delta: number }
  /** The front moves rsp_event to rsp_cons + delta. */
  | { k: 'rspEvent'; delta: number }
  /** Hostile: the back's view of req_prod moved to req_cons + delta. */
  | { k: 'reqProd'; delta: number }
  /** Hostile: rsp_prod moved to rsp_cons + delta. */
  | { k: 'rspProd'; delta: number }
  | { k: 'overflow'; which: 'req' | 'rsp'; delta: number }
  /** Hostile: the peer scribbles bytes into the slot `slot` places after its consumer index. */
  | { k: 'scribble'; side: 'req' | 'rsp'; slot: number; offset: number; bytes: Uint8Array }
  | { k: 'ringSize'; nrPages: number; slotSize: number };

export interface RingCase {
  abi: 0 | 1;
  nrPages: 1 | 2;
  start: number;
  ops: RingOp[];
}

const u32 = fc.nat({ max: 0xffffffff });
const nearWrap = fc.integer({ min: 1, max: 80 });
const startIndex = fc.oneof(
  fc.constant(0),
  nearWrap.map((k) => (2 ** 32 - k) >>> 0),
  nearWrap.map((k) => (2 ** 31 - k) >>> 0),
  u32,
);
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const seg: fc.Arbitrary<GenSeg> = fc.record({
  gref: u32,
  first: fc.oneof({ weight: 8, arbitrary: fc.nat({ max: 7 }) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
  last: fc.oneof({ weight: 8, arbitrary: fc.constant(7) }, { weight: 2, arbitrary: fc.nat({ max: 7 }) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
});
const validSeg: fc.Arbitrary<GenSeg> = fc.record({ gref: u32, first: fc.constant(0), last: fc.constant(7) });

const request: fc.Arbitrary<GenRequest> = fc.record({
  op: fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(0, 1) },
    { weight: 4, arbitrary: fc.constantFrom(2, 3, 5, 6) },
    { weight: 1, arbitrary: fc.constantFrom(4, 7, 255) },
  ),
  idMode: fc.oneof({ weight: 9, arbitrary: fc.constant('free' as const) }, { weight: 1, arbitrary: fc.constant('raw' as const) }),
  id: fc.oneof({ weight: 5, arbitrary: fc.nat({ max: 70 }) }, { weight: 1, arbitrary: u32 }),
  nrSegments: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 11 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 12, 511, 512, 513, 4096, 4097, 65535) },
  ),
  segs: fc.oneof(
    { weight: 6, arbitrary: fc.array(validSeg, { minLength: 11, maxLength: 11 }) },
    { weight: 1, arbitrary: fc.array(seg, { minLength: 11, maxLength: 11 }) },
  ),
  sector: fc.oneof(fc.bigInt({ min: 0n, max: 1n << 20n }), u64),
  handle: fc.nat({ max: 0xffff }),
  flag: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
  nrSectors: u64,
  igrefs: fc.array(u32, { minLength: 8, maxLength: 8 }),
});

const response: fc.Arbitrary<GenResponse> = fc.record({
  kind: fc.oneof(
    { weight: 20, arbitrary: fc.constant('ok' as const) },
    { weight: 3, arbitrary: fc.constantFrom('error' as const, 'eopnotsupp' as const) },
    { weight: 1, arbitrary: fc.constantFrom('badStatus' as const, 'badOp' as const, 'badId' as const, 'dup' as const) },
  ),
  pick: fc.nat({ max: 64 }),
  status: fc.constantFrom(1, -3, 2, 32767, -32768, 255),
});

const delta = fc.oneof(fc.integer({ min: -3, max: 70 }), u32);

const op: fc.Arbitrary<RingOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('write' as const), reqs: fc.array(request, { minLength: 1, maxLength: 8 }) }) },
  { weight: 5, arbitrary: fc.constant({ k: 'push' as const }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('take' as const), max: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('respond' as const), rsps: fc.array(response, { minLength: 1, maxLength: 8 }) }) },
  { weight: 5, arbitrary: fc.constant({ k: 'pushRsp' as const }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('reap' as const), max: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'finalRsp' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'finalReq' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'free' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'unconsumed' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('slot' as const), i: fc.nat({ max: 70 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('reqEvent' as const), delta }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('rspEvent' as const), delta }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('reqProd' as const), delta }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rspProd' as const), delta }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('overflow' as const), which: fc.constantFrom('req' as const, 'rsp' as const), delta }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('scribble' as const), side: fc.constantFrom('req' as const, 'rsp' as const), slot: fc.nat({ max: 4 }), offset: fc.nat({ max: 111 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('ringSize' as const), nrPages: fc.integer({ min: 1, max: 16 }), slotSize: fc.integer({ min: 1, max: 8192 }) }) },
);

export const ringCase: fc.Arbitrary<RingCase> = fc.record({
  abi: fc.constantFrom(0 as const, 1 as const),
  nrPages: fc.constantFrom(1 as const, 2 as const),
  start: startIndex,
  ops: fc.array(op, { minLength: 1, maxLength: 80, size: 'medium' }),
});

/** One line per operation, for the printed minimal case. */
export function formatRingCase(c: RingCase): string {
  const big = (_: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v);
  const lines = [`abi=${c.abi === 0 ? 'x86_64' : 'x86_32'} nrPages=${c.nrPages} start=${c.start} (0x${c.start.toString(16)})`];
  c.ops.forEach((o, i) => lines.push(`  ${String(i).padStart(3)} ${JSON.stringify(o, big)}`));
  return lines.join('\n');
}
