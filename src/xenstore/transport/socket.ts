/**
 * Unix socket transport to xenstored: `$XENSTORED_PATH`, else
 * `$XENSTORED_RUNDIR/socket`, else /var/run/xenstored/socket (libxenstore's
 * and pyxs's lookup order).
 */
import * as net from 'node:net';
import { DisconnectedError } from '../../errors.js';
import type { XsTransport } from './types.js';
import { XenstoreClient } from '../client.js';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['XENSTORED_PATH']) return env['XENSTORED_PATH'];
  return `${env['XENSTORED_RUNDIR'] || '/var/run/xenstored'}/socket`;
}

/** Wrap a connected socket (client or server side) as a transport. */
export function socketTransport(sock: net.Socket): XsTransport {
  let closeCb: ((err?: Error) => void) | undefined;
  let closed = false;
  let lastErr: Error | undefined;
  sock.on('error', (err) => { lastErr = err; });
  sock.on('close', () => { closed = true; closeCb?.(lastErr); });
  return {
    send: (bytes) => {
      if (closed || !sock.writable) return;
      // Requests issued in the same tick leave in one write.
      if (!sock.writableCorked) { sock.cork(); process.nextTick(() => sock.uncork()); }
      sock.write(bytes);
    },
    onData: (cb) => { sock.on('data', (chunk: Buffer) => cb(chunk)); },
    onClose: (cb) => { closeCb = cb; if (closed) queueMicrotask(() => cb(lastErr)); },
    close: () => { sock.destroy(); },
  };
}

export function connectUnixSocket(path = defaultSocketPath()): Promise<XsTransport> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path });
    const onError = (err: Error) => reject(new DisconnectedError(`cannot connect to xenstored at ${path}: ${err.message}`, { cause: err }));
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(socketTransport(sock));
    });
  });
}

/** A XenstoreClient over the unix socket. */
export async function connectXenstoreSocket(path?: string): Promise<XenstoreClient> {
  return new XenstoreClient(await connectUnixSocket(path));
}
