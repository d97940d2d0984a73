/** `xenpv queue` as documented: format, push, pop on a file image; exit codes 0 / 1 / 2. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../bin/xenpv.js', import.meta.url));
const xenpv = (...args: string[]) => run(process.execPath, [CLI, 'queue', ...args]);
const fails = (...args: string[]) => xenpv(...args).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('xenpv queue', () => {
  it('formats, pushes and pops items in order, across invocations', async () => {
    const d = await mkdtemp(join(tmpdir(), 'xenpv-qcli-'));
    dirs.push(d);
    const spec = `file:${join(d, 'q.img')}`;
    expect((await xenpv('format', spec, '--data-sectors', '64')).stdout).toContain('32768 bytes of ring');
    await xenpv('push', spec, 'first', 'second item', 'third');
    expect((await xenpv('pop', spec)).stdout).toBe('first\n');
    expect((await xenpv('pop', spec, '--max', '5')).stdout).toBe('second item\nthird\n');
    expect((await xenpv('pop', spec)).stdout).toBe('');
    // A full queue is exit 1 with a message: 64 sectors hold fewer than 64 items of 500 bytes.
    const full = await fails('push', spec, ...Array.from({ length: 64 }, () => 'x'.repeat(500)));
    expect(full.code).toBe(1);
    expect(full.stderr).toContain('full');
  });

  it('a device without a queue is invalid-argument: exit 2, one line naming it (the convention of tools/command.ts)', async () => {
    const none = await fails('pop', 'memory:1MiB');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^xenpv queue pop: device: holds no queue \(.*\); format it first\n/);
    expect(none.stderr).not.toMatch(/\n\s+at /);
  });

  it('usage errors exit 2 before any device is opened', async () => {
    expect((await fails('frobnicate', 'memory:1MiB')).code).toBe(2);
    expect((await fails('pop')).code).toBe(2);
    expect((await fails('fill', 'memory:1MiB', '--start', 'x', '--count', '1')).code).toBe(2);
    const noCount = await fails('fill', 'memory:1MiB', '--start', '0');
    expect(noCount.code).toBe(2);
    expect(noCount.stderr).toContain('--count: is required');
    expect((await fails('bench', '--seconds', '0')).code).toBe(2);
    expect((await fails('pop', 'nosuchflavour:x')).code).toBe(2);
  });

  it('takes a plain path as file:PATH, as attach and dd do', async () => {
    const d = await mkdtemp(join(tmpdir(), 'xenpv-qcli-'));
    dirs.push(d);
    const path = join(d, 'plain.img');
    await xenpv('format', path, '--data-sectors', '64');
    await xenpv('push', path, 'one');
    expect((await xenpv('pop', `file:${path}`)).stdout).toBe('one\n');
  });

  it('xen: is understood (here: no Xen, exit 1 saying so), not an unregistered flavour', async () => {
    const r = await fails('pop', 'xen:xvdb');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no Xen here');
    expect(r.stderr).not.toContain('not registered');
  });
});
