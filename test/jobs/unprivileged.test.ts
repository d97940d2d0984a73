/**
 * The privileged master and its unprivileged job child, for real: this test
 * runs as root, the child as nobody/nogroup. The oracles are the kernel's
 * own view (the child's /proc/self/status: Uid, Gid, Groups, CapEff,
 * CapPrm; the errno of its own open of a root-only file), the bytes found
 * in that root-only file afterwards, and the simulation's counters after
 * the child is SIGKILLed (domain state, grant mappings, xenstored
 * connections and watches, the event-channel link).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobExit } from '../../src/jobs/exit.js';
import { describeJob, runMaster, type MasterInfo } from '../../src/jobs/master.js';
import { DomainState } from '../../src/platform/sim/hypervisor.js';
import '../../src/blkfront/flavour.js';

const NOBODY = 65534;
const NOGROUP = 65534;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('this test drops privileges for real and must run as root (CI runs as root; locally: sudo npx vitest run test/jobs/unprivileged.test.ts)');
  }
}

let dir: string;
/** The probe job (world-readable in the checkout, so the child can import it). */
const modulePath = fileURLToPath(new URL('../fixtures/jobs/probe-job.mjs', import.meta.url));

beforeAll(() => {
  requireRoot();
  dir = mkdtempSync(join(tmpdir(), 'xenpv-unpriv-'));
  chmodSync(dir, 0o755); // the child must be able to read the modules written here
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

function rootOnlyFile(name: string, bytes = 1 << 20): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(bytes), { mode: 0o600 });
  chmodSync(p, 0o600);
  return p;
}

function recordIn(path: string): Record<string, string> & { opens: Record<string, string> } {
  const bytes = readFileSync(path).subarray(8 * 512, 8 * 512 + 4096);
  return JSON.parse(bytes.subarray(0, bytes.indexOf(10)).toString('utf8'));
}

/** The probe's declarations, read as the master reads them: by an unprivileged child (XENPV_* passed on). */
async function probeJob(env: Record<string, string>) {
  Object.assign(process.env, env);
  return describeJob(modulePath, NOBODY, NOGROUP);
}

