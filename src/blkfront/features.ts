/**
 * Reading what the backend offers (xen/io/blkif.h "Backend XenBus Nodes"),
 * and refusing nonsense. Every value the backend wrote is untrusted: a
 * missing required key or a malformed value is a `protocol` error that
 * fails the attach, never an exception from deep inside a parser.
 */
import { ProtocolError, UnsupportedError } from '../errors.js';
import type { BlockInfo } from '../block/types.js';
import type { XsOps } from '../platform/types.js';
import { BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE_BARRIER, VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE, XEN_PAGE_SIZE } from '../blkif/constants.js';

/** Limits we use, whatever a backend offers beyond them (offers are clamped). */
export const MAX_RING_PAGE_ORDER = 4; // 16 pages, Linux's XENBUS_MAX_RING_GRANT_ORDER
export const MAX_QUEUES = 16;
/** Offers past these are nonsense, not generosity: the attach fails. */
export const NONSENSE_RING_PAGE_ORDER = 8;
export const NONSENSE_QUEUES = 1024;
/** Our cap on indirect segments per request: 256 pages = 1 MiB per request. */
export const MAX_INDIRECT_SEGMENTS = 256;

/** Offered before the handshake (backend in InitWait). */
export interface BackendLimits {
  maxRingPageOrder: number;
  maxQueues: number;
}

/** Published when the backend is Connected. */
export interface BackendInfo {
  /** Device size in 512-byte units (Linux blkback's unit; see README). */
  sectors512: bigint;
  sectorSize: number;
  physicalSectorSize: number;
  readOnly: boolean;
  cdrom: boolean;
  removable: boolean;
  flush: boolean;
  barrier: boolean;
  discard: boolean;
  discardSecure: boolean;
  /** In bytes; 0 = any. */
  discardGranularity: number;
  discardAlignment: number;
  persistent: boolean;
  /** 0 = no indirect descriptors. */
  maxIndirectSegments: number;
}

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

/** Parse an unsigned decimal key value; `what` names the key in errors. */
export function parseUnsigned(value: string, what: string, max: bigint): bigint {
  const v = value.trim();
  if (!DECIMAL.test(v)) throw new ProtocolError(`backend key ${what}: not a decimal number: ${JSON.stringify(value.slice(0, 40))}`);
  const n = BigInt(v);
  if (n > max) throw new ProtocolError(`backend key ${what}: ${n} exceeds ${max}`);
  return n;
}

async function optional(xs: XsOps, dir: string, key: string, max: bigint, dflt: bigint): Promise<bigint> {
  const v = await xs.tryRead(`${dir}/${key}`);
  return v === undefined ? dflt : parseUnsigned(v, key, max);
}

