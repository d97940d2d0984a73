/**
 * A caller's operation (`IoOp`, one promise) and the ring requests it is cut
 * into (`RingRequest`). The promise settles exactly once: when the last of
 * its requests completes, or at the first error.
 */
import { TimeoutError, type XenpvError } from '../errors.js';
import type { PageLease } from './page-supply.js';
import type { ByteStream } from './split.js';

export class IoOp {
  private outstanding = 0;
  private settled = false;
  readonly promise: Promise<void>;
  private resolveFn!: () => void;
  private rejectFn!: (e: XenpvError) => void;

  constructor(readonly stream?: ByteStream) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /** Count `n` more ring requests toward this operation. */
  expect(n: number): void {
    this.outstanding += n;
    if (this.outstanding === 0) this.finish();
  }

  /** One of its ring requests completed successfully. */
  complete(): void {
    if (--this.outstanding === 0) this.finish();
  }

  /** Settle with an error (first error wins; later completions are ignored). */
  fail(err: XenpvError): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(err);
  }

  /**
   * Opt-in deadline: reject with `timeout` after `ms` unless settled first.
   * Fails this call only; its ring requests stay where they are and a late
   * answer is ignored.
   */
  deadline(ms: number | undefined): void {
    if (ms === undefined) return;
    const timer = setTimeout(() => this.fail(new TimeoutError(`no answer from the backend within ${ms} ms`)), ms);
    const stop = (): void => clearTimeout(timer);
    this.promise.then(stop, stop);
  }

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveFn();
  }
}

/** One ring slot's worth of an IoOp. */
export interface RingRequest {
  readonly io: IoOp;
  /** BLKIF_OP_READ / WRITE / WRITE_BARRIER / FLUSH_DISKCACHE / DISCARD. */
  readonly op: number;
  /** Start on disk in 512-byte units: the wire's u64, exactly (never a double). */
  readonly wireSector: bigint;
  /** Read/write: byte range of the caller's stream. */
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly nPages: number;
  /** Discard: 512-byte sectors, and the secure flag. */
  readonly discardSectors: number;
  readonly secure: boolean;
  /** While in flight: data pages and (indirect) descriptor pages. */
  lease?: PageLease;
  indirect?: PageLease;
  /** performance.now() when it was pushed onto the ring (for latency); cleared when answered. */
  issuedAt?: number;
}

export function dataRequest(io: IoOp, op: number, wireSector: bigint, byteOffset: number, byteLength: number, nPages: number): RingRequest {
  return { io, op, wireSector, byteOffset, byteLength, nPages, discardSectors: 0, secure: false };
}

export function controlRequest(io: IoOp, op: number): RingRequest {
  return { io, op, wireSector: 0n, byteOffset: 0, byteLength: 0, nPages: 0, discardSectors: 0, secure: false };
}

export function discardRequest(io: IoOp, wireSector: bigint, sectors: number, secure: boolean): RingRequest {
  return { io, op: 5, wireSector, byteOffset: 0, byteLength: 0, nPages: 0, discardSectors: sectors, secure };
}
