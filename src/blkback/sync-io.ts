/**
 * Synchronous device I/O for a backend that owns its thread (the simulated
 * backend domain's worker): a device that offers `readSync`/`writeSync`
 * (the `file` flavour: pread/pwrite in the calling thread) is served
 * without a libuv pool hop per call. This is an internal contract between
 * blkback and a flavour, not part of BlockDevice.
 *
 * A synchronous call blocks the thread's event loop, which also carries the
 * xenstore watches and event channels. So the ring server serves one time
 * slice of merged groups, then yields a turn (setImmediate) before the next
 * one: a long batch (a multi-page ring full of large requests) delays a
 * state change or a disconnect by about one slice, not by the whole batch.
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

/** The device's synchronous entry points, if it has them. */
export function syncIoOf(device: object): SyncBlockIo | undefined {
  const d = device as Partial<SyncBlockIo>;
  return typeof d.readSync === 'function' && typeof d.writeSync === 'function' ? (d as SyncBlockIo) : undefined;
}

/** Resolves on the next turn of the event loop, after pending I/O callbacks. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