async function required(xs: XsOps, dir: string, key: string, max: bigint): Promise<bigint> {
  const v = await xs.tryRead(`${dir}/${key}`);
  if (v === undefined) throw new ProtocolError(`backend key ${key} is missing`);
  return parseUnsigned(v, key, max);
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** Limits the backend offers in InitWait. Absent keys mean "single page, one queue". */
export async function readBackendLimits(xs: XsOps, backend: string): Promise<BackendLimits> {
  const order = Number(await optional(xs, backend, 'max-ring-page-order', BigInt(NONSENSE_RING_PAGE_ORDER), 0n));
  const queues = Number(await optional(xs, backend, 'multi-queue-max-queues', BigInt(NONSENSE_QUEUES), 1n));
  return {
    // A backend may offer more than we take; clamp rather than refuse.
    maxRingPageOrder: Math.min(order, MAX_RING_PAGE_ORDER),
    maxQueues: Math.max(1, Math.min(queues, MAX_QUEUES)),
  };
}

/** Everything the backend publishes for Connected. */
export async function readBackendInfo(xs: XsOps, backend: string): Promise<BackendInfo> {
  // Sector arithmetic runs on JS numbers: a disk past 2^53 512-byte sectors (4 EiB) is refused, not rounded.
  const sectors512 = await required(xs, backend, 'sectors', BigInt(Number.MAX_SAFE_INTEGER));
  const sectorSize = Number(await optional(xs, backend, 'sector-size', 1n << 20n, 512n));
  if (sectorSize < 512 || !isPow2(sectorSize)) {
    throw new ProtocolError(`backend key sector-size: ${sectorSize} is not a power of two >= 512`);
  }
  if (sectorSize > XEN_PAGE_SIZE) {
    // A segment covers at most one page: a larger logical sector cannot be transferred.
    throw new UnsupportedError(`backend sector-size ${sectorSize} is larger than a page (${XEN_PAGE_SIZE})`);
  }
  const physicalSectorSize = Number(await optional(xs, backend, 'physical-sector-size', 1n << 24n, BigInt(sectorSize)));
  if (physicalSectorSize < sectorSize || physicalSectorSize % sectorSize !== 0) {
    throw new ProtocolError(`backend key physical-sector-size: ${physicalSectorSize} is not a multiple of sector-size ${sectorSize}`);
  }
  if ((sectors512 * 512n) % BigInt(sectorSize) !== 0n) {
    throw new ProtocolError(`backend key sectors: ${sectors512} is not a whole number of ${sectorSize}-byte sectors`);
  }
  const info = Number(await optional(xs, backend, 'info', 0xffffffffn, 0n));
  const flag = async (key: string): Promise<boolean> => (await optional(xs, backend, key, 1n, 0n)) === 1n;
  const discard = await flag('feature-discard');
  let granularity = Number(await optional(xs, backend, 'discard-granularity', 0xffffffffn, 0n));
  let alignment = Number(await optional(xs, backend, 'discard-alignment', 0xffffffffn, 0n));
  if (discard && granularity !== 0 && granularity % 512 !== 0) {
    throw new ProtocolError(`backend key discard-granularity: ${granularity} is not a multiple of 512`);
  }
  if (granularity % sectorSize !== 0 || alignment % sectorSize !== 0) {
    // Not in whole logical sectors: unusable as given; discard by sector instead.
    granularity = sectorSize;
    alignment = 0;
  }
  const indirect = Number(await optional(xs, backend, 'feature-max-indirect-segments', 0xffffffffn, 0n));
  return {
    sectors512,
    sectorSize,
    physicalSectorSize,
    readOnly: (info & VDISK_READONLY) !== 0 || (await xs.tryRead(`${backend}/mode`)) === 'r',
    cdrom: (info & VDISK_CDROM) !== 0,
    removable: (info & VDISK_REMOVABLE) !== 0,
    flush: await flag('feature-flush-cache'),
    barrier: await flag('feature-barrier'),
    discard,
    discardSecure: discard && (await flag('discard-secure')),
    discardGranularity: granularity,
    discardAlignment: alignment,
    persistent: await flag('feature-persistent'),
    // Fewer than a direct request's worth is no use; more than our cap is clamped.
    maxIndirectSegments: indirect > 11 ? Math.min(indirect, MAX_INDIRECT_SEGMENTS) : 0,
  };
}

/** The BlockDevice view of what the backend offers, with the indirect segments negotiated (0 = none). */
export function toBlockInfo(b: BackendInfo, indirectSegments: number): BlockInfo {
  return {
    readWrite: !b.readOnly,
    sectorSize: b.sectorSize,
    physicalSectorSize: b.physicalSectorSize,
    sizeSectors: (b.sectors512 * 512n) / BigInt(b.sectorSize),
    features: {
      // flush() uses FLUSH_DISKCACHE, or an empty WRITE_BARRIER when only barriers are offered.
      flush: b.flush || b.barrier,
      barrier: b.barrier,
      discard: b.discard,
      persistent: b.persistent,
      indirectSegments,
    },
    discard: b.discard
      ? { granularity: Math.max(b.discardGranularity, b.sectorSize), alignment: b.discardAlignment, secure: b.discardSecure }
      : undefined,
    media: b.cdrom ? 'cdrom' : 'disk',
    removable: b.removable,
  };
}

/**
 * The backend answered EOPNOTSUPP to `op`: stop offering what it stands
 * for. Returns whether a feature changed (then BlockInfo must be rebuilt).
 */
export function dropFeature(b: BackendInfo, op: number): boolean {
  if (op === BLKIF_OP_FLUSH_DISKCACHE) b.flush = false;
  else if (op === BLKIF_OP_WRITE_BARRIER) b.barrier = false;
  else if (op === BLKIF_OP_DISCARD) b.discard = false;
  else return false;
  return true;
}
