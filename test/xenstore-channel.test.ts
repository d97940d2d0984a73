/**
 * The in-process channel: by default a sent buffer is copied (the sender may
 * reuse it); `handOver` passes the sender's buffer itself (for
 * XenstoreServer.connect, whose two ends never touch a buffer once sent).
 * Either way bytes arrive in order, in a later microtask, never re-entrantly.
 */
import { describe, expect, it } from 'vitest';
import { createChannelPair } from '../src/xenstore/transport/in-process.js';
import { XenstoreServer } from '../src/xenstore/server/server.js';

async function sendTwo(handOver: boolean): Promise<{ got: Uint8Array[]; sent: Uint8Array[]; sync: number }> {
  const [a, b] = createChannelPair({ handOver });
  const got: Uint8Array[] = [];
  b.onData((c) => got.push(c));
  const sent = [Uint8Array.of(1, 2, 3), Uint8Array.of(4)];
  for (const s of sent) a.send(s);
  const sync = got.length;
  await Promise.resolve();
  await Promise.resolve();
  a.close();
  return { got, sent, sync };
}

describe('in-process xenstore channel', () => {
  it('copies sent bytes by default: the sender may reuse its buffer', async () => {
    const { got, sent, sync } = await sendTwo(false);
    expect(sync).toBe(0);
    expect(got.map((c) => [...c])).toEqual([[1, 2, 3], [4]]);
    expect(got[0]).not.toBe(sent[0]);
  });

  it('hands the buffer itself over with handOver, same bytes, same order, still deferred', async () => {
    const { got, sent, sync } = await sendTwo(true);
    expect(sync).toBe(0);
    expect(got).toEqual(sent);
    expect(got[0]).toBe(sent[0]);
  });

  it('a handed-over connection serves requests, errors and watch events as before', async () => {
    const srv = new XenstoreServer();
    const c = srv.connect(0);
    await c.write('/a/b', 'v');
    expect(await c.read('/a/b')).toBe('v');
    await expect(c.read('/a/missing')).rejects.toMatchObject({ errno: 'ENOENT' });
    const w = await c.watch('/a', 'tok');
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ path: '/a', token: 'tok' });
    await c.write('/a/c', '1');
    expect((await it.next()).value).toEqual({ path: '/a/c', token: 'tok' });
    await w.unwatch();
    await c.close();
    await srv.close();
  });
});
