/**
 * The /dev/xen/xenbus character device (a guest's or dom0's kernel xenbus
 * driver, drivers/xen/xenbus/xenbus_dev_frontend.c): the same wire protocol;
 * write() takes whole or partial messages, read() returns whole or partial
 * replies and watch events, and blocks while there are none.
 *
 * A blocking read cannot be cancelled: parked on libuv's thread pool it kept
 * the process alive forever, even through process.exit() (libuv joins its
 * pool threads at exit). So the fd is non-blocking and read only when poll()
 * says it is readable (src/native/fd-poll.ts); close() stops the watcher at
 * once. The watcher keeps the process alive only while the client awaits a
 * reply (`hold`), as an idle connection should not.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { DisconnectedError, UnsupportedError } from '../../errors.js';
import { readNow, watchReadable, type FdWatch } from '../../native/fd-poll.js';
import type { XsTransport } from './types.js';
import { XenstoreClient } from '../client.js';

export const XENBUS_DEVICE = '/dev/xen/xenbus';

/** Largest chunk one read() takes (a message is at most 16 + 4096 bytes). */
const READ_BYTES = 4096 + 16;

export async function openXenbusDevice(path = XENBUS_DEVICE): Promise<XsTransport> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UnsupportedError(`${path} not present: not running on Xen (or the xenfs/xen-privcmd module is not loaded)`);
    throw new DisconnectedError(`cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  let dataCb: ((chunk: Uint8Array) => void) | undefined;
  let closeCb: ((err?: Error) => void) | undefined;
  let closed = false;
  let closeErr: Error | undefined;
  const buf = Buffer.alloc(READ_BYTES);
  let watch: FdWatch | undefined;
  const finish = (err?: Error) => {
    if (closed) return;
    closed = true;
    closeErr = err;
    // The watcher goes before the fd: a closed number may be reused at once.
    watch?.stop();
    try { closeSync(fd); } catch { /* already gone */ }
    closeCb?.(err);
  };
  const drain = () => {
    while (!closed) {
      let n: number | undefined;
      try {
        n = readNow(fd, buf);
      } catch (err) {
        return finish(new DisconnectedError(`read of ${path} failed: ${(err as Error).message}`, { cause: err }));
      }
      if (n === undefined) return; // nothing more now: poll says when
      if (n === 0) return finish();
      dataCb?.(buf.subarray(0, n).slice());
    }
  };
  try {
    watch = watchReadable(fd, (err) => (err ? finish(err) : drain()));
  } catch (err) {
    closeSync(fd);
    throw new DisconnectedError(`cannot watch ${path}: ${(err as Error).message}`, { cause: err });
  }
  watch.ref(false);
  return {
    send: (bytes) => {
      if (closed) return;
      // The kernel takes a message in one or more writes, in order; writes are
      // synchronous, so order is the call order.
      let at = 0;
      try {
        while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
      } catch (err) {
        finish(new DisconnectedError(`write to ${path} failed: ${(err as Error).message}`, { cause: err }));
      }
    },
    onData: (cb) => { dataCb = cb; },
    onClose: (cb) => { closeCb = cb; if (closed) queueMicrotask(() => cb(closeErr)); },
    close: () => finish(),
    hold: (on) => watch?.ref(on),
  };
}

export async function connectXenbusDevice(path?: string): Promise<XenstoreClient> {
  return new XenstoreClient(await openXenbusDevice(path));
}
