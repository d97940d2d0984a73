/**
 * Instances across processes, as a user sees them: `xenpv run` started in
 * other processes (the compiled CLI; npm test builds first) with a temporary
 * runtime folder, then `xenpv list`, `xenpv stop`, signals, and a run that
 * was SIGKILLed leaving its socket behind. The oracles are the processes'
 * own pids and exit statuses and the files in the runtime folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/xenpv.js');
const COUNTER = join(ROOT, 'dist/tools/jobs/counter.js');
const base = mkdtempSync(join(tmpdir(), 'xpj-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
function envFor(): NodeJS.ProcessEnv {
  const rt = join(base, `rt${n++}`);
  return { ...process.env, XDG_RUNTIME_DIR: rt, XENPV_COUNTER_INTERVAL_MS: '20' };
}
const rtDir = (env: NodeJS.ProcessEnv) => join(env['XDG_RUNTIME_DIR']!, 'xenpv');

interface Proc { child: ChildProcess; out: string; err: string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

function xenpv(args: string[], env: NodeJS.ProcessEnv): Proc {
  if (!existsSync(COUNTER)) throw new Error(`${COUNTER} missing: run 'npm run build' first (npm test does)`);
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '', exited: undefined as never };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { p.out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { p.err += d; });
  p.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return p;
}

async function finish(args: string[], env: NodeJS.ProcessEnv): Promise<Proc & { code: number | null }> {
  const p = xenpv(args, env);
  const { code } = await p.exited;
  return { ...p, code };
}

/** Resolves once the job's stderr says it is counting (it runs, its socket is up). */
async function running(p: Proc): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (p.err.includes('counting from')) { p.child.stderr!.off('data', check); resolve(); }
    };
    p.child.stderr!.on('data', check);
    p.exited.then(() => reject(new Error(`run exited early: ${p.err}`)));
    check();
  });
}

