/**
 * xenstored regressions of issue 11, over a raw socket (frames built by the
 * test's own encoder, test/xenstore-helpers.ts):
 *  - requests before a framing violation in the same read are processed;
 *  - watch tokens (and event paths) come back byte for byte;
 *  - a write costs what its watchers cost (watch-table visits), not what
 *    the whole table holds;
 *  - the socket is created 0600.
 */
import { statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XsParser, XsFramingError } from '../src/xenstore/wire.js';
import { RawPeer, frame, startServer, type RunningServer } from './xenstore-helpers.js';

const XS_READ = 2, XS_WATCH = 4, XS_UNWATCH = 5, XS_WRITE = 11, XS_WATCH_EVENT = 15;
let srv: RunningServer;
beforeEach(async () => { srv = await startServer(); });
afterEach(async () => { await srv.stop(); });

function oversized(reqId: number): Buffer {
  const h = frame(XS_READ, reqId, 0, '');
  h.writeUInt32LE(5000, 12);
  return h;
}

describe('xenstored: a framing violation', () => {
  it('still processes the WRITE sent before it in the same send, then closes the connection', async () => {
    const p = await RawPeer.connect(srv.path);
    p.send(Buffer.concat([frame(XS_WRITE, 1, 0, '/pipetest\0applied'), oversized(2)]));
    // Before the fix: no reply, and the WRITE was not applied.
    expect(await p.next()).toEqual({ type: XS_WRITE, reqId: 1, txId: 0, payload: 'OK\0' });
    expect(await p.closedWithin(2000)).toBe(true);
    const q = await RawPeer.connect(srv.path);
    q.send(frame(XS_READ, 3, 0, '/pipetest\0'));
    expect(await q.next()).toEqual({ type: XS_READ, reqId: 3, txId: 0, payload: 'applied' });
    q.end();
  });

  it('the parser hands over the messages before the bad header with its error', () => {
    const p = new XsParser();
    const bytes = Buffer.concat([frame(XS_WRITE, 1, 0, '/a\0x'), frame(XS_READ, 2, 0, '/a\0'), oversized(3)]);
    let err: unknown;
    try { p.push(bytes); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(XsFramingError);
    expect((err as XsFramingError).code).toBe('protocol');
    expect((err as XsFramingError).parsed.map((m) => m.reqId)).toEqual([1, 2]);
    expect(() => p.push(frame(XS_READ, 4, 0, '/a\0'))).toThrow(XsFramingError);
  });
});

describe('xenstored: watch tokens are bytes', () => {
  it('echoes a non-UTF-8 token (tok\\xff\\xfe) byte for byte in the immediate and later events, and unwatches by it', async () => {
    const p = await RawPeer.connect(srv.path);
    const token = 'tok\xff\xfe'; // latin1: the bytes 74 6f 6b ff fe
    p.send(frame(XS_WATCH, 1, 0, `/bytes\0${token}\0`));
    expect((await p.next())?.payload).toBe('OK\0');
    const first = await p.next({ events: true });
    expect(first).toEqual({ type: XS_WATCH_EVENT, reqId: 0, txId: 0, payload: `/bytes\0${token}\0` });
    p.send(frame(XS_WRITE, 2, 0, '/bytes/x\0v'));
    expect((await p.next())?.payload).toBe('OK\0');
    expect(await p.next({ events: true })).toEqual({ type: XS_WATCH_EVENT, reqId: 0, txId: 0, payload: `/bytes/x\0${token}\0` });
    p.send(frame(XS_UNWATCH, 3, 0, `/bytes\0${token}\0`));
    expect((await p.next())?.payload).toBe('OK\0');
    p.end();
  });
});

describe('xenstored: watch table cost', () => {
  it('a write visits only the watches on its path and ancestors, however many others are installed', async () => {
    const big = await startServer({ quota: { watchesPerConnection: 100_000 } });
    const table = big.server.core.watches;
    const p = await RawPeer.connect(big.path);
    const install = async (paths: string[]): Promise<void> => {
      // One send per batch, then all the OK replies.
      p.send(Buffer.concat(paths.map((path, i) => frame(XS_WATCH, i + 1, 0, `${path}\0t${i}\0`))));
      for (let n = 0; n < paths.length; ) {
        const r = await p.next({ events: true, timeoutMs: 20_000 });
        if (r === undefined) throw new Error('connection closed while installing watches');
        if (r.type !== XS_WATCH_EVENT) {
          expect(r.payload).toBe('OK\0');
          n++;
        }
      }
    };
    await install(Array.from({ length: 128 }, () => '/hot'));
    await install(Array.from({ length: 8000 }, (_, i) => `/cold/a${i % 40}/b${i}`));
    expect(table.size).toBe(128 + 8000);
    const before = table.visits;
    p.send(frame(XS_WRITE, 9001, 0, '/hot/value\0x'));
    for (;;) if ((await p.next())?.reqId === 9001) break;
    // Before the fix every write looked at all 8128 watches.
    expect(table.visits - before).toBe(128);
    p.end();
    await big.stop();
  });
});

describe('xenstored: socket permissions', () => {
  it('creates its socket 0600 whatever the umask', () => {
    expect(statSync(srv.path).mode & 0o777).toBe(0o600);
  });
});