/** The kernel's record of a process without root: ids 65534, no groups, no capabilities. */
function expectUnprivileged(rec: Record<string, string>): void {
  expect(rec.uid!.split(/\s+/)).toEqual([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
  expect(rec.gid!.split(/\s+/)).toEqual([String(NOGROUP), String(NOGROUP), String(NOGROUP), String(NOGROUP)]);
  expect(rec.groups ?? '').toBe('');
  expect(rec.capEff).toBe('0000000000000000');
  expect(rec.capPrm).toBe('0000000000000000');
}

describe('privileged master, unprivileged job child', () => {
  it('file: the child runs as nobody without capabilities, cannot open the root-only file, yet does I/O on the descriptor the master passed', async () => {
    const secret = rootOnlyFile('secret.img');
    const job = await probeJob({ XENPV_PROBE_DEVICE: `file:${secret}`, XENPV_PROBE_PATHS: secret, XENPV_PROBE_MODE: 'done' });
    const r = await runMaster({ name: 'probe-file', modulePath, job, uid: NOBODY, gid: NOGROUP, signals: false });
    expect(r.exit).toBe(JobExit.Ok);
    expect(r.reported?.kind).toBe('completed');
    const rec = recordIn(secret);
    expectUnprivileged(rec);
    expect(rec.opens).toEqual({ [secret]: 'EACCES' });
  });

  it('xen: on the simulation the child is a domain of its own; its I/O reaches the root-only backing file through blkback, and the proxy refused nothing it needed', async () => {
    const secret = rootOnlyFile('xen-backing.img');
    const job = await probeJob({ XENPV_PROBE_DEVICE: 'xen:xvdb', XENPV_PROBE_PATHS: secret, XENPV_PROBE_MODE: 'done' });
    let info: MasterInfo | undefined;
    const logs: string[] = [];
    const r = await runMaster({
      name: 'probe-xen', modulePath, job, uid: NOBODY, gid: NOGROUP, signals: false,
      sim: { backing: () => `file:${secret}` }, log: (l) => logs.push(l),
      onChild: (_c, i) => { info = i; },
    });
    expect(r.exit, logs.join('\n')).toBe(JobExit.Ok);
    expect(info?.domid).toBeGreaterThanOrEqual(2);
    expect(info?.proxy?.refused).toBe(0);
    const rec = recordIn(secret);
    expectUnprivileged(rec);
    expect(rec.opens).toEqual({ [secret]: 'EACCES' });
  });

  it("a SIGKILLed child's domain, grant mappings, xenstore connection and watches, and event-channel link are released by the master", async () => {
    const secret = rootOnlyFile('killed.img');
    const job = await probeJob({ XENPV_PROBE_DEVICE: 'xen:xvdb', XENPV_PROBE_PATHS: secret, XENPV_PROBE_MODE: 'hold' });
    let before: { mappings: number; childConns: number; watches: number } | undefined;
    let after: { mappings: number; childConns: number; watches: number; domain: DomainState; linkUp: boolean; ports: number } | undefined;
    const count = (i: MasterInfo) => ({
      mappings: i.sim!.backend.grants.activeMappings(),
      childConns: [...i.sim!.xenstored.core.connections].filter((c) => c.domid === i.domid).length,
      watches: i.sim!.xenstored.stats().watches,
    });
    const r = await runMaster({
      name: 'probe-kill', modulePath, job, uid: NOBODY, gid: NOGROUP, signals: false,
      sim: { backing: () => `file:${secret}` },
      onChild: (child, i) => {
        // Running: the probe's start() has written, flushed and read back through blkfront.
        child.on('message', (m: { type?: string; state?: string }) => {
          if (m.type !== 'state' || m.state !== 'running') return;
          before = count(i);
          child.kill('SIGKILL');
        });
      },
      onReleased: (i) => {
        after = {
          ...count(i),
          domain: i.sim!.hypervisor.domainState(i.domid!),
          linkUp: i.link!.connected,
          ports: i.link!.openPorts().length,
        };
      },
    });
    expect(r.signal).toBe('SIGKILL');
    expect(r.exit).toBe(JobExit.ChildDied);
    expect(before!.mappings).toBeGreaterThan(0);
    // The proxy's connection, and the one the hypervisor opened for the domain it created.
    expect(before!.childConns).toBe(2);
    expect(before!.watches).toBeGreaterThan(0);
    expect(after).toEqual({ mappings: 0, childConns: 0, watches: expect.any(Number), domain: DomainState.Nonexistent, linkUp: false, ports: 0 });
    expect(after!.watches).toBeLessThan(before!.watches);
    expectUnprivileged(recordIn(secret));
  });
});

describe('xenpv run as root (CLI)', () => {
  it('runs the counter job as nobody on a simulated xen: device backed by a root-only file; list shows the child; stop NAME stops it (exit 0)', async () => {
    requireRoot();
    const { spawn } = await import('node:child_process');
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const secret = rootOnlyFile('counter.img');
    const env = { ...process.env, XDG_RUNTIME_DIR: join(dir, 'rt'), XENPV_COUNTER_DEVICE: 'xen:xvdb', XENPV_COUNTER_INTERVAL_MS: '20', XENPV_COUNTER_FLUSH_EVERY: '3' };
    const cli = (args: string[]) => {
      const c = spawn(process.execPath, [join(root, 'bin/xenpv.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const r = { c, out: '', err: '', code: new Promise<number | null>((res) => c.once('close', (code) => res(code))) };
      c.stdout.setEncoding('utf8').on('data', (d: string) => { r.out += d; });
      c.stderr.setEncoding('utf8').on('data', (d: string) => { r.err += d; });
      return r;
    };
    const run = cli(['run', join(root, 'dist/tools/jobs/counter.js'), '--sim', '--backing', `log=file:${secret}`]);
    await new Promise<void>((resolve, reject) => {
      const check = (): void => { if (run.err.includes('counting from')) { run.c.stderr.off('data', check); resolve(); } };
      run.c.stderr.on('data', check);
      void run.code.then(() => reject(new Error(`run exited: ${run.err}`)));
    });
    const list = cli(['list', '--json']);
    expect(await list.code).toBe(0);
    const [row, ...rest] = JSON.parse(list.out) as Array<{ name: string; pid: number; state: string; child: { pid: number; uid: number; gid: number } }>;
    expect(rest).toEqual([]);
    expect(row).toMatchObject({ name: 'counter', pid: run.c.pid, state: 'running', child: { uid: NOBODY, gid: NOGROUP } });
    expect(row!.child.pid).not.toBe(run.c.pid);
    const status = readFileSync(`/proc/${row!.child.pid}/status`, 'utf8');
    expect(status).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(status).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
    const stop = cli(['stop', 'counter', '--wait']);
    expect(await stop.code).toBe(0);
    expect(await run.code, run.err).toBe(0);
    expect(run.err).toContain('counter: requested, exit 0');
    const head = readFileSync(secret).subarray(0, 12);
    expect(head.subarray(0, 8).toString('latin1')).toBe('XPVCOUNT');
    const count = head.readUInt32LE(8);
    expect(count).toBeGreaterThan(0);
    // Every record the header counts is on the disk, in order.
    const disk = readFileSync(secret);
    for (let i = 0; i < count; i++) expect(disk.subarray((1 + i) * 512, (1 + i) * 512 + 20).toString('latin1')).toMatch(new RegExp(`^count=${i} at=`));
  });
});

describe('describeJob', () => {
  it("reads a module's declarations in an unprivileged child: its top-level code never runs as root", async () => {
    requireRoot();
    const { describeJob } = await import('../../src/jobs/master.js');
    const p = join(dir, 'whoami-job.mjs');
    // The module declares a different device depending on who evaluates it.
    writeFileSync(p, "export default { name: 'whoami', devices: { d: process.getuid() === 0 ? 'memory:1MiB' : 'memory:' + (process.getuid() + 1) + 'KiB' }, start() {} };\n", { mode: 0o644 });
    const decl = await describeJob(p, NOBODY, NOGROUP);
    expect(decl.name).toBe('whoami');
    expect(decl.devices).toEqual({ d: `memory:${NOBODY + 1}KiB` });
    const bad = join(dir, 'not-a-job.mjs');
    writeFileSync(bad, 'export const x = 1;\n', { mode: 0o644 });
    await expect(describeJob(bad, NOBODY, NOGROUP)).rejects.toMatchObject({ code: 'job', reason: 'bad-module' });
    const secretModule = join(dir, 'secret-job.mjs');
    writeFileSync(secretModule, "export default { devices: {}, start() {} };\n", { mode: 0o600 });
    await expect(describeJob(secretModule, NOBODY, NOGROUP)).rejects.toMatchObject({ reason: 'bad-module', message: expect.stringContaining('EACCES') });
  });
});
