/**
 * What a caller may ask of a Blkfront, and the checks on it: bad options are
 * an `invalid-argument` at attach, not a reconnect storm later.
 */
import { InvalidArgumentError } from '../errors.js';
import { Abi, type RingEngine } from '../ring/engine.js';
import { MAX_QUEUES, MAX_RING_PAGE_ORDER } from './features.js';

export interface BlkfrontOptions {
  /** Engine for the data path (the Wasm engine, or the JS twin for comparison). */
  engine: RingEngine;
  /** Frontend directory, e.g. /local/domain/0/device/vbd/51712. */
  frontend: string;
  /** Largest ring-page-order to use (the backend's limit also applies). Default 2. */
  maxRingPageOrder?: number;
  /** Queues to use (the backend's limit also applies). Default 1. */
  queues?: number;
  /** Offer persistent grants. Default true. */
  persistent?: boolean;
  /** Use indirect requests when offered. Default true. */
  indirect?: boolean;
  /** Wire ABI to announce. Default x86_64-abi. */
  abi?: Abi;
  /** How long attach() waits for Connected. Default 15 s. */
  connectTimeoutMs?: number;
  /** How long disconnect() lets requests in flight finish, and then waits for the backend to close. Default 3 s. */
  disconnectTimeoutMs?: number;
  /** Spurious events (no response) tolerated on a ring before failing the device. Default 100 000. */
  eventStormLimit?: number;
  /**
   * Opt-in deadline per call (read, write, flush, discard), from submission.
   * A call not answered in time rejects with `timeout`; the device stays as
   * it is (a timed-out write may still land later). Default: none, as Linux
   * blkfront: with the backend gone, calls wait until it comes back or
   * disconnect() (README "Storage rules").
   */
  requestTimeoutMs?: number;
  /** How often grants the backend still maps when we end them are retried. Default 50 ms. */
  ungrantRetryMs?: number;
}

export function checkOptions(o: BlkfrontOptions): void {
  const int = (field: keyof BlkfrontOptions, lo: number, hi: number): void => {
    const v = o[field];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw new InvalidArgumentError(field, `must be an integer in ${lo}..${hi}, got ${String(v)}`);
    }
  };
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('options', 'must be an object');
  const engine = o.engine as Partial<RingEngine> | undefined;
  if (typeof engine !== 'object' || engine === null || typeof engine.ringSize !== 'function') {
    throw new InvalidArgumentError('engine', `must be a RingEngine (createEngine('wasm' | 'js', memory)), got ${engine === null ? 'null' : typeof engine}`);
  }
  if (o.abi !== undefined && o.abi !== 0 && o.abi !== 1) {
    throw new InvalidArgumentError('abi', `must be Abi.X86_64 (0) or Abi.X86_32 (1), got ${String(o.abi)}`);
  }
  for (const field of ['persistent', 'indirect'] as const) {
    if (o[field] !== undefined && typeof o[field] !== 'boolean') {
      throw new InvalidArgumentError(field, `must be a boolean, got ${typeof o[field]}`);
    }
  }
  if (typeof o.frontend !== 'string' || !o.frontend.startsWith('/')) {
    throw new InvalidArgumentError('frontend', 'must be an absolute xenstore path');
  }
  int('maxRingPageOrder', 0, MAX_RING_PAGE_ORDER);
  int('queues', 1, MAX_QUEUES);
  int('connectTimeoutMs', 1, 3_600_000);
  int('disconnectTimeoutMs', 0, 3_600_000);
  int('eventStormLimit', 1, Number.MAX_SAFE_INTEGER);
  int('requestTimeoutMs', 1, 3_600_000);
  int('ungrantRetryMs', 1, 60_000);
}

/** The options with every default filled in (the one place defaults live). */
export type ResolvedOptions = Required<Omit<BlkfrontOptions, 'eventStormLimit' | 'requestTimeoutMs' | 'ungrantRetryMs'>> &
  Pick<BlkfrontOptions, 'eventStormLimit' | 'requestTimeoutMs' | 'ungrantRetryMs'>;

/** Checks `o` (checkOptions) and fills in the defaults documented on BlkfrontOptions. */
export function resolveOptions(o: BlkfrontOptions): ResolvedOptions {
  checkOptions(o);
  return {
    ...o,
    maxRingPageOrder: o.maxRingPageOrder ?? 2,
    queues: o.queues ?? 1,
    persistent: o.persistent ?? true,
    indirect: o.indirect ?? true,
    abi: o.abi ?? Abi.X86_64,
    connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
    disconnectTimeoutMs: o.disconnectTimeoutMs ?? 3_000,
  };
}
