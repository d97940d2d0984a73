/**
 * Conformance with Xen's own clients: Debian's xenstore-utils (libxenstore,
 * which honours $XENSTORED_PATH) and Python's pyxs drive our xenstored on a
 * temporary socket; results are checked against docs/misc/xenstore.txt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { startServer, type RunningServer } from './xenstore-helpers.js';

const run = promisify(execFile);
const TOOLS = ['write', 'read', 'ls', 'list', 'exists', 'rm', 'chmod', 'watch'].map((t) => `/usr/bin/xenstore-${t}`);
const PY = '/usr/bin/python3';

function requireTools(): void {
  const missing = TOOLS.filter((t) => !existsSync(t));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: apt-get install xenstore-utils python3-pyxs (or tools/install-system-deps.sh)`);
}

let srv: RunningServer;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  srv = await startServer();
  env = { ...process.env, XENSTORED_PATH: srv.path };
});
afterAll(async () => { await srv.stop(); });

async function xs(tool: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  requireTools();
  try {
    const r = await run(`/usr/bin/xenstore-${tool}`, args, { env, timeout: 10_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('xenstore-utils against our xenstored', () => {
  it('write then read returns the value; WRITE creates missing parents with empty values', async () => {
    expect((await xs('write', '/conf/a/b', 'hello', '/conf/a/c', 'world')).code).toBe(0);
    expect((await xs('read', '/conf/a/b')).stdout).toBe('hello\n');
    expect((await xs('read', '/conf/a')).stdout).toBe('\n');
  });

  it('list gives the immediate children; ls the tree with values', async () => {
    await xs('write', '/conf/l/x', '1', '/conf/l/y', '2', '/conf/l/y/z', '3');
    expect((await xs('list', '/conf/l')).stdout.split('\n').filter(Boolean).sort()).toEqual(['x', 'y']);
    const ls = (await xs('ls', '/conf/l')).stdout;
    expect(ls).toContain('x = "1"');
    expect(ls).toMatch(/y = "2"\n z = "3"/);
  });

  it('exists: 0 for a node, non-zero for a missing one', async () => {
    await xs('write', '/conf/e', '');
    expect((await xs('exists', '/conf/e')).code).toBe(0);
    expect((await xs('exists', '/conf/nope')).code).not.toBe(0);
  });

  it('read of a missing node fails', async () => {
    const r = await xs('read', '/conf/missing');
    expect(r.code).not.toBe(0);
  });

  it('rm deletes the node and all its children', async () => {
    await xs('write', '/conf/r/a/b', '1');
    expect((await xs('rm', '/conf/r/a')).code).toBe(0);
    expect((await xs('exists', '/conf/r/a/b')).code).not.toBe(0);
    expect((await xs('exists', '/conf/r')).code).toBe(0);
  });

  it('chmod sets permissions; ls -p shows them, and our client reads the same list', async () => {
    await xs('write', '/conf/p', 'v');
    expect((await xs('chmod', '/conf/p', 'r5', 'b7', 'n3')).code).toBe(0);
    expect((await xs('ls', '-p', '/conf')).stdout).toMatch(/p = "v".*\(r5,b7,n3\)/);
    const c = srv.server.connect(0);
    expect(await c.getPermissions('/conf/p')).toEqual([{ domid: 5, perm: 'r' }, { domid: 7, perm: 'b' }, { domid: 3, perm: 'n' }]);
    await c.close();
  });

  it('watch: the immediate event on registration, then one per change under the path', async () => {
    requireTools();
    await xs('write', '/conf/w', '');
    const child = spawn('/usr/bin/xenstore-watch', ['-n', '3', '/conf/w'], { env });
    let out = '';
    const lines = () => out.split('\n').filter(Boolean);
    child.stdout.on('data', (d) => { out += d; });
    const exited = new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
    const until = async (n: number) => {
      const t0 = Date.now();
      while (lines().length < n) {
        if (Date.now() - t0 > 5000) throw new Error(`xenstore-watch printed only ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(1);
    expect(lines()[0]).toBe('/conf/w');
    await xs('write', '/conf/w/child', 'x');
    await until(2);
    await xs('write', '/conf/unrelated', 'x'); // outside the watch: no event
    await xs('rm', '/conf/w');
    expect(await exited).toBe(0);
    expect(lines()).toEqual(['/conf/w', '/conf/w/child', '/conf/w']);
  });
});

describe('pyxs against our xenstored', () => {
  async function py(script: string): Promise<string> {
    requireTools();
    if (!existsSync(PY)) throw new Error(`${PY} missing: apt-get install python3 python3-pyxs`);
    try {
      return (await run(PY, ['-c', script], { env, timeout: 20_000 })).stdout;
    } catch (e) {
      const err = e as { stderr?: string };
      if (err.stderr?.includes("No module named 'pyxs'")) throw new Error('pyxs missing: apt-get install python3-pyxs');
      throw new Error(`pyxs script failed: ${err.stderr ?? e}`);
    }
  }

  it('transactions: commit applies, rollback discards, conflicting commit returns False (EAGAIN)', async () => {
    const out = await py(`
from pyxs import Client
with Client(unix_socket_path=${JSON.stringify(srv.path)}) as a, Client(unix_socket_path=${JSON.stringify(srv.path)}) as b:
    a[b"/py/t"] = b"0"
    a.transaction(); a[b"/py/t"] = b"1"; print("commit", a.commit())
    print("after", a[b"/py/t"].decode())
    a.transaction(); a[b"/py/t"] = b"2"; a.rollback()
    print("rolled", a[b"/py/t"].decode())
    a.transaction(); b.transaction()
    a[b"/py/t"] = b"a" + a[b"/py/t"]; b[b"/py/t"] = b"b" + b[b"/py/t"]
    print("first", a.commit()); print("second", b.commit())
    print("final", a[b"/py/t"].decode())
    print("list", sorted(x.decode() for x in a.list(b"/py")))
    print("perms", [p.decode() for p in a.get_perms(b"/py/t")])
    print("dompath", a.get_domain_path(7).decode())
`);
    expect(out.split('\n').filter(Boolean)).toEqual([
      'commit True', 'after 1', 'rolled 1', 'first True', 'second False', 'final a1', "list ['t']", "perms ['n0']",
      'dompath /local/domain/7',
    ]);
  });

  it('watches: immediate event then events for writes below the path, routed by token', async () => {
    const out = await py(`
from pyxs import Client
with Client(unix_socket_path=${JSON.stringify(srv.path)}) as c:
    m = c.monitor()
    m.watch(b"/py/w", b"tok1")
    m.watch(b"/py/v", b"tok2")
    ev = m.wait()
    seen = [next(ev), next(ev)]
    c[b"/py/w/x"] = b"1"
    c[b"/py/v"] = b"2"
    seen += [next(ev), next(ev)]
    for p, t in sorted(seen): print(p.decode(), t.decode())
    m.unwatch(b"/py/w", b"tok1")
    m.unwatch(b"/py/v", b"tok2")
`);
    expect(out.split('\n').filter(Boolean)).toEqual(['/py/v tok2', '/py/v tok2', '/py/w tok1', '/py/w/x tok1']);
  });
});
