/**
 * The frontend's half of the xenbus handshake (xen/io/blkif.h, "Frontend
 * XenBus Nodes"): everything the backend needs to find our rings, written in
 * one transaction (retried on EAGAIN by XenStore.transaction).
 *
 * Single queue:                         Multi-queue (n > 1):
 *   ring-ref | ring-ref0..N-1             multi-queue-num-queues = n
 *   ring-page-order  (only when > 0)      ring-page-order (only when > 0)
 *   event-channel                         queue-%u/ring-ref | ring-ref%u
 *   protocol, feature-persistent          queue-%u/event-channel
 *                                         protocol, feature-persistent
 */
import { XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64, XenbusState } from '../blkif/constants.js';
import { InvalidArgumentError, ProtocolError } from '../errors.js';
import { parseXenbusState } from './state.js';
import type { XenStore, XsOps } from '../platform/types.js';
import { Abi } from '../ring/engine.js';

export interface QueueKeys {
  ringRefs: readonly number[];
  port: number;
}

export interface FrontendKeys {
  ringPageOrder: number;
  queues: readonly QueueKeys[];
  abi: Abi;
  persistent: boolean;
}

function writeRing(tx: XsOps, dir: string, q: QueueKeys, order: number): Promise<void>[] {
  const ops: Promise<void>[] = [];
  if (order === 0) ops.push(tx.write(`${dir}/ring-ref`, String(q.ringRefs[0])));
  else q.ringRefs.forEach((ref, i) => ops.push(tx.write(`${dir}/ring-ref${i}`, String(ref))));
  ops.push(tx.write(`${dir}/event-channel`, String(q.port)));
  return ops;
}

/** Write our keys under `front` in one transaction. */
export async function writeFrontendKeys(xs: XenStore, front: string, keys: FrontendKeys): Promise<void> {
  await xs.transaction(async (tx) => {
    // Stale keys from an earlier connection (other order or queue count) must not linger.
    for (const stale of ['ring-ref', 'ring-page-order', 'event-channel', 'multi-queue-num-queues']) {
      await tx.rm(`${front}/${stale}`).catch(() => undefined);
    }
    for (const name of await tx.directory(front).catch(() => [] as string[])) {
      if (/^(ring-ref\d+|queue-\d+)$/.test(name)) await tx.rm(`${front}/${name}`).catch(() => undefined);
    }
    const ops: Promise<void>[] = [];
    if (keys.ringPageOrder > 0) ops.push(tx.write(`${front}/ring-page-order`, String(keys.ringPageOrder)));
    if (keys.queues.length === 1) {
      ops.push(...writeRing(tx, front, keys.queues[0]!, keys.ringPageOrder));
    } else {
      ops.push(tx.write(`${front}/multi-queue-num-queues`, String(keys.queues.length)));
      keys.queues.forEach((q, i) => ops.push(...writeRing(tx, `${front}/queue-${i}`, q, keys.ringPageOrder)));
    }
    ops.push(tx.write(`${front}/protocol`, keys.abi === Abi.X86_32 ? XEN_IO_PROTO_ABI_X86_32 : XEN_IO_PROTO_ABI_X86_64));
    ops.push(tx.write(`${front}/feature-persistent`, keys.persistent ? '1' : '0'));
    await Promise.all(ops);
  });
}

/** The backend a vbd's frontend directory names (`backend`, `backend-id`), checked. */
export async function readVbdBackend(xs: XenStore, front: string): Promise<{ path: string; domid: number }> {
  const backend = await xs.tryRead(`${front}/backend`);
  const backendId = await xs.tryRead(`${front}/backend-id`);
  if (backend === undefined && backendId === undefined) {
    throw new InvalidArgumentError('frontend', `no vbd at ${front} (no backend / backend-id keys): create it with createVbd() or xl block-attach`);
  }
  if (backend === undefined || backendId === undefined || !/^\d{1,5}$/.test(backendId)) {
    throw new ProtocolError(`${front}: missing or malformed backend / backend-id`);
  }
  return { path: backend, domid: Number(backendId) };
}

/**
 * Reads the backend's state until it is Closing, Closed or gone, for at most
 * `ms`. Between reads it waits for the caller's state watch: `onWake` is
 * given a function to call when the watch fires (the 5 ms timer only backs
 * up a watch that went away).
 */
export async function waitBackendClosed(xs: XenStore, backendPath: string, ms: number, onWake: (wake: () => void) => void = () => undefined): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const s = parseXenbusState(await xs.tryRead(`${backendPath}/state`).catch(() => undefined));
    if (s === XenbusState.Closing || s === XenbusState.Closed || s === XenbusState.Unknown) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5);
      onWake(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** `p`, or a rejection with `timeout()` after `ms` (the timer never outlives the race). */
export async function within<T>(p: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeout()), ms);
  });
  try {
    return await Promise.race([p, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
