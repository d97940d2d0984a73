/**
 * Hostile or broken peers on the socket: each gets an error reply or its
 * connection closed; afterwards another client is still served and data
 * committed before is intact.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { startServer, frame, RawPeer, type RunningServer } from './xenstore-helpers.js';

const XS_READ = 2, XS_WRITE = 11, XS_ERROR = 16, XS_TRANSACTION_START = 6;
let srv: RunningServer;

beforeEach(async () => {
  srv = await startServer();
  const p = await RawPeer.connect(srv.path);
  p.send(frame(XS_WRITE, 1, 0, '/kept\0committed'));
  expect((await p.next())?.payload).toBe('OK\0');
  p.end();
});
afterEach(async () => { await srv.stop(); });

/** Another client is served and committed data is intact. */
async function stillServing(): Promise<void> {
  const p = await RawPeer.connect(srv.path);
  p.send(frame(XS_READ, 77, 0, '/kept\0'));
  expect(await p.next()).toEqual({ type: XS_READ, reqId: 77, txId: 0, payload: 'committed' });
  p.end();
}

async function errorFor(bytes: Buffer): Promise<string | undefined> {
  const p = await RawPeer.connect(srv.path);
  p.send(bytes);
  const r = await p.next();
  p.end();
  if (!r) return undefined;
  expect(r.type).toBe(XS_ERROR);
  return r.payload;
}

describe('xenstored under bad input', () => {
  it('oversized length: the connection is closed', async () => {
    const p = await RawPeer.connect(srv.path);
    const h = frame(XS_READ, 1, 0, '');
    h.writeUInt32LE(4097, 12);
    p.send(Buffer.concat([h, Buffer.alloc(100)]));
    expect(await p.closedWithin(2000)).toBe(true);
    await stillServing();
  });

  it('unknown type: ENOSYS, and the connection keeps working', async () => {
    const p = await RawPeer.connect(srv.path);
    p.send(frame(99, 5, 0, '/x\0'));
    expect(await p.next()).toEqual({ type: XS_ERROR, reqId: 5, txId: 0, payload: 'ENOSYS\0' });
    p.send(frame(20, 6, 0, '')); // the removed XS_RESTRICT
    expect((await p.next())?.payload).toBe('ENOSYS\0');
    p.send(frame(XS_READ, 7, 0, '/kept\0'));
    expect((await p.next())?.payload).toBe('committed');
    p.end();
    await stillServing();
  });

  it('missing NUL terminator: EINVAL', async () => {
    expect(await errorFor(frame(XS_READ, 1, 0, '/kept'))).toBe('EINVAL\0');
    expect(await errorFor(frame(XS_WRITE, 1, 0, '/no-nul-at-all'))).toBe('EINVAL\0');
    expect(await errorFor(frame(XS_READ, 1, 0, '/kept\0extra\0'))).toBe('EINVAL\0');
    await stillServing();
  });

  it('illegal path characters: EINVAL, nothing written', async () => {
    expect(await errorFor(frame(XS_WRITE, 1, 0, '/a b\0v'))).toBe('EINVAL\0');
    expect(await errorFor(frame(XS_WRITE, 1, 0, '/kept/\x01\0v'))).toBe('EINVAL\0');
    expect(await errorFor(frame(XS_WRITE, 1, 0, '/kept/../x\0v'))).toBe('EINVAL\0');
    await stillServing();
  });

  it('unknown transaction id: ENOENT; TRANSACTION_START inside one: EBUSY', async () => {
    expect(await errorFor(frame(XS_READ, 1, 12345, '/kept\0'))).toBe('ENOENT\0');
    expect(await errorFor(frame(XS_TRANSACTION_START, 1, 9, '\0'))).toBe('EBUSY\0');
    await stillServing();
  });

  it('garbage bytes: each header gets an error or the connection is closed', async () => {
    let seed = 12345;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed & 0xff; };
    for (let round = 0; round < 20; round++) {
      const p = await RawPeer.connect(srv.path);
      p.send(Buffer.from(Array.from({ length: 64 + round * 50 }, rnd)));
      // Either replies (errors) come back, or the server closes: never a hang of the server.
      await Promise.race([p.closedWithin(200), new Promise((r) => setTimeout(r, 200))]);
      p.end();
    }
    await stillServing();
  });

  it('a client that disconnects mid-message or mid-transaction loses nothing committed', async () => {
    const a = await RawPeer.connect(srv.path);
    a.send(frame(XS_WRITE, 1, 0, '/kept\0overwritten-by-half-message').subarray(0, 20));
    a.end();
    const b = await RawPeer.connect(srv.path);
    b.send(frame(XS_TRANSACTION_START, 1, 0, '\0'));
    const tx = Number((await b.next())!.payload.replace('\0', ''));
    b.send(frame(XS_WRITE, 2, tx, '/kept\0never-committed'));
    expect((await b.next())?.payload).toBe('OK\0');
    b.end();
    await new Promise((r) => setTimeout(r, 50));
    await stillServing();
    expect(srv.server.stats().transactions).toBe(0);
  });

  it('a client that never reads its replies is paused or dropped, and others are served', async () => {
    const s = net.createConnection({ path: srv.path });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    s.pause(); // never read
    const req = frame(XS_READ, 1, 0, '/kept\0');
    for (let i = 0; i < 20_000; i++) s.write(req);
    await new Promise((r) => setTimeout(r, 200));
    await stillServing();
    s.destroy();
  });
});
