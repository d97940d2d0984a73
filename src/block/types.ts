/**
 * The BlockDevice contract (modelled on MirageOS's BLOCK signature, with what
 * it lacks: scatter/gather at any alignment, flush, discard, typed errors and
 * a resize event). Every flavour — `xen` (blkfront), `file`, `memory` —
 * implements exactly this.
 *
 * Units and buffers
 * - `sector` arguments and `info().sizeSectors` are in `info().sectorSize`
 *   units (not necessarily 512 bytes), as bigints.
 * - `buffers` is a non-empty array of Uint8Array. Each buffer is a whole,
 *   non-zero number of sectors (its length a multiple of `sectorSize`, not
 *   necessarily one sector), at any byte alignment (subarrays at odd offsets
 *   are fine). The buffers are contiguous on disk: buffers[0] covers
 *   `sector ..`, buffers[1] follows right after it, and so on.
 *
 * I/O buffers (optional, zero copy)
 * - A flavour whose transport can work on caller memory directly offers
 *   `allocateBuffer(bytes)`: a Uint8Array of exactly `bytes` bytes over whole
 *   pages that the device can hand to its transport as they are (`xen`:
 *   pages granted to the backend, so blkfront copies nothing; the backend's
 *   pread/pwrite is the one copy, as with plain fs). Use it like any buffer,
 *   in any read/write, mixed with ordinary ones and as subarrays; only bytes
 *   in ordinary memory (or at an offset that is not a page boundary of an I/O
 *   buffer) are copied. Flavours without it (`file`, `memory`) need no
 *   copy-free memory; callers fall back:
 *     const buf = (await dev.allocateBuffer?.(n)) ?? new Uint8Array(n);
 * - An I/O buffer lives until `releaseBuffer(buf)` or `disconnect()`; after
 *   that its pages go back to the device's pool, so the view must not be
 *   used: any device refuses that view object with `invalid-argument`
 *   (`buffers[i]`), and its pages may hold other data (a subarray kept past
 *   release cannot be told apart from fresh memory: do not keep one).
 *   `allocateBuffer` rejects `invalid-argument` (`bytes`: not an integer in
 *   1..2^30), `disconnected`, or `grant` when the grant table or page pool
 *   is exhausted (nothing is left allocated). `releaseBuffer` rejects
 *   `invalid-argument` for a view it did not hand out, or already released.
 *
 * Errors (all `XenpvError`s from src/errors.ts; callers switch on `code`).
 * Checks run in this order, so a call that is wrong in several ways always
 * reports the same one:
 *   1. `disconnected`     the device was disconnected (or is disconnecting)
 *   2. `invalid-argument` malformed arguments; `field` names the culprit
 *                         (`sector`, `count`, `buffers`, `buffers[2]`)
 *   3. `unsupported`      flush/discard on a device that does not offer it
 *   4. `read-only`        write/discard on a read-only device
 *   5. `out-of-range`     the range does not lie inside the device
 *   then `io` (the host or backend failed the I/O) and, for `xen`,
 *   `protocol` (the backend broke the protocol; the device fails closed).
 * Every method reports errors by rejecting its promise, never by throwing
 * synchronously.
 *
 * Resize
 * - Observed with `onResize(listener)`, which returns an unsubscribe
 *   function (chosen over EventEmitter: typed, no string event names, no
 *   `error`-event special case). Listeners run synchronously, in
 *   registration order, after `info()` already reports the new size; they
 *   receive that same `BlockInfo`. A listener that throws does not stop the
 *   others nor disturb the device: its exception is re-thrown from a fresh
 *   macrotask (an uncaught exception, as with any Node callback).
 */

/** What the device offers. Operations whose flag is false reject with `unsupported`. */
export interface BlockFeatures {
  /** `flush()` makes completed writes durable (blkif `feature-flush-cache`). */
  readonly flush: boolean;
  /**
   * Writes can be ordered by barriers (blkif `feature-barrier`).
   * Informational: BlockDevice itself has no barrier call.
   */
  readonly barrier: boolean;
  /** `discard()` is offered (blkif `feature-discard`). */
  readonly discard: boolean;
  /** Xen only: persistent grants were negotiated (`feature-persistent`). */
  readonly persistent?: boolean;
  /** Xen only: segments per indirect request; absent or 0 = no indirect requests. */
  readonly indirectSegments?: number;
}

/** Discard parameters, present iff `features.discard`. Bytes, as in blkif. */
export interface DiscardInfo {
  /** Discards are most effective in multiples of this many bytes (>= sectorSize). */
  readonly granularity: number;
  /** Byte offset of the first granule (`discard-alignment`); usually 0. */
  readonly alignment: number;
  /** The device can discard securely (`discard-secure`). */
  readonly secure: boolean;
  /**
   * How the range is discarded, where the flavour knows (file): space given
   * back (`punch-hole`), zeroed by the device (`zeroout`), or zeros written
   * with no space freed (`zero-fill`: the fallback, which needs free space).
   */
  readonly method?: DiscardMethod;
}

/** See DiscardInfo.method and src/block/file-discard.ts. */
export type DiscardMethod = 'punch-hole' | 'zeroout' | 'zero-fill';

/** Kind of medium (blkif `info` VDISK_CDROM). */
export type MediaKind = 'disk' | 'cdrom';

/** A snapshot of the device's geometry and features; a new object on every change. */
export interface BlockInfo {
  /** False: `write` and `discard` reject with `read-only`. */
  readonly readWrite: boolean;
  /** Logical sector size in bytes: a power of two, 512..65536. */
  readonly sectorSize: number;
  /** Physical sector size in bytes (>= sectorSize); I/O aligned to it is fastest. */
  readonly physicalSectorSize: number;
  /** Device size in `sectorSize` units. */
  readonly sizeSectors: bigint;
  readonly features: BlockFeatures;
  /** Present iff `features.discard`. */
  readonly discard?: DiscardInfo;
  /** Defaults to 'disk' when absent. */
  readonly media?: MediaKind;
  /** Removable medium (blkif VDISK_REMOVABLE). */
  readonly removable?: boolean;
}

/** Called with the new `BlockInfo` after the device changed size. */
export type ResizeListener = (info: BlockInfo) => void;

export interface BlockDevice {
  /** Current geometry and features. Still answers after `disconnect()` (last known values). */
  info(): BlockInfo;
  /** Fill `buffers` from the device, starting at `sector`. */
  read(sector: bigint, buffers: Uint8Array[]): Promise<void>;
  /** Write `buffers` to the device, starting at `sector`. */
  write(sector: bigint, buffers: Uint8Array[]): Promise<void>;
  /** Make every write completed before this call durable. */
  flush(): Promise<void>;
  /**
   * Tell the device `count` sectors from `sector` are no longer needed.
   * Afterwards their content is unspecified in general; the `memory` and
   * `file` flavours guarantee zeros.
   */
  discard(sector: bigint, count: bigint): Promise<void>;
  /**
   * Stop the device. Calls already in flight complete (or fail) first; every
   * later call rejects with `disconnected`. Idempotent: calling it again
   * returns the same promise.
   */
  disconnect(): Promise<void>;
  /** Observe size changes; returns a function that removes the listener. */
  onResize(listener: ResizeListener): () => void;
  /**
   * Optional: a zero-copy I/O buffer of `bytes` bytes (see "I/O buffers"
   * above). Absent on flavours that copy nothing anyway.
   */
  allocateBuffer?(bytes: number): Promise<Uint8Array>;
  /** Optional, with allocateBuffer: end one I/O buffer before disconnect. */
  releaseBuffer?(buffer: Uint8Array): Promise<void>;
}
