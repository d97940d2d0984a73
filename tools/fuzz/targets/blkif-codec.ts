/**
 * The `blkif` target's checks of the convenience codec (src/blkif/codec.ts):
 * it must agree with the engine's status, return what the independent parser
 * reads, throw only XenpvError, and round-trip.
 */
import * as codecModule from '../../../src/blkif/codec.js';
import { XenpvError } from '../../../src/errors.js';
import { buildResponse, canonicalRequest, type WireRequest, type WireResponse } from '../model/blkif-wire.js';
import { check, checkSame, FuzzViolation } from '../target.js';

export interface Codec {
  encodeRequest(req: unknown, abi: string): Uint8Array;
  decodeRequest(bytes: Uint8Array, abi: string): Record<string, unknown>;
  encodeResponse(rsp: unknown, abi: string): Uint8Array;
  decodeResponse(bytes: Uint8Array, abi: string): Record<string, unknown>;
}

/** The codec module, typed loosely: the fuzzer feeds it what its parser returned. */
export async function loadCodec(): Promise<Codec> {
  return codecModule as unknown as Codec;
}

const ABI = ['x86_64-abi', 'x86_32-abi'];

function typed<T>(what: string, f: () => T): { ok: true; v: T } | { ok: false; e: XenpvError } {
  try {
    return { ok: true, v: f() };
  } catch (e) {
    if (e instanceof XenpvError) return { ok: false, e };
    throw new FuzzViolation(`${what} threw a non-XenpvError: ${(e as Error)?.stack ?? String(e)}`);
  }
}

/** The codec's object for a request the independent parser read. */
function expectedObject(w: WireRequest): Record<string, unknown> {
  if (w.op === 5) return { operation: 5, id: w.id, handle: w.handle, sectorNumber: w.sector, nrSectors: w.nrSectors, secure: w.flag === 1 };
  if (w.op === 6) return { operation: 6, indirectOp: w.flag, id: w.id, handle: w.handle, sectorNumber: w.sector, nrSegments: w.nrSegments, indirectGrefs: w.grefs };
  return { operation: w.op, id: w.id, handle: w.handle, sectorNumber: w.sector, segments: w.segs.map((s) => ({ gref: s.gref, firstSect: s.first, lastSect: s.last })) };
}

export const codecChecks = {
  request(codec: Codec, abi: 0 | 1, bytes: Uint8Array, engineStatus: number, wire: WireRequest): void {
    const r = typed('decodeRequest', () => codec.decodeRequest(bytes, ABI[abi]));
    check(r.ok === (engineStatus === 0), `codec decodeRequest ${r.ok ? 'accepted' : 'rejected'} what the engine decoder answered ${engineStatus}`);
    if (!r.ok) return;
    checkSame(r.v, expectedObject(wire), 'codec decodeRequest vs the independent parser');
    const enc = typed('encodeRequest', () => codec.encodeRequest(r.v, ABI[abi]));
    if (!enc.ok) throw new FuzzViolation(`codec encodeRequest refused what decodeRequest returned: ${enc.e.message}`, { request: r.v });
    checkSame(Array.from(enc.v), Array.from(canonicalRequest(abi, bytes)), 'codec encode(decode(bytes)) vs bytes with padding zeroed');
    const again = typed('decodeRequest', () => codec.decodeRequest(enc.v, ABI[abi]));
    check(again.ok, 'codec decode(encode(x)) failed');
    checkSame(again.v, r.v, 'codec decode(encode(x)) vs x');
  },
  response(codec: Codec, abi: 0 | 1, bytes: Uint8Array, engineStatus: number, wire: WireResponse): void {
    const validStatus = wire.status === 0 || wire.status === -1 || wire.status === -2;
    // codec.ts documents: a status outside {0, -1, -2} is a protocol error.
    check(engineStatus === (validStatus ? 0 : -24), `blkifDecodeResponse returned ${engineStatus} for wire status ${wire.status}`);
    const r = typed('decodeResponse', () => codec.decodeResponse(bytes, ABI[abi]));
    check(r.ok === validStatus, `codec decodeResponse ${r.ok ? 'accepted' : 'rejected'} status ${wire.status}`);
    if (!r.ok) {
      check(r.e.code === 'protocol', `codec decodeResponse rejected status ${wire.status} with code '${r.e.code}', expected 'protocol'`);
      return;
    }
    checkSame(r.v, { id: wire.id, operation: wire.op, status: wire.status }, 'codec decodeResponse vs the independent parser');
    const enc = typed('encodeResponse', () => codec.encodeResponse(r.v, ABI[abi]));
    if (!enc.ok) throw new FuzzViolation(`codec encodeResponse refused what decodeResponse returned: ${enc.e.message}`);
    checkSame(Array.from(enc.v), Array.from(buildResponse(abi, wire)), 'codec encode(decode(bytes)) vs bytes with padding zeroed');
  },
};
