/**
 * Synchronous device I/O for a backend that owns its thread (the simulated
 * backend domain's worker): a device that offers `readSync`/`writeSync`
 * (the `file` flavour: pread/pwrite in the calling thread) is served
 * without a libuv pool hop per call. This is an internal contract between
 * blkback and a flavour, not part of BlockDevice.
 *
 * Only calls up to SYNC_MAX_BYTES go this way. A synchronous call blocks
 * the thread's event loop, which also carries the xenstore watches and
 * event channels. So the ring server serves one time slice of merged
 * groups, then yields a turn (setImmediate) before the next one: a long
 * batch (a multi-page ring full of slow requests) delays a state change or
 * a disconnect by about one slice (or one call, if a call is longer), not
 * by the whole batch.
 *
 *   take ─▶ [g0 g1 g2 │ g3 g4 │ g5]   one slice each, a turn between them
 */

export interface SyncBlockIo {
  /** As BlockDevice.read, done before returning; throws what read would reject with. */
  readSync(sector: bigint, buffers: Uint8Array[]): void;
  /** As BlockDevice.write, done before returning; throws what write would reject with. */
  writeSync(sector: bigint, buffers: Uint8Array[]): void;
}

/** Time one slice of synchronous I/O may hold the event loop. */
export const SYNC_SLICE_MS = 2;

/**
 * Largest device call made synchronously. The pool hop a synchronous call
 * saves (~19 us) is most of a 4 KiB page-cached pread but little of a 1 MiB
 * one (~250 us of copying), and large calls gain from the pool running
 * several at once while this thread takes more requests: those stay async.
 */
export const SYNC_MAX_BYTES = 128 << 10;

/** The device's synchronous entry points, if it has them. */
export function syncIoOf(device: object): SyncBlockIo | undefined {
  const d = device as Partial<SyncBlockIo>;
  return typeof d.readSync === 'function' && typeof d.writeSync === 'function' ? (d as SyncBlockIo) : undefined;
}

/** Resolves on the next turn of the event loop, after pending I/O callbacks. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A FIFO of work served synchronously, one slice per event-loop turn.
 * `serve` must not throw (it answers its own failures). While work waits
 * for a later turn, `track` has been given a promise that settles once the
 * queue is empty: the ring server keeps it in its running set, so a flush
 * taken meanwhile waits for the queued groups and stop() for their grants.
 */
export class SyncSlices<T> {
  private readonly queue: T[] = [];
  /** When this turn's slice ends (undefined: none started this turn). */
  private sliceEnd: number | undefined;
  private draining = false;

  constructor(
    private readonly serve: (item: T) => void,
    private readonly track: (drained: Promise<void>) => void,
  ) {}

  /** Queue `items` behind what waits (take order is kept) and serve what this turn's slice allows. */
  push(items: readonly T[]): void {
    for (const it of items) this.queue.push(it);
    if (this.draining) return;
    if (this.sliceEnd === undefined) {
      this.sliceEnd = performance.now() + SYNC_SLICE_MS;
      setImmediate(() => (this.sliceEnd = undefined));
    }
    while (this.queue.length > 0 && performance.now() < this.sliceEnd) this.serve(this.queue.shift()!);
    if (this.queue.length === 0) return;
    this.draining = true;
    this.track(this.drainLater());
  }

  private async drainLater(): Promise<void> {
    while (this.queue.length > 0) {
      await nextTurn();
      // A new slice; at least one item per slice, so the queue always moves.
      const end = performance.now() + SYNC_SLICE_MS;
      do this.serve(this.queue.shift()!);
      while (this.queue.length > 0 && performance.now() < end);
    }
    this.draining = false;
  }
}
