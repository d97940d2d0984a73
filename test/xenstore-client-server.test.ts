/**
 * Our client against our server: over a real unix socket (dom0), in-process
 * connections for unprivileged domains, and a MessagePort.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { connectXenstoreSocket } from '../src/xenstore/transport/socket.js';
import { connectMessagePort } from '../src/xenstore/transport/message-port.js';
import { openXenbusDevice } from '../src/xenstore/transport/xenbus.js';
import { XenstoreClient } from '../src/xenstore/client.js';
import { XenstoreError } from '../src/xenstore/errors.js';
import { DisconnectedError, UnsupportedError } from '../src/errors.js';
import type { XsWatch, XsWatchEvent } from '../src/platform/types.js';
import { startServer, type RunningServer } from './xenstore-helpers.js';

let srv: RunningServer;
const clients: XenstoreClient[] = [];
async function dom0(): Promise<XenstoreClient> {
  const c = await connectXenstoreSocket(srv.path);
  clients.push(c);
  return c;
}
function dom(domid: number): XenstoreClient {
  const c = srv.server.connect(domid);
  clients.push(c);
  return c;
}
// One outstanding next() per watch, kept across helper calls so a timed-out
// wait does not swallow the event that arrives later.
const outstanding = new WeakMap<XsWatch, Promise<IteratorResult<XsWatchEvent>>>();
function pendingNext(w: XsWatch): Promise<IteratorResult<XsWatchEvent>> {
  let p = outstanding.get(w);
  if (!p) { p = w[Symbol.asyncIterator]().next(); outstanding.set(w, p); }
  return p;
}
async function nextEvent(w: XsWatch, ms = 2000): Promise<XsWatchEvent> {
  const r = await Promise.race([pendingNext(w), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no watch event')), ms))]);
  outstanding.delete(w);
  if (r.done) throw new Error('watch ended');
  return r.value;
}
async function noEvent(w: XsWatch, ms = 150): Promise<void> {
  const r = await Promise.race([pendingNext(w), new Promise<'none'>((res) => setTimeout(() => res('none'), ms))]);
  expect(r).toBe('none');
}
async function errnoOf(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { expect(e).toBeInstanceOf(XenstoreError); return (e as XenstoreError).errno; }
  return 'no error';
}

beforeEach(async () => { srv = await startServer(); });
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await srv.stop();
});

describe('xenstore client and server over a unix socket', () => {
  it('writes, reads, lists, removes; missing parents are created empty', async () => {
    const c = await dom0();
    await c.write('/vm/1/name', 'guest');
    expect(await c.read('/vm/1/name')).toBe('guest');
    expect(await c.read('/vm/1')).toBe('');
    expect(await c.directory('/vm')).toEqual(['1']);
    await c.mkdir('/vm/1/device');
    expect((await c.directory('/vm/1')).sort()).toEqual(['device', 'name']);
    await c.rm('/vm/1');
    expect(await c.tryRead('/vm/1/name')).toBeUndefined();
    expect(await errnoOf(c.read('/vm/1/name'))).toBe('ENOENT');
    await c.rm('/vm/1'); // absent, parent present: not an error
    expect(await errnoOf(c.rm('/vm/1/x/y'))).toBe('ENOENT'); // parent absent too
  });

  it('pipelines many requests on one connection, matched by req_id', async () => {
    const c = await dom0();
    await Promise.all(Array.from({ length: 200 }, (_, i) => c.write(`/p/k${i}`, `v${i}`)));
    const vals = await Promise.all(Array.from({ length: 200 }, (_, i) => c.read(`/p/k${i}`)));
    expect(vals).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`));
  });

  it('get/set permissions round trip in wire form', async () => {
    const c = await dom0();
    await c.write('/perm/x', '1');
    expect(await c.getPermissions('/perm/x')).toEqual([{ domid: 0, perm: 'n' }]);
    await c.setPermissions('/perm/x', [{ domid: 5, perm: 'r' }, { domid: 7, perm: 'b' }]);
    expect(await c.getPermissions('/perm/x')).toEqual([{ domid: 5, perm: 'r' }, { domid: 7, perm: 'b' }]);
  });

  it('get_domain_path and relative paths of a domain', async () => {
    const c = await dom0();
    expect(await c.getDomainPath(3)).toBe('/local/domain/3');
    await c.mkdir('/local/domain/3');
    await c.setPermissions('/local/domain/3', [{ domid: 3, perm: 'n' }]);
    const d3 = dom(3);
    await d3.write('data/x', 'rel');
    expect(await c.read('/local/domain/3/data/x')).toBe('rel');
    expect(await c.getPermissions('/local/domain/3/data/x')).toEqual([{ domid: 3, perm: 'n' }]);
  });

  it('conflicting transactions: one commit gets EAGAIN, transaction() retries and succeeds', async () => {
    const a = await dom0();
    const b = await dom0();
    await a.write('/counter', '0');
    const t1 = await a.transactionStart();
    const t2 = await b.transactionStart();
    const v1 = Number(await a.ops(t1).read('/counter'));
    const v2 = Number(await b.ops(t2).read('/counter'));
    await a.ops(t1).write('/counter', String(v1 + 1));
    await b.ops(t2).write('/counter', String(v2 + 1));
    await a.transactionEnd(t1, true);
    expect(await errnoOf(b.transactionEnd(t2, true))).toBe('EAGAIN');
    expect(await a.read('/counter')).toBe('1');

    // Many concurrent increments through transaction(): none lost.
    const bump = (c: XenstoreClient) => c.transaction(async (tx) => {
      const v = Number(await tx.read('/counter'));
      await new Promise((r) => setTimeout(r, 1));
      await tx.write('/counter', String(v + 1));
    }, { maxRetries: 100 });
    await Promise.all([...Array(10)].map((_, i) => bump(i % 2 ? a : b)));
    expect(await a.read('/counter')).toBe('11');
  });

  it('transactions are isolated until commit, and an abort discards', async () => {
    const a = await dom0();
    await a.write('/iso', 'before');
    const t = await a.transactionStart();
    await a.ops(t).write('/iso', 'inside');
    await a.ops(t).write('/iso-new', 'x');
    expect(await a.read('/iso')).toBe('before');
    expect(await a.ops(t).read('/iso')).toBe('inside');
    await a.write('/unrelated', 'y'); // a commit touching nothing the transaction used: no conflict
    await a.transactionEnd(t, true);
    expect(await a.read('/iso')).toBe('inside');
    expect(await a.read('/iso-new')).toBe('x');

    const ts = await a.transactionStart();
    await a.write('/other', 'y');
    expect(await a.ops(ts).tryRead('/other')).toBeUndefined(); // snapshot taken at start
    expect(await errnoOf(a.transactionEnd(ts, true))).toBe('EAGAIN'); // it read a node changed since
    const t2 = await a.transactionStart();
    await a.ops(t2).write('/iso', 'aborted');
    await a.transactionEnd(t2, false);
    expect(await a.read('/iso')).toBe('inside');
    expect(await errnoOf(a.transactionEnd(t2, true))).toBe('ENOENT');

    await expect(a.transaction(async (tx) => { await tx.write('/iso', 'thrown'); throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await a.read('/iso')).toBe('inside');
    expect(srv.server.stats().transactions).toBe(0);
  });

  it('watches: immediate event, node and descendants, token routing, unwatch', async () => {
    const c = await dom0();
    const w1 = await c.watch('/w/a', 'tokA');
    const w2 = await c.watch('/w/b', 'tokB');
    expect(await nextEvent(w1)).toEqual({ path: '/w/a', token: 'tokA' });
    expect(await nextEvent(w2)).toEqual({ path: '/w/b', token: 'tokB' });
    await c.write('/w/a/deep/er', '1');
    expect(await nextEvent(w1)).toEqual({ path: '/w/a/deep/er', token: 'tokA' });
    await noEvent(w2);
    await c.write('/w/b', '2');
    expect(await nextEvent(w2)).toEqual({ path: '/w/b', token: 'tokB' });
    await c.rm('/w'); // recursive removal of a parent fires with the watch's own path
    expect(await nextEvent(w1)).toEqual({ path: '/w/a', token: 'tokA' });
    expect(await nextEvent(w2)).toEqual({ path: '/w/b', token: 'tokB' });
    await w1.unwatch();
    await c.write('/w/a', '3');
    expect(await pendingNext(w1)).toEqual({ value: undefined, done: true });
    expect(srv.server.stats().watches).toBe(1);
  });

  it('watches across domains: dom0 sees a guest write; a guest sees dom0 writes it may read, relative', async () => {
    const c = await dom0();
    await c.mkdir('/local/domain/4');
    await c.setPermissions('/local/domain/4', [{ domid: 4, perm: 'n' }]);
    const g = dom(4);
    const gw = await g.watch('device', 'g');
    expect(await nextEvent(gw)).toEqual({ path: 'device', token: 'g' });
    const hw = await c.watch('/local/domain/4/device', 'h');
    expect(await nextEvent(hw)).toEqual({ path: '/local/domain/4/device', token: 'h' });
    await g.write('device/vbd/51712/state', '1');
    expect(await nextEvent(hw)).toEqual({ path: '/local/domain/4/device/vbd/51712/state', token: 'h' });
    expect(await nextEvent(gw)).toEqual({ path: 'device/vbd/51712/state', token: 'g' });
    // dom0 writes a node the guest cannot read: no event for the guest
    await c.write('/local/domain/4/device/secret', 's'); // inherits the guest's ownership: readable
    expect(await nextEvent(gw)).toEqual({ path: 'device/secret', token: 'g' });
    await c.setPermissions('/local/domain/4/device/secret', [{ domid: 0, perm: 'n' }]);
    await noEvent(gw);
    await c.write('/local/domain/4/device/secret', 't');
    await noEvent(gw);
  });

  it('recursive rm fires a watch inside the removed tree by that node\'s permissions, not the top node\'s', async () => {
    // Regression: removing /local/domain/7 (unreadable to domain 1) never told
    // domain 1 that the frontend state node it watched (readable to it) was gone.
    const c = await dom0();
    await c.write('/local/domain/7/device/vbd/1/state', '4');
    await c.setPermissions('/local/domain/7', [{ domid: 7, perm: 'n' }]);
    await c.setPermissions('/local/domain/7/device/vbd/1', [{ domid: 7, perm: 'n' }, { domid: 1, perm: 'r' }]);
    await c.setPermissions('/local/domain/7/device/vbd/1/state', [{ domid: 7, perm: 'n' }, { domid: 1, perm: 'r' }]);
    await c.mkdir('/local/domain/7/private');
    await c.setPermissions('/local/domain/7/private', [{ domid: 7, perm: 'n' }]);
    const b = dom(1);
    const w = await b.watch('/local/domain/7/device/vbd/1/state', 's');
    expect(await nextEvent(w)).toEqual({ path: '/local/domain/7/device/vbd/1/state', token: 's' });
    const hidden = await b.watch('/local/domain/7/private', 'p');
    expect(await nextEvent(hidden)).toEqual({ path: '/local/domain/7/private', token: 'p' });
    await c.rm('/local/domain/7');
    expect(await nextEvent(w)).toEqual({ path: '/local/domain/7/device/vbd/1/state', token: 's' });
    await noEvent(hidden);
  });

  it('permission denials for an unprivileged domain', async () => {
    const c = await dom0();
    await c.write('/secret/key', 'k');
    const g = dom(9);
    expect(await errnoOf(g.read('/secret/key'))).toBe('EACCES');
    expect(await errnoOf(g.write('/secret/key', 'x'))).toBe('EACCES');
    expect(await errnoOf(g.write('/secret/new', 'x'))).toBe('EACCES');
    expect(await errnoOf(g.rm('/secret/key'))).toBe('EACCES');
    expect(await errnoOf(g.directory('/secret'))).toBe('EACCES');
    await c.setPermissions('/secret/key', [{ domid: 0, perm: 'n' }, { domid: 9, perm: 'r' }]);
    expect(await g.read('/secret/key')).toBe('k');
    expect(await errnoOf(g.write('/secret/key', 'x'))).toBe('EACCES');
    await c.setPermissions('/secret/key', [{ domid: 9, perm: 'n' }]); // now the guest owns it
    await g.write('/secret/key', 'mine');
    expect(await errnoOf(g.setPermissions('/secret/key', [{ domid: 8, perm: 'n' }]))).toBe('EPERM');
    expect(await errnoOf(g.ops(0).read('/secret'))).toBe('EACCES');
    expect(await c.read('/secret/key')).toBe('mine');
    // introduce/release are dom0 only
    expect(await errnoOf(g.request(8, 0, Buffer.from('5\x000\x001\0')))).toBe('EACCES');
  });

  it('path validation: illegal chars, trailing/double slash, over-long paths are EINVAL', async () => {
    const c = await dom0();
    for (const p of ['/a b', '/a/', '//a', '/a//b', '', '/ä', '@foo']) expect([p, await errnoOf(c.write(p, 'x'))]).toEqual([p, 'EINVAL']);
    expect(await errnoOf(c.read('/' + 'a'.repeat(3072)))).toBe('EINVAL');
    await c.write('/' + 'a'.repeat(3071), 'ok'); // 3072 bytes: allowed
  });

  it('quota: a domain cannot own more than nodesPerDomain nodes; watches per connection are bounded', async () => {
    await srv.stop();
    srv = await startServer({ quota: { nodesPerDomain: 5, watchesPerConnection: 3 } });
    const c = await dom0();
    await c.mkdir('/local/domain/6');
    await c.setPermissions('/local/domain/6', [{ domid: 6, perm: 'n' }]);
    const g = dom(6);
    for (let i = 0; i < 4; i++) await g.write(`k${i}`, 'v'); // domain node counts 1 + 4
    expect(await errnoOf(g.write('k4', 'v'))).toBe('ENOSPC');
    expect(await errnoOf(g.write('k0', 'x'.repeat(3000)))).toBe('ENOSPC'); // entry size
    for (let i = 0; i < 3; i++) await g.watch(`k${i}`);
    expect(await errnoOf(g.watch('k3'))).toBe('E2BIG');
  });

  it('large directories page through DIRECTORY_PART', async () => {
    const c = await dom0();
    const names = Array.from({ length: 400 }, (_, i) => `child-with-a-long-name-${String(i).padStart(4, '0')}`);
    await Promise.all(names.map((n) => c.mkdir(`/big/${n}`)));
    expect((await c.directory('/big')).sort()).toEqual(names);
  });

  it('releaseDomain drops the domain connection, its watches and transactions, and fires @releaseDomain', async () => {
    const c = await dom0();
    const rel = await c.watch('@releaseDomain', 'rel');
    const intro = await c.watch('@introduceDomain', 'intro');
    expect(await nextEvent(rel)).toEqual({ path: '@releaseDomain', token: 'rel' });
    expect(await nextEvent(intro)).toEqual({ path: '@introduceDomain', token: 'intro' });
    srv.server.introduceDomain(12);
    expect(await nextEvent(intro)).toEqual({ path: '@introduceDomain', token: 'intro' });
    expect(await c.isDomainIntroduced(12)).toBe(true);
    const g = dom(12);
    await g.watch('/', 'gw');
    await g.transactionStart();
    expect(srv.server.stats()).toMatchObject({ watches: 3, transactions: 1 });
    srv.server.releaseDomain(12);
    expect(await nextEvent(rel)).toEqual({ path: '@releaseDomain', token: 'rel' });
    expect(srv.server.stats()).toMatchObject({ watches: 2, transactions: 0 });
    await expect(g.read('/')).rejects.toBeInstanceOf(DisconnectedError);
    expect(await c.isDomainIntroduced(12)).toBe(false);
  });

  it('close rejects pending requests with DisconnectedError and ends watches', async () => {
    const c = await dom0();
    const w = await c.watch('/x', 't');
    const it = w[Symbol.asyncIterator]();
    await it.next(); // the immediate event
    const waiting = it.next();
    const reads = Array.from({ length: 20 }, () => c.read('/nothing').catch((e) => e));
    await c.close();
    for (const r of await Promise.all(reads)) expect(r).toBeInstanceOf(DisconnectedError);
    expect(await waiting).toEqual({ value: undefined, done: true });
    await expect(c.read('/')).rejects.toBeInstanceOf(DisconnectedError);
  });

  it('a payload over 4096 bytes is refused locally with E2BIG and the connection stays usable', async () => {
    const c = await dom0();
    expect(await errnoOf(c.write('/big', 'x'.repeat(4096)))).toBe('E2BIG');
    await c.write('/fine', 'x'.repeat(2000));
    expect((await c.read('/fine')).length).toBe(2000);
  });
});

describe('other transports', () => {
  it('MessagePort: a client on one port, the server attached to the other', async () => {
    const { port1, port2 } = new MessageChannel();
    const h = srv.server.attachPort(port1, 0);
    const c = connectMessagePort(port2);
    await c.write('/mp/x', 'via port');
    expect(await c.read('/mp/x')).toBe('via port');
    const w = await c.watch('/mp', 'mp');
    expect(await nextEvent(w)).toEqual({ path: '/mp', token: 'mp' });
    await c.close();
    h.close();
  });

  it('/dev/xen/xenbus absent: a clear UnsupportedError', async () => {
    await expect(openXenbusDevice('/nonexistent/xen/xenbus')).rejects.toBeInstanceOf(UnsupportedError);
    await expect(openXenbusDevice('/nonexistent/xen/xenbus')).rejects.toThrow(/not present/);
  });
});
