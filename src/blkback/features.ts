/**
 * What a blkback advertises (xen/io/blkif.h, "Backend XenBus Nodes"), each
 * configurable, and the keys it writes for them.
 */
import { VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE } from '../blkif/constants.js';
import type { XsOps } from '../platform/types.js';
import { InvalidArgumentError } from '../errors.js';

export interface BackendFeatures {
  flushCache: boolean;
  barrier: boolean;
  discard: boolean;
  /** Bytes; 0 = the sector size. */
  discardGranularity: number;
  discardAlignment: number;
  discardSecure: boolean;
  persistent: boolean;
  /**
   * Cap on grants kept mapped persistently per ring (Linux's blkback module
   * parameter max_persistent_grants, default 1056). Unset: as many as one
   * full ring can carry (ring entries × segments per request), which Linux
   * documents as the value for best performance; past the cap each request
   * maps and unmaps its own pages.
   */
  maxPersistentGrants?: number;
  /** 0 = no indirect requests. */
  maxIndirectSegments: number;
  maxRingPageOrder: number;
  maxQueues: number;
  /** Logical sector size in bytes (power of two ≥ 512). */
  sectorSize?: number;
  physicalSectorSize?: number;
  cdrom: boolean;
  removable: boolean;
}

export const DEFAULT_FEATURES: BackendFeatures = {
  flushCache: true,
  barrier: true,
  discard: true,
  discardGranularity: 0,
  discardAlignment: 0,
  discardSecure: false,
  persistent: true,
  maxIndirectSegments: 256,
  maxRingPageOrder: 4,
  maxQueues: 4,
  cdrom: false,
  removable: false,
};

/** Written at probe time, before InitWait: what the frontend needs to size its rings. */
export async function writeProbeKeys(xs: XsOps, dir: string, f: BackendFeatures): Promise<void> {
  await xs.write(`${dir}/max-ring-page-order`, String(f.maxRingPageOrder));
  await xs.write(`${dir}/multi-queue-max-queues`, String(f.maxQueues));
  if (f.maxIndirectSegments > 0) await xs.write(`${dir}/feature-max-indirect-segments`, String(f.maxIndirectSegments));
  else await xs.rm(`${dir}/feature-max-indirect-segments`).catch(() => undefined);
}

/** Written when connecting: geometry and the remaining features. */
export async function writeConnectKeys(
  xs: XsOps,
  dir: string,
  f: BackendFeatures,
  geometry: { sectors512: bigint; sectorSize: number; physicalSectorSize: number; readOnly: boolean },
): Promise<void> {
  const info = (geometry.readOnly ? VDISK_READONLY : 0) | (f.cdrom ? VDISK_CDROM : 0) | (f.removable ? VDISK_REMOVABLE : 0);
  const keys: Record<string, string> = {
    sectors: String(geometry.sectors512),
    'sector-size': String(geometry.sectorSize),
    'physical-sector-size': String(geometry.physicalSectorSize),
    info: String(info),
    'feature-flush-cache': f.flushCache ? '1' : '0',
    'feature-barrier': f.barrier ? '1' : '0',
    'feature-discard': f.discard ? '1' : '0',
    'feature-persistent': f.persistent ? '1' : '0',
  };
  if (f.discard) {
    keys['discard-granularity'] = String(f.discardGranularity || geometry.sectorSize);
    keys['discard-alignment'] = String(f.discardAlignment);
    keys['discard-secure'] = f.discardSecure ? '1' : '0';
  }
  for (const [k, v] of Object.entries(keys)) await xs.write(`${dir}/${k}`, v);
}

const BOOLEAN_FEATURES = ['flushCache', 'barrier', 'discard', 'discardSecure', 'persistent', 'cdrom', 'removable'] as const;
/** Integer features and their ranges (ring limits as Linux's blkback has them). */
const INTEGER_FEATURES: ReadonlyArray<readonly [keyof BackendFeatures, number, number]> = [
  ['discardGranularity', 0, 2 ** 31],
  ['discardAlignment', 0, 2 ** 31],
  ['maxPersistentGrants', 0, 2 ** 31],
  ['maxIndirectSegments', 0, 512],
  ['maxRingPageOrder', 0, 4],
  ['maxQueues', 1, 16],
];

/** Bad features are an `invalid-argument` naming `features.<name>`, before anything is written. */
export function checkFeatures(f: unknown): asserts f is Partial<BackendFeatures> | undefined {
  if (f === undefined) return;
  if (typeof f !== 'object' || f === null) throw new InvalidArgumentError('features', 'must be an object');
  const o = f as Record<string, unknown>;
  const known = new Set<string>([...BOOLEAN_FEATURES, ...INTEGER_FEATURES.map(([k]) => k), 'sectorSize', 'physicalSectorSize']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new InvalidArgumentError(`features.${k}`, 'is not a backend feature');
  for (const k of BOOLEAN_FEATURES) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new InvalidArgumentError(`features.${k}`, `must be a boolean, got ${typeof o[k]}`);
  }
  for (const [k, lo, hi] of INTEGER_FEATURES) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)) {
      throw new InvalidArgumentError(`features.${k}`, `must be an integer in ${lo}..${hi}, got ${String(v)}`);
    }
  }
}
