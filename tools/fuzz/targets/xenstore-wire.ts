/**
 * The `xenstore` target's byte level: random and split byte streams into the
 * incremental wire parser (src/xenstore/wire.ts XsParser).
 *
 * Oracle: an independent one-shot parser written from xs_wire.h (16-byte
 * header `type, req_id, tx_id, len` u32 LE, then `len` ≤ 4096 payload bytes).
 * Invariants: push throws nothing but a XenpvError (`protocol`), exactly
 * when the oracle finds an over-long header, and keeps throwing after; the
 * messages returned are the oracle's (all of them for a good stream, a
 * prefix for a bad one) however the stream is split; `buffered` is the
 * partial tail.
 */
import * as fc from 'fast-check';
import { XenpvError } from '../../../src/errors.js';
import { check, checkSame, FuzzViolation } from '../target.js';

export interface WireMsgGen { type: number; reqId: number; txId: number; payload: Uint8Array; lenOverride?: number }
export interface WireCase { k: 'wire'; msgs: WireMsgGen[]; tail: Uint8Array; splits: number[]; resplits: number[] }

const u32 = fc.nat({ max: 0xffffffff });
const msg: fc.Arbitrary<WireMsgGen> = fc.record(
  {
    type: fc.oneof(fc.nat({ max: 23 }), u32),
    reqId: u32,
    txId: fc.oneof(fc.constant(0), u32),
    payload: fc.oneof({ weight: 5, arbitrary: fc.uint8Array({ maxLength: 48 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 4090, maxLength: 4096 }) }),
    lenOverride: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(4097, 65536, 0xffffffff, 0x80000000) }),
  },
  { requiredKeys: ['type', 'reqId', 'txId', 'payload'] },
);
export const wireCase: fc.Arbitrary<WireCase> = fc.record({
  k: fc.constant('wire' as const),
  msgs: fc.array(msg, { maxLength: 6 }),
  tail: fc.oneof({ weight: 3, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) }),
  splits: fc.array(fc.nat({ max: 9000 }), { maxLength: 12 }),
  resplits: fc.array(fc.nat({ max: 9000 }), { maxLength: 12 }),
});

export function streamOf(c: WireCase): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const m of c.msgs) {
    const h = new Uint8Array(16);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, m.type >>> 0, true);
    dv.setUint32(4, m.reqId >>> 0, true);
    dv.setUint32(8, m.txId >>> 0, true);
    dv.setUint32(12, m.lenOverride ?? m.payload.length, true);
    parts.push(h, m.payload);
  }
  parts.push(c.tail);
  return Buffer.concat(parts);
}

interface OracleMsg { type: number; reqId: number; txId: number; payload: number[] }

/** One-shot parse: complete messages, whether an over-long header is reached, and the partial tail length. */
function oracle(b: Uint8Array): { msgs: OracleMsg[]; bad: boolean; partial: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const msgs: OracleMsg[] = [];
  let at = 0;
  for (;;) {
    if (b.length - at < 16) return { msgs, bad: false, partial: b.length - at };
    const len = dv.getUint32(at + 12, true);
    if (len > 4096) return { msgs, bad: true, partial: 0 };
    if (b.length - at - 16 < len) return { msgs, bad: false, partial: b.length - at };
    msgs.push({ type: dv.getUint32(at, true), reqId: dv.getUint32(at + 4, true), txId: dv.getUint32(at + 8, true), payload: Array.from(b.subarray(at + 16, at + 16 + len)) });
    at += 16 + len;
  }
}

function chunks(b: Uint8Array, splits: number[]): Uint8Array[] {
  const cuts = [...new Set(splits.map((s) => s % (b.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, b.length]) {
    out.push(b.subarray(prev, c)); // empty chunks included on purpose
    prev = c;
  }
  return out;
}

type Parser = { push(chunk: Uint8Array): Array<{ type: number; reqId: number; txId: number; payload: Uint8Array }>; readonly buffered: number };

function feed(P: new () => Parser, parts: Uint8Array[]): { msgs: OracleMsg[]; error?: XenpvError; buffered: number } {
  const p = new P();
  const msgs: OracleMsg[] = [];
  let error: XenpvError | undefined;
  for (const part of parts) {
    try {
      for (const m of p.push(part)) msgs.push({ type: m.type, reqId: m.reqId, txId: m.txId, payload: Array.from(m.payload) });
    } catch (e) {
      if (!(e instanceof XenpvError)) throw new FuzzViolation(`XsParser.push threw a non-XenpvError: ${(e as Error)?.stack ?? e}`);
      // The messages before the bad header travel with the error (they are still requests).
      const parsed = (e as { parsed?: readonly { type: number; reqId: number; txId: number; payload: Uint8Array }[] }).parsed ?? [];
      if (error === undefined) for (const m of parsed) msgs.push({ type: m.type, reqId: m.reqId, txId: m.txId, payload: Array.from(m.payload) });
      if (error === undefined) error = e;
    }
  }
  if (error) {
    // A failed parser stays failed.
    let again: unknown;
    try { p.push(new Uint8Array(1)); } catch (e) { again = e; }
    check(again instanceof XenpvError, 'XsParser accepted bytes after failing');
  }
  return { msgs, error, buffered: p.buffered };
}

export async function runWireCase(c: WireCase, P: new () => Parser): Promise<void> {
  const bytes = streamOf(c);
  const want = oracle(bytes);
  for (const splits of [[], c.splits, c.resplits]) {
    const got = feed(P, chunks(bytes, splits));
    check(!!got.error === want.bad, got.error ? `XsParser failed (${got.error.message}) on a good stream` : 'XsParser accepted a header with len > 4096', { splits });
    if (got.error) {
      check(got.error.code === 'protocol', `XsParser failure has code '${got.error.code}', expected 'protocol'`);
      checkSame(got.msgs, want.msgs, 'messages before the failure (all of them: none is lost with the bad header)');
    } else {
      checkSame(got.msgs, want.msgs, `messages (split at ${JSON.stringify(splits)})`);
      check(got.buffered === want.partial, `buffered ${got.buffered}, expected the ${want.partial}-byte partial tail`);
    }
  }
}
