/**
 * XenstoreServer checkpoint / changedSince / restore: the reset hook the
 * fuzzers use to reuse one xenstored across cases. The oracle is the store
 * as read back through a client, against what was written.
 */
import { describe, expect, it } from 'vitest';
import { XenstoreError } from '../src/xenstore/errors.js';
import { XenstoreServer } from '../src/xenstore/server/server.js';

describe('xenstored checkpoints', () => {
  it('lists what changed since a checkpoint (tops of new and removed subtrees, changed values and perms) and restores it', async () => {
    const s = new XenstoreServer();
    const c = s.connect(0);
    await c.write('/a/b', '1');
    await c.write('/a/c', '2');
    await c.write('/keep', 'k');
    const cp = s.checkpoint();
    expect(s.changedSince(cp)).toEqual([]);
    await c.write('/a/b', '1'); // same value again: not a change
    await c.write('/a/c', 'changed');
    await c.write('/new/deep/node', 'x');
    await c.rm('/keep');
    await c.setPermissions('/a/b', [{ domid: 0, perm: 'r' }]);
    expect(s.changedSince(cp).sort()).toEqual(['/a/b', '/a/c', '/keep', '/new']);
    s.restore(cp);
    expect(s.changedSince(cp)).toEqual([]);
    expect(await c.read('/a/c')).toBe('2');
    expect(await c.read('/keep')).toBe('k');
    expect(await c.tryRead('/new/deep/node')).toBeUndefined();
    expect((await c.getPermissions('/a/b'))[0]!.perm).toBe('n');
    expect(s.stats().nodes).toBe(5); // /, /a, /a/b, /a/c, /keep
    await s.close();
  });

  it('a restored store hands out what it would have (transaction ids) and can be restored again', async () => {
    const s = new XenstoreServer();
    const c = s.connect(0);
    const cp = s.checkpoint();
    const first = await c.transaction(async (tx) => { await tx.write('/t', '1'); return 'done'; });
    expect(first).toBe('done');
    s.restore(cp);
    expect(await c.tryRead('/t')).toBeUndefined();
    await c.write('/u', '1');
    s.restore(cp);
    expect(await c.tryRead('/u')).toBeUndefined();
    await s.close();
  });

  it('refuses to restore while a watch is open (it would outlive its tree)', async () => {
    const s = new XenstoreServer();
    const c = s.connect(0);
    const cp = s.checkpoint();
    const w = await c.watch('/x');
    expect(() => s.restore(cp)).toThrow(XenstoreError);
    expect(() => s.restore(cp)).toThrow(/1 watch/);
    await w.unwatch();
    s.restore(cp);
    await s.close();
  });
});
