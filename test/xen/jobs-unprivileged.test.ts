/**
 * In the real-Xen lab's dom0 (npm run test:xen; not part of the default
 * run): the master's unprivileged job child really cannot open the Xen
 * devices or xenstored's socket itself, while its I/O on the descriptor the
 * master passed works; and the master refuses a real xen: device for a
 * child (passing /dev/xen descriptors is not implemented) instead of
 * letting the child try. Oracles: the errno the kernel gives the child, its
 * /proc/self/status, the bytes in a root-only file.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobExit } from '../../src/jobs/exit.js';
import { describeJob, runMaster } from '../../src/jobs/master.js';

const NOBODY = 65534;
const XEN_DEVICES = ['/dev/xen/evtchn', '/dev/xen/gntalloc', '/dev/xen/gntdev', '/dev/xen/xenbus', '/dev/xen/privcmd'];
const XENSTORED_SOCKET = '/var/run/xenstored/socket';
const probe = fileURLToPath(new URL('../fixtures/jobs/probe-job.mjs', import.meta.url));

let dir: string;
beforeAll(() => {
  if (process.env['XENPV_DOM0'] !== '1') {
    throw new Error('test/xen runs only inside a Xen dom0: run `npm run test:xen` (boots the real-Xen lab, tools/xen-vm)');
  }
  if (process.getuid?.() !== 0) throw new Error('test/xen needs root (the Xen devices are root-only)');
  for (const d of XEN_DEVICES.slice(0, 4)) if (!existsSync(d)) throw new Error(`${d} is missing: the lab's dom0 init loads the Xen device modules`);
  dir = mkdtempSync(join(tmpdir(), 'xenpv-dom0-jobs-'));
  chmodSync(dir, 0o755);
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

describe('dom0: the job child runs without root', () => {
  it('cannot open /dev/xen/* or connect to xenstored itself, and does I/O on the passed descriptor', async () => {
    const secret = join(dir, 'secret.img');
    writeFileSync(secret, Buffer.alloc(1 << 20), { mode: 0o600 });
    const present = XEN_DEVICES.filter((d) => existsSync(d));
    const sockets = existsSync(XENSTORED_SOCKET) ? [XENSTORED_SOCKET] : [];
    Object.assign(process.env, { XENPV_PROBE_DEVICE: `file:${secret}`, XENPV_PROBE_PATHS: [secret, ...present].join(','), XENPV_PROBE_SOCKETS: sockets.join(','), XENPV_PROBE_MODE: 'done' });
    const job = await describeJob(probe, NOBODY, NOBODY);
    const r = await runMaster({ name: 'dom0-probe', modulePath: probe, job, uid: NOBODY, gid: NOBODY, signals: false });
    expect(r.exit).toBe(JobExit.Ok);
    const bytes = readFileSync(secret).subarray(8 * 512, 8 * 512 + 4096);
    const rec = JSON.parse(bytes.subarray(0, bytes.indexOf(10)).toString('utf8')) as { uid: string; capEff: string; opens: Record<string, string> };
    expect(rec.uid.split(/\s+/)).toEqual([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
    expect(rec.capEff).toBe('0000000000000000');
    const want = Object.fromEntries([secret, ...present, ...sockets].map((p) => [p, 'EACCES']));
    expect(rec.opens).toEqual(want);
  });

  it('the master refuses a real xen: device for a child, saying --sim is needed, before spawning it', async () => {
    const job = { devices: { disk: 'xen:xvdb' } };
    await expect(runMaster({ name: 'dom0-xen', modulePath: probe, job, uid: NOBODY, gid: NOBODY, signals: false }))
      .rejects.toMatchObject({ code: 'job', reason: 'open-failed', message: expect.stringContaining('--sim') });
  });
});
