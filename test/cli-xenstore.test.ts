/**
 * `xenpv xenstore ls|read|write|rm|watch` against our simulated xenstored,
 * checked against Xen's own xenstore-utils on the same server: the same
 * tree prints the same bytes, values written by one are read by the other.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenstoreServer } from '../src/xenstore/server/server.js';
import { runCli } from './support/cli.js';

const run = promisify(execFile);
let server: XenstoreServer;
let sock: string;
let env: NodeJS.ProcessEnv;

/** Xen's tool `name` (xenstore-utils) on our server. */
async function xen(name: string, args: string[]): Promise<string> {
  const bin = `/usr/bin/${name}`;
  if (!existsSync(bin)) throw new Error(`${bin} missing: apt-get install xenstore-utils (tools/install-system-deps.sh)`);
  return (await run(bin, args, { env, encoding: 'latin1' })).stdout;
}

beforeAll(async () => {
  sock = join(mkdtempSync(join(tmpdir(), 'xenpv-xs-cli-')), 'socket');
  server = new XenstoreServer();
  await server.listen(sock);
  env = { ...process.env, XENSTORED_PATH: sock };
  // A tree with everything the quoting and the 80-column cut must handle.
  await xen('xenstore-write', [
    '/t/a', 'hello', '/t/tab', 'x\ty', '/t/empty/child', '', '/t/bin', '\\001\\x7fq\\\\', '/t/local/domain/0/name', 'Domain-0',
    `/t/${'n'.repeat(70)}`, 'v'.repeat(90), '/t/mid', 'w'.repeat(60),
  ]);
});
afterAll(async () => { await server?.close(); });

describe('xenpv xenstore, checked against xenstore-utils', () => {
  it.each([[[]], [['-f']], [['-p']], [['-f', '-p']]])('ls %j prints what xenstore-ls prints', async (flags) => {
    const want = await xen('xenstore-ls', [...flags, '/t']);
    const r = await runCli(['xenstore', 'ls', ...flags, '/t', '--socket', sock]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(want);
  });

  it('ls with no path lists / and finds the socket through $XENSTORED_PATH, as Xen\'s tools do', async () => {
    const r = await runCli(['xenstore', 'ls'], { env: { XENSTORED_PATH: sock } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(await xen('xenstore-ls', []));
  });

  it('read quotes values as xenstore-read does (one key, several, -p, -R)', async () => {
    const keys = ['/t/a', '/t/tab', '/t/bin'];
    for (const flags of [[], ['-p'], ['-R']]) {
      const r = await runCli(['xenstore', 'read', ...flags, ...keys, '--socket', sock]);
      expect(r.code, r.stderr).toBe(0);
      expect(Buffer.from(r.stdout, 'utf8').toString('latin1')).toBe(await xen('xenstore-read', [...flags, ...keys]));
    }
  });

  it('read of a missing key fails with exit 1 naming the path, as xenstore-read does', async () => {
    const r = await runCli(['xenstore', 'read', '/t/nope', '--socket', sock]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('could not read path /t/nope');
    await expect(xen('xenstore-read', ['/t/nope'])).rejects.toMatchObject({ code: 1 });
  });

  it('write decodes escapes like xenstore-write; Xen\'s xenstore-read reads back what we wrote', async () => {
    const r = await runCli(['xenstore', 'write', '/w/one', 'a\\tb', '/w/two', 'plain', '--socket', sock]);
    expect(r.code, r.stderr).toBe(0);
    expect(await xen('xenstore-read', ['/w/one', '/w/two'])).toBe('a\\tb\nplain\n');
    await xen('xenstore-write', ['/w/ref', 'a\\tb']);
    expect(await xen('xenstore-read', ['-R', '/w/ref'])).toBe(await xen('xenstore-read', ['-R', '/w/one']));
    expect((await runCli(['xenstore', 'write', '/w/odd', '--socket', sock])).code).toBe(2);
  });

  it('rm removes a subtree; -t also removes the parents it left empty (checked with xenstore-exists)', async () => {
    await xen('xenstore-write', ['/r/p/q/leaf', '1', '/r/keep', '2']);
    const r = await runCli(['xenstore', 'rm', '-t', '/r/p/q/leaf', '--socket', sock]);
    expect(r.code, r.stderr).toBe(0);
    await expect(xen('xenstore-exists', ['/r/p'])).rejects.toMatchObject({ code: 1 });
    expect(await xen('xenstore-read', ['/r/keep'])).toBe('2\n');
    expect((await runCli(['xenstore', 'rm', '/r', '--socket', sock])).code).toBe(0);
    await expect(xen('xenstore-exists', ['/r/keep'])).rejects.toMatchObject({ code: 1 });
  });

  it('watch prints the path of each event (the initial one, then a write by xenstore-write) and stops after -n', async () => {
    let wrote = false;
    const r = await runCli(['xenstore', 'watch', '-n', '2', '/wt', '--socket', sock], {
      timeoutMs: 20_000,
      onStdout: (all) => {
        if (!wrote && all.includes('/wt\n')) {
          wrote = true;
          void xen('xenstore-write', ['/wt/k', 'v']);
        }
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('/wt\n/wt/k\n');
    // Every watch was removed when the command ended.
    expect(server.stats().watches).toBe(0);
  });

  it('an unreachable socket is a clear failure naming it; an unknown subcommand is usage', async () => {
    const r = await runCli(['xenstore', 'ls', '--socket', '/nonexistent/xs.sock']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/xs.sock');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await runCli(['xenstore', 'frob'])).code).toBe(2);
  });

  it('ls --json gives paths and values', async () => {
    const r = await runCli(['xenstore', 'ls', '/t/local', '--json', '--socket', sock]);
    expect(JSON.parse(r.stdout)).toEqual([
      { path: '/t/local/domain', value: '' },
      { path: '/t/local/domain/0', value: '' },
      { path: '/t/local/domain/0/name', value: 'Domain-0' },
    ]);
  });
});
