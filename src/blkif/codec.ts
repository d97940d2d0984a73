/**
 * Convenience blkif codec for tools and tests: plain objects in, wire bytes
 * out, and back. Every encode goes through the Wasm codec (a small private
 * shared memory and one WasmEngine, created on first use). Checks types and
 * ranges here first so errors name the exact field (`segments[3].lastSect`);
 * any status the Wasm codec still returns maps through statusToError.
 * Not the hot path: the drivers use RingEngine batch calls.
 */
import { InvalidArgumentError } from '../errors.js';
import { Abi } from '../ring/engine.js';
import { BlkifStatus, statusToError } from '../ring/status.js';
import { SCRATCH_BASE } from '../memory/layout.js';
import { createWasmEngine, type WasmEngine } from '../wasm/engine.js';
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER,
  BLKIF_REQUEST_BYTES_X86_32, BLKIF_REQUEST_BYTES_X86_64, BLKIF_RESPONSE_BYTES_X86_32,
  BLKIF_RESPONSE_BYTES_X86_64, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY, BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  SECTORS_PER_PAGE, XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64,
} from './constants.js';

/** xenstore `protocol` value naming the wire layout. */
export type BlkifAbi = typeof XEN_IO_PROTO_ABI_X86_64 | typeof XEN_IO_PROTO_ABI_X86_32;

export interface BlkifSegment {
  gref: number;
  /** First 512-byte sector within the page, 0..7. */
  firstSect: number;
  /** Last 512-byte sector within the page, firstSect..7. */
  lastSect: number;
}
/** read (0), write (1), write-barrier (2), flush-diskcache (3). */
export interface BlkifSegmentRequest {
  operation: 0 | 1 | 2 | 3;
  id: bigint;
  handle: number;
  sectorNumber: bigint;
  segments: BlkifSegment[];
}
export interface BlkifDiscardRequest {
  operation: 5;
  id: bigint;
  handle: number;
  sectorNumber: bigint;
  nrSectors: bigint;
  secure: boolean;
}
export interface BlkifIndirectRequest {
  operation: 6;
  /** BLKIF_OP_READ or BLKIF_OP_WRITE. */
  indirectOp: 0 | 1;
  id: bigint;
  handle: number;
  sectorNumber: bigint;
  /** 1..4096 segments, in ceil(nrSegments / 512) indirect pages. */
  nrSegments: number;
  /** One gref per indirect page: exactly ceil(nrSegments / 512). */
  indirectGrefs: number[];
}
export type BlkifRequest = BlkifSegmentRequest | BlkifDiscardRequest | BlkifIndirectRequest;
export interface BlkifResponse {
  id: bigint;
  operation: number;
  /** BLKIF_RSP_OKAY (0), BLKIF_RSP_ERROR (−1), BLKIF_RSP_EOPNOTSUPP (−2). */
  status: number;
}

// ---- the private Wasm codec: one 2-page shared memory, tables in scratch ----
const DESC = SCRATCH_BASE; // 32-byte request descriptor
const SEGS = SCRATCH_BASE + 64; // up to 11 segments / 8 indirect grefs
const SLOT = SCRATCH_BASE + 256; // one request slot (≤ 112 bytes)
const RSP = SCRATCH_BASE + 512; // one response entry (16 bytes)
const WIRE_RSP = SCRATCH_BASE + 576; // one wire response (≤ 16 bytes)

interface Codec {
  engine: WasmEngine;
  view: DataView;
  bytes: Uint8Array;
}
let codec: Codec | undefined;
function getCodec(): Codec {
  if (!codec) {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
    codec = { engine: createWasmEngine(memory), view: new DataView(memory.buffer), bytes: new Uint8Array(memory.buffer) };
  }
  return codec;
}

