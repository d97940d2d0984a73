/**
 * MessagePort transport: a worker_thread domain talks to the xenstored
 * running on the main thread. Each postMessage carries one Uint8Array chunk.
 * Server side: `XenstoreServer.attachPort(port, domid)`.
 */
import type { MessagePort } from 'node:worker_threads';
import type { XsTransport } from './types.js';
import { XenstoreClient } from '../client.js';

export function messagePortTransport(port: MessagePort): XsTransport {
  let closed = false;
  let closeCb: ((err?: Error) => void) | undefined;
  const finish = () => {
    if (closed) return;
    closed = true;
    closeCb?.();
  };
  port.on('close', finish);
  return {
    send: (bytes) => { if (!closed) port.postMessage(bytes); },
    onData: (cb) => {
      port.on('message', (data: unknown) => {
        if (data instanceof Uint8Array) cb(data);
        else if (data instanceof ArrayBuffer) cb(new Uint8Array(data));
        // anything else is not xenstore traffic: ignored
      });
    },
    onClose: (cb) => { closeCb = cb; if (closed) queueMicrotask(() => cb()); },
    close: () => { if (!closed) { port.close(); finish(); } },
  };
}

/** A XenstoreClient speaking over `port` (the worker side). */
export function connectMessagePort(port: MessagePort): XenstoreClient {
  return new XenstoreClient(messagePortTransport(port));
}
