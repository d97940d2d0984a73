/**
 * A job child that dies (SIGKILL) while its job runs is respawned by the
 * master as the job's restart policy says, on the simulation: the counter
 * job (on-failure, maxRetries 3, backoffMs 200) on a simulated xen: device
 * backed by a root-only file. The oracles are the kernel's pids and signals,
 * the counter's header in the backing file (read here with node:fs, not
 * through xenpv), and the clock for the backoff's lower bounds.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobExit } from '../../src/jobs/exit.js';
import { restartDelay } from '../../src/jobs/job.js';
import { describeJob, runMaster } from '../../src/jobs/master.js';
import { listInstances } from '../../src/jobs/instances.js';

const NOBODY = 65534;
const NOGROUP = 65534;
const COUNTER = fileURLToPath(new URL('../../dist/tools/jobs/counter.js', import.meta.url));

let dir: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) {
    throw new Error('this test drops privileges for real and must run as root (CI runs as root; locally: sudo npx vitest run test/jobs/respawn.test.ts)');
  }
  dir = mkdtempSync(join(tmpdir(), 'xenpv-respawn-'));
  chmodSync(dir, 0o755);
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

/** The counter's header count, straight from the backing file (0 before its first record). */
function countIn(file: string): number {
  const head = readFileSync(file).subarray(0, 12);
  return head.subarray(0, 8).toString('latin1') === 'XPVCOUNT' ? head.readUInt32LE(8) : 0;
}

/** Resolves once `f()` holds; the condition is outside this process (a child's writes), so it is polled, bounded. */
async function until(what: string, f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function counterEnv(): void {
  Object.assign(process.env, { XENPV_COUNTER_DEVICE: 'xen:xvdb', XENPV_COUNTER_INTERVAL_MS: '10', XENPV_COUNTER_FLUSH_EVERY: '1' });
  delete process.env['XENPV_COUNTER_LIMIT'];
}

function rootOnlyFile(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(1 << 20), { mode: 0o600 });
  chmodSync(p, 0o600);
  return p;
}

describe('the master respawns a job child that dies', () => {
  it('kill -9 of a running child: respawned after the policy backoff, counting resumes where it was, and the 4th death (3 restarts used) ends with exit 7 and a JobError child', async () => {
    counterEnv();
    const backing = rootOnlyFile('respawn.img');
    const job = await describeJob(COUNTER, NOBODY, NOGROUP);
    expect(job.restart).toEqual({ policy: 'on-failure', maxRetries: 3, backoffMs: 200 });
    const children: Array<{ pid: number; spawnedAt: number; firstCount: number; killedAt?: number; countAtKill?: number }> = [];
    let failure: unknown;
    const killWhenCounting = async (child: ChildProcess, entry: (typeof children)[number]): Promise<void> => {
      try {
        // I/O through this child: the header moves past where the child found it.
        await until(`child ${child.pid} to write records`, () => countIn(backing) >= entry.firstCount + 3);
        entry.countAtKill = countIn(backing);
        entry.killedAt = Date.now();
        child.kill('SIGKILL');
      } catch (err) {
        failure = err;
        child.kill('SIGKILL');
      }
    };
    const r = await runMaster({
      name: 'respawn', modulePath: COUNTER, job, uid: NOBODY, gid: NOGROUP, signals: false,
      sim: { backing: () => `file:${backing}` },
      onChild: (child) => {
        const entry = { pid: child.pid!, spawnedAt: Date.now(), firstCount: countIn(backing) };
        children.push(entry);
        child.on('message', (m: { type?: string; state?: string }) => {
          if (m.type === 'state' && m.state === 'running') void killWhenCounting(child, entry);
        });
      },
    });
    if (failure) throw failure;
    expect(r.exit).toBe(JobExit.ChildDied);
    expect(r.signal).toBe('SIGKILL');
    expect(r.error).toMatchObject({ code: 'job', reason: 'child' });
    expect(r.error!.message).toContain('after 3 restart(s)');
    expect(r.respawns).toBe(3);
    expect(r.restarts).toBe(3);
    expect(children).toHaveLength(4);
    expect(new Set(children.map((c) => c.pid)).size).toBe(4);
    for (let i = 1; i < children.length; i++) {
      const prev = children[i - 1]!;
      const cur = children[i]!;
      // Counting resumed on the same disk: the new child found at least what the dead one had written.
      expect(cur.firstCount).toBeGreaterThanOrEqual(prev.countAtKill!);
      // Not before the policy's delay for restart i (200, 400, 800 ms).
      expect(cur.spawnedAt - prev.killedAt!).toBeGreaterThanOrEqual(restartDelay(job.restart!, i)!);
    }
    expect(countIn(backing)).toBeGreaterThanOrEqual(children[3]!.countAtKill!);
  });

  it('a stop asked while the master waits to respawn (list shows backoff) ends the job with exit 0 at once, and no further child runs', async () => {
    // A job whose single restart comes after a minute: the stop must cut the wait short.
    const module = join(dir, 'long-backoff-job.mjs');
    writeFileSync(module, "export default { devices: { d: 'memory:64KiB' }, restart: { policy: 'on-failure', maxRetries: 1, backoffMs: 60000 }, start() {} };\n", { mode: 0o644 });
    const job = await describeJob(module, NOBODY, NOGROUP);
    const runtime = join(dir, 'rt');
    const stop = new AbortController();
    let spawned = 0;
    let failure: unknown;
    const stopInBackoff = async (): Promise<void> => {
      try {
        const end = Date.now() + 30_000;
        while ((await listInstances(runtime)).instances[0]?.state !== 'backoff') {
          if (Date.now() > end) throw new Error('list never showed backoff');
          await new Promise((r) => setTimeout(r, 10));
        }
      } catch (err) {
        failure = err;
      }
      stop.abort();
    };
    const t0 = Date.now();
    const r = await runMaster({
      name: 'respawn-stop', modulePath: module, job, uid: NOBODY, gid: NOGROUP, signals: false, signal: stop.signal, runtimeDir: runtime,
      onChild: (child) => {
        spawned++;
        child.on('message', (m: { type?: string; state?: string }) => {
          if (m.type === 'state' && m.state === 'running') { child.kill('SIGKILL'); void stopInBackoff(); }
        });
      },
    });
    if (failure) throw failure;
    expect(r.exit).toBe(JobExit.Ok);
    expect(r.error).toBeUndefined();
    expect(spawned).toBe(1);
    expect(r.respawns).toBe(0);
    expect(r.restarts).toBe(1);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect((await listInstances(runtime)).instances).toEqual([]);
  });

  it('a job without a restart policy is not respawned: exit 7, JobError child saying so', async () => {
    const module = join(dir, 'no-restart-job.mjs');
    writeFileSync(module, "export default { devices: {}, start() {} };\n", { mode: 0o644 });
    const job = await describeJob(module, NOBODY, NOGROUP);
    let spawned = 0;
    const r = await runMaster({
      name: 'no-respawn', modulePath: module, job, uid: NOBODY, gid: NOGROUP, signals: false,
      onChild: (child) => {
        spawned++;
        child.on('message', (m: { type?: string; state?: string }) => { if (m.type === 'state' && m.state === 'running') child.kill('SIGKILL'); });
      },
    });
    expect(r.exit).toBe(JobExit.ChildDied);
    expect(r.error).toMatchObject({ code: 'job', reason: 'child', message: expect.stringContaining('allows no restart') });
    expect(spawned).toBe(1);
  });
});