// ---- argument checks (name the field) ----
const U64_MAX = (1n << 64n) - 1n;
function abiOf(abi: unknown): Abi {
  if (abi === XEN_IO_PROTO_ABI_X86_64) return Abi.X86_64;
  if (abi === XEN_IO_PROTO_ABI_X86_32) return Abi.X86_32;
  throw new InvalidArgumentError('abi', `must be '${XEN_IO_PROTO_ABI_X86_64}' or '${XEN_IO_PROTO_ABI_X86_32}', got ${String(abi)}`);
}
function u64(value: unknown, field: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new InvalidArgumentError(field, `must be a bigint in 0..2^64-1, got ${String(value)}`);
  }
  return value;
}
function int(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, `must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}
function array(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, 'must be an array');
  return value;
}
function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError(field, 'must be an object');
  return value as Record<string, unknown>;
}
function bytesOf(value: unknown, min: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError('bytes', 'must be a Uint8Array');
  if (value.length < min) throw new InvalidArgumentError('bytes', `needs at least ${min} bytes, got ${value.length}`);
  return value;
}
const requestBytes = (abi: Abi): number => (abi === Abi.X86_32 ? BLKIF_REQUEST_BYTES_X86_32 : BLKIF_REQUEST_BYTES_X86_64);
const responseBytes = (abi: Abi): number => (abi === Abi.X86_32 ? BLKIF_RESPONSE_BYTES_X86_32 : BLKIF_RESPONSE_BYTES_X86_64);
const indirectPages = (n: number): number => Math.ceil(n / BLKIF_SEGMENTS_PER_INDIRECT_PAGE);

/** The request field a request-validation status is about. */
const STATUS_FIELD: Record<number, string> = {
  [BlkifStatus.BAD_OPERATION]: 'operation',
  [BlkifStatus.BAD_NR_SEGMENTS]: 'segments',
  [BlkifStatus.BAD_SECTOR_RANGE]: 'segments',
  [BlkifStatus.BAD_INDIRECT_OP]: 'indirectOp',
  [BlkifStatus.BAD_INDIRECT_NR_SEGMENTS]: 'nrSegments',
  [BlkifStatus.BAD_DISCARD_FLAG]: 'secure',
  [BlkifStatus.BAD_ABI]: 'abi',
};
function fail(status: number): never {
  throw statusToError(status, STATUS_FIELD[status] ?? 'request');
}

/** Fill the descriptor (engine.ts layout) from a checked request object. */
function writeDescriptor(view: DataView, req: Record<string, unknown>): void {
  const op = req.operation;
  if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE && op !== BLKIF_OP_WRITE_BARRIER &&
      op !== BLKIF_OP_FLUSH_DISKCACHE && op !== BLKIF_OP_DISCARD && op !== BLKIF_OP_INDIRECT) {
    throw new InvalidArgumentError('operation', `must be 0, 1, 2, 3, 5 or 6, got ${String(op)}`);
  }
  const id = u64(req.id, 'id');
  const handle = int(req.handle, 'handle', 0, 0xffff);
  const sector = u64(req.sectorNumber, 'sectorNumber');
  let flag = 0;
  let nr = 0;
  let arg = 0n;
  if (op === BLKIF_OP_DISCARD) {
    if (typeof req.secure !== 'boolean') throw new InvalidArgumentError('secure', 'must be a boolean');
    flag = req.secure ? 1 : 0;
    arg = u64(req.nrSectors, 'nrSectors');
  } else if (op === BLKIF_OP_INDIRECT) {
    flag = int(req.indirectOp, 'indirectOp', BLKIF_OP_READ, BLKIF_OP_WRITE);
    nr = int(req.nrSegments, 'nrSegments', 1, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
    const grefs = array(req.indirectGrefs, 'indirectGrefs');
    if (grefs.length !== indirectPages(nr)) {
      throw new InvalidArgumentError('indirectGrefs', `needs ${indirectPages(nr)} grefs for ${nr} segments, got ${grefs.length}`);
    }
    grefs.forEach((g, i) => view.setUint32(SEGS + i * 4, int(g, `indirectGrefs[${i}]`, 0, 0xffffffff), true));
    arg = BigInt(SEGS);
  } else {
    const segs = array(req.segments, 'segments');
    const min = op === BLKIF_OP_READ || op === BLKIF_OP_WRITE ? 1 : 0;
    if (segs.length < min || segs.length > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      throw new InvalidArgumentError('segments', `needs ${min}..${BLKIF_MAX_SEGMENTS_PER_REQUEST} segments, got ${segs.length}`);
    }
    segs.forEach((s, i) => {
      const seg = object(s, `segments[${i}]`);
      const gref = int(seg.gref, `segments[${i}].gref`, 0, 0xffffffff);
      const first = int(seg.firstSect, `segments[${i}].firstSect`, 0, SECTORS_PER_PAGE - 1);
      const last = int(seg.lastSect, `segments[${i}].lastSect`, first, SECTORS_PER_PAGE - 1);
      view.setUint32(SEGS + i * 8, gref, true);
      view.setUint32(SEGS + i * 8 + 4, first | (last << 8), true); // pad 0
    });
    nr = segs.length;
    arg = BigInt(SEGS);
  }
  view.setUint8(DESC, op);
  view.setUint8(DESC + 1, flag);
  view.setUint16(DESC + 2, handle, true);
  view.setUint16(DESC + 4, nr, true);
  view.setInt16(DESC + 6, 0, true);
  view.setBigUint64(DESC + 8, id, true);
  view.setBigUint64(DESC + 16, sector, true);
  view.setBigUint64(DESC + 24, arg, true);
}

/** Encode one request into a full ring slot: 112 bytes (x86_64-abi) or 108 (x86_32-abi), padding zero. */
export function encodeRequest(req: BlkifRequest, abi: BlkifAbi = XEN_IO_PROTO_ABI_X86_64): Uint8Array {
  const a = abiOf(abi);
  const { engine, view, bytes } = getCodec();
  writeDescriptor(view, object(req, 'request'));
  const status = engine.blkifEncodeRequest(DESC, SLOT, a);
  if (status !== BlkifStatus.OK) fail(status);
  return bytes.slice(SLOT, SLOT + requestBytes(a));
}

/** Decode one request slot (at least 112 / 108 bytes); throws on a malformed request. */
export function decodeRequest(input: Uint8Array, abi: BlkifAbi = XEN_IO_PROTO_ABI_X86_64): BlkifRequest {
  const a = abiOf(abi);
  const src = bytesOf(input, requestBytes(a));
  const { engine, view, bytes } = getCodec();
  bytes.set(src.subarray(0, requestBytes(a)), SLOT);
  const status = engine.blkifDecodeRequest(SLOT, DESC, SEGS, a);
  if (status !== BlkifStatus.OK) fail(status);
  const operation = view.getUint8(DESC);
  const flag = view.getUint8(DESC + 1);
  const handle = view.getUint16(DESC + 2, true);
  const nr = view.getUint16(DESC + 4, true);
  const id = view.getBigUint64(DESC + 8, true);
  const sectorNumber = view.getBigUint64(DESC + 16, true);
  if (operation === BLKIF_OP_DISCARD) {
    return { operation, id, handle, sectorNumber, nrSectors: view.getBigUint64(DESC + 24, true), secure: flag === 1 };
  }
  if (operation === BLKIF_OP_INDIRECT) {
    const indirectGrefs = Array.from({ length: indirectPages(nr) }, (_, i) => view.getUint32(SEGS + i * 4, true));
    return { operation, indirectOp: flag as 0 | 1, id, handle, sectorNumber, nrSegments: nr, indirectGrefs };
  }
  const segments = Array.from({ length: nr }, (_, i) => ({
    gref: view.getUint32(SEGS + i * 8, true),
    firstSect: view.getUint8(SEGS + i * 8 + 4),
    lastSect: view.getUint8(SEGS + i * 8 + 5),
  }));
  return { operation: operation as 0 | 1 | 2 | 3, id, handle, sectorNumber, segments };
}

/** Encode one response: 16 bytes (x86_64-abi) or 12 (x86_32-abi), padding zero. */
export function encodeResponse(rsp: BlkifResponse, abi: BlkifAbi = XEN_IO_PROTO_ABI_X86_64): Uint8Array {
  const a = abiOf(abi);
  const r = object(rsp, 'response');
  const id = u64(r.id, 'id');
  const operation = int(r.operation, 'operation', 0, 0xff);
  const status = int(r.status, 'status', BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY);
  const { engine, view, bytes } = getCodec();
  view.setBigUint64(RSP, id, true);
  view.setUint32(RSP + 8, operation | ((status & 0xffff) << 16), true);
  view.setUint32(RSP + 12, 0, true);
  const st = engine.blkifEncodeResponse(RSP, WIRE_RSP, a);
  if (st !== BlkifStatus.OK) fail(st);
  return bytes.slice(WIRE_RSP, WIRE_RSP + responseBytes(a));
}

/** Decode one response (at least 16 / 12 bytes); a status outside {0, −1, −2} is a protocol error. */
export function decodeResponse(input: Uint8Array, abi: BlkifAbi = XEN_IO_PROTO_ABI_X86_64): BlkifResponse {
  const a = abiOf(abi);
  const src = bytesOf(input, responseBytes(a));
  const { engine, view, bytes } = getCodec();
  bytes.set(src.subarray(0, responseBytes(a)), WIRE_RSP);
  const st = engine.blkifDecodeResponse(WIRE_RSP, RSP, a);
  if (st !== BlkifStatus.OK) fail(st);
  return { id: view.getBigUint64(RSP, true), operation: view.getUint8(RSP + 8), status: view.getInt16(RSP + 10, true) };
}

/** Sizes, for callers slicing rings by hand. */
export const REQUEST_SLOT_BYTES: Readonly<Record<BlkifAbi, number>> = {
  'x86_64-abi': BLKIF_REQUEST_BYTES_X86_64,
  'x86_32-abi': BLKIF_REQUEST_BYTES_X86_32,
};
