/**
 * The /dev/xen/xenbus character device (a guest's or dom0's kernel xenbus
 * driver): the same wire protocol, one message per write(), read() returns
 * whole or partial messages. A read/write loop over a file handle.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DisconnectedError, UnsupportedError } from '../../errors.js';
import type { XsTransport } from './types.js';
import { XenstoreClient } from '../client.js';

export const XENBUS_DEVICE = '/dev/xen/xenbus';

export async function openXenbusDevice(path = XENBUS_DEVICE): Promise<XsTransport> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r+');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UnsupportedError(`${path} not present: not running on Xen (or the xenfs/xen-privcmd module is not loaded)`);
    throw new DisconnectedError(`cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  let dataCb: ((chunk: Uint8Array) => void) | undefined;
  let closeCb: ((err?: Error) => void) | undefined;
  let closed = false;
  let writeChain: Promise<unknown> = Promise.resolve();
  const finish = (err?: Error) => {
    if (closed) return;
    closed = true;
    void fh.close().catch(() => undefined);
    closeCb?.(err);
  };
  const readLoop = async () => {
    const buf = Buffer.alloc(4096 + 16);
    while (!closed) {
      try {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) return finish();
        dataCb?.(buf.subarray(0, bytesRead).slice());
      } catch (err) {
        return finish(err as Error);
      }
    }
  };
  return {
    send: (bytes) => {
      // The kernel device wants each message in order; writes are serialised.
      writeChain = writeChain.then(() => (closed ? undefined : fh.write(bytes, 0, bytes.length, null))).catch((err) => finish(err as Error));
    },
    onData: (cb) => { dataCb = cb; void readLoop(); },
    onClose: (cb) => { closeCb = cb; },
    close: () => finish(),
  };
}

export async function connectXenbusDevice(path?: string): Promise<XenstoreClient> {
  return new XenstoreClient(await openXenbusDevice(path));
}
