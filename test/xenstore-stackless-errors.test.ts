/**
 * withoutStacks: XenstoreErrors made inside carry no stack frames (the
 * simulated xenstored's refusals, a client's XS_ERROR replies), and nothing
 * else changes: errno, code, message and class are those of any
 * XenstoreError; errors of other classes, and XenstoreErrors made outside,
 * keep their stacks; the stack limit is restored, even when `fn` throws.
 */
import { describe, expect, it } from 'vitest';
import { XenstoreError, withoutStacks } from '../src/xenstore/errors.js';
import { XenstoreServer } from '../src/xenstore/server/server.js';

const frames = (e: Error): number => (e.stack ?? '').split('\n').filter((l) => l.trimStart().startsWith('at ')).length;

describe('xenstore errors without stacks', () => {
  it('keeps errno, code, message and class; drops only the frames', () => {
    const inside = withoutStacks(() => new XenstoreError('ENOENT', '/a'));
    const outside = new XenstoreError('ENOENT', '/a');
    expect(inside).toBeInstanceOf(XenstoreError);
    expect([inside.errno, inside.code, inside.message, inside.name]).toEqual([outside.errno, outside.code, outside.message, outside.name]);
    expect(frames(inside)).toBe(0);
    expect(frames(outside)).toBeGreaterThan(0);
  });

  it('leaves other errors their stacks and restores the limit when fn throws', () => {
    const limit = Error.stackTraceLimit;
    const bug = withoutStacks(() => new TypeError('a bug'));
    expect(frames(bug)).toBeGreaterThan(0);
    expect(() => withoutStacks(() => { throw new XenstoreError('EINVAL'); })).toThrow(XenstoreError);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(frames(new XenstoreError('EINVAL'))).toBeGreaterThan(0);
  });

  it('a refused request still rejects with the errno xenstored sent', async () => {
    const srv = new XenstoreServer();
    const c = srv.connect(5);
    await expect(c.read('/nope')).rejects.toMatchObject({ errno: 'ENOENT', code: 'xenstore', message: 'ENOENT: XS_READ "/nope" failed' });
    await expect(c.write('/local/domain/0/x', '1')).rejects.toMatchObject({ errno: 'EACCES' });
    await c.close();
    await srv.close();
  });
});