describe('xenpv run / list / stop across processes', () => {
  it('list shows each running instance (name, pid, devices, state, uptime); stop NAME stops it with exit 0', async () => {
    const env = envFor();
    const a = xenpv(['run', COUNTER, '--name', 'alpha', '--in-process'], env);
    const b = xenpv(['run', COUNTER, '--name', 'beta', '--in-process'], { ...env, XENPV_COUNTER_DEVICE: 'memory:2MiB' });
    await Promise.all([running(a), running(b)]);
    const list = await finish(['list', '--json'], env);
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.out) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.name, r.pid, r.state, r.devices])).toEqual([
      ['alpha', a.child.pid, 'running', { log: 'memory:1MiB' }],
      ['beta', b.child.pid, 'running', { log: 'memory:2MiB' }],
    ]);
    for (const r of rows) expect(r.uptimeMs).toBeGreaterThanOrEqual(0);
    const table = await finish(['list'], env);
    expect(table.out.split('\n')[0]).toMatch(/^NAME\s+PID\s+STATE\s+UPTIME\s+CHILD\s+DEVICES$/);
    expect(table.out).toContain(`alpha  ${a.child.pid}`);

    const stop = await finish(['stop', 'alpha', '--wait'], env);
    expect(stop.code).toBe(0);
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(a.err).toContain('alpha: requested, exit 0');
    expect(existsSync(join(rtDir(env), 'alpha.sock'))).toBe(false);
    const after = JSON.parse((await finish(['list', '--json'], env)).out) as Array<{ name: string }>;
    expect(after.map((r) => r.name)).toEqual(['beta']);

    b.child.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
    expect(readdirSync(rtDir(env))).toEqual([]);
  });

  it('SIGINT stops a run cleanly (exit 0) and removes its socket', async () => {
    const env = envFor();
    const a = xenpv(['run', COUNTER, '--in-process', '--json'], env);
    await running(a);
    expect(existsSync(join(rtDir(env), 'counter.sock'))).toBe(true);
    a.child.kill('SIGINT');
    expect((await a.exited).code).toBe(0);
    expect(JSON.parse(a.out)).toMatchObject({ name: 'counter', kind: 'requested', exit: 0 });
    expect(existsSync(join(rtDir(env), 'counter.sock'))).toBe(false);
  });

  it('a second run under a running name fails; list removes the socket a SIGKILLed run left, and stop of it says no instance', async () => {
    const env = envFor();
    const a = xenpv(['run', COUNTER, '--name', 'dup', '--in-process'], env);
    await running(a);
    const second = await finish(['run', COUNTER, '--name', 'dup', '--in-process'], env);
    expect(second.code).toBe(1);
    expect(second.err).toContain('an instance named dup is already running');
    a.child.kill('SIGKILL');
    await a.exited;
    expect(existsSync(join(rtDir(env), 'dup.sock'))).toBe(true); // left behind
    const list = await finish(['list', '--json'], env);
    expect(JSON.parse(list.out)).toEqual([]);
    expect(list.err).toContain(`removed stale socket ${join(rtDir(env), 'dup.sock')}`);
    expect(existsSync(join(rtDir(env), 'dup.sock'))).toBe(false);
    const stop = await finish(['stop', 'dup'], env);
    expect(stop.code).toBe(1);
    expect(stop.err).toContain('no instance named dup is running');
  });

  it('a job whose restarts run out exits 3; a device that cannot be opened exits 5; a bad module exits 2', async () => {
    const env = envFor();
    const full = await finish(['run', COUNTER, '--in-process', '--json'], { ...env, XENPV_COUNTER_DEVICE: 'memory:1KiB', XENPV_COUNTER_INTERVAL_MS: '1' });
    expect(full.code).toBe(3);
    expect(JSON.parse(full.out)).toMatchObject({ kind: 'crashed', restarts: 3, exit: 3 });
    expect(full.err).toContain('device full');
    const missing = await finish(['run', COUNTER, '--in-process'], { ...env, XENPV_COUNTER_DEVICE: `file:${join(base, 'no', 'such.img')}` });
    expect(missing.code).toBe(5);
    // The master's side too: a missing --backing file of a simulated xen: device is exit 5, before any child.
    const noBacking = await finish(['run', COUNTER, '--sim', '--backing', `log=file:${join(base, 'no', 'backing.img')}`], { ...env, XENPV_COUNTER_DEVICE: 'xen:xvdb' });
    expect(noBacking.code, noBacking.err).toBe(5);
    expect(noBacking.err).toMatch(/^xenpv run: device log \(backing file:.*ENOENT/m);
    const bad = await finish(['run', join(ROOT, 'dist/src/jobs/state.js'), '--in-process'], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('exports no job');
    expect((await finish(['run'], env)).code).toBe(2);
    // --sim in-process: the job's xen: device is blkfront in this process against a simulated blkback.
    const sim = await finish(['run', COUNTER, '--in-process', '--sim', '--json'], { ...env, XENPV_COUNTER_DEVICE: 'xen:xvdc', XENPV_COUNTER_LIMIT: '5', XENPV_COUNTER_INTERVAL_MS: '1' });
    expect(sim.code, sim.err).toBe(0);
    expect(JSON.parse(sim.out)).toMatchObject({ kind: 'completed', exit: 0 });
    expect((await finish(['stop'], env)).code).toBe(2);
  });

  it('run, list and stop share the command machinery: --help prints usage with the exit statuses (0), an unknown option is a usage error (2)', async () => {
    const env = envFor();
    const help = await finish(['run', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: xenpv run <job module>/);
    for (const flag of ['--name', '--sim', '--sim-size', '--backing', '--user', '--group', '--in-process', '--stop-timeout', '--json']) expect(help.out).toContain(flag);
    expect(help.out).toContain('7 the job child died');
    expect((await finish(['list', '--help'], env)).out).toMatch(/^usage: xenpv list/);
    expect((await finish(['stop', '--help'], env)).out).toContain('1 no such instance');
    for (const cmd of ['run', 'list', 'stop']) {
      const bogus = await finish([cmd, '--bogus'], env);
      expect(bogus.code, cmd).toBe(2);
      expect(bogus.err).toContain(`xenpv ${cmd}:`);
    }
    expect((await finish(['run', COUNTER, '--in-process', '--stop-timeout', '0'], env)).code).toBe(2);
    expect((await finish(['run', COUNTER, '--in-process', '--backing', 'nonsense'], env)).code).toBe(2);
    expect((await finish(['stop', 'bad/name'], env)).code).toBe(2);
  });
});
