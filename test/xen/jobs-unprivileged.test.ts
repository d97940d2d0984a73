/**
 * In the real-Xen lab's dom0 (npm run test:xen; not part of the default
 * run): the master's unprivileged job child really cannot open the Xen
 * devices or xenstored's socket itself, while its I/O on the descriptors the
 * master passed works: a file descriptor, and a real xen: device (blkfront
 * in the child on /dev/xen/evtchn and gntalloc the master opened, xenstore
 * through the master's proxy) served by the kernel's xen-blkback from a loop
 * device. Oracles: the errno the kernel gives the child, its
 * /proc/<pid>/status and /proc/<pid>/fd as the master reads them, dd on the
 * loop device, xenstore-read/xenstore-exists (Xen's own tools),
 * /proc/interrupts for ports bound through evtchn, losetup, dmesg.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { loopDevicesOf } from '../../src/blkfront/loop-device.js';
import { JobExit } from '../../src/jobs/exit.js';
import { describeJob, runMaster, type MasterInfo } from '../../src/jobs/master.js';
import { expectKernelClean, kernelLog, moduleLoaded, raiseGntallocLimit, TCG_TIMEOUTS, userEvtchnIrqs } from './dom0.js';

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

});

const XVDB = 51728;
const FRONTEND = `/local/domain/0/device/vbd/${XVDB}`;
const BACKEND = `/local/domain/0/backend/vbd/0/${XVDB}`;
const PATTERN_SECTOR = 2048;
const PATTERN_BYTES = 64 << 10;
/** Requests the probe sends on its proxied xenstore for paths that are not its device's. */
const FOREIGN = ['/local/domain/1/device/vbd/51712/state', `/local/domain/0/backend/vbd/0/51712/params`];

/** The probe's pattern, computed here from its definition (probe-job.mjs). */
function pattern(): Buffer {
  const b = Buffer.alloc(PATTERN_BYTES);
  for (let k = 0; k < PATTERN_BYTES; k++) b[k] = (k * 131 + (k >> 9) + 17) & 255;
  return b;
}

/** Xen's own tool: whether a xenstore path exists (exit status of xenstore-exists). */
function xenstoreExists(path: string): boolean {
  const r = spawnSync('xenstore-exists', [path], { encoding: 'utf8' });
  if (r.error) throw new Error(`xenstore-exists: ${r.error.message} (xenstore-utils is in the lab image)`);
  return r.status === 0;
}

function procStatus(pid: number): Record<string, string> {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

describe('dom0: a real xen: device in an unprivileged child', () => {
  let irqs0: number;
  let log0: string[];
  beforeAll(async () => {
    if (!moduleLoaded('xen-blkback')) throw new Error('xen-blkback is not loaded: modprobe xen-blkback (the lab\'s dom0 init does)');
    if (moduleLoaded('xen-blkfront')) throw new Error('xen-blkfront is loaded: it claims every dom0 vbd; modprobe -r xen-blkfront');
    raiseGntallocLimit();
    irqs0 = userEvtchnIrqs();
    log0 = await kernelLog();
  });

  /** Nothing of the child is left: vbd directories, ports, loop devices. */
  async function expectNothingLeft(image: string): Promise<void> {
    expect(xenstoreExists(FRONTEND), FRONTEND).toBe(false);
    expect(xenstoreExists(BACKEND), BACKEND).toBe(false);
    expect(userEvtchnIrqs()).toBe(irqs0);
    expect(await loopDevicesOf(image)).toEqual([]);
    await expectKernelClean(log0);
  }

  function probeEnv(image: string, extra: Record<string, string>): Record<string, string> {
    const present = XEN_DEVICES.filter((d) => existsSync(d));
    return {
      XENPV_PROBE_DEVICE: 'xen:xvdb', XENPV_PROBE_PATHS: [image, ...present].join(','),
      XENPV_PROBE_SOCKETS: existsSync(XENSTORED_SOCKET) ? XENSTORED_SOCKET : '',
      XENPV_PROBE_OPTIONS: JSON.stringify({ blkfront: TCG_TIMEOUTS }),
      XENPV_PROBE_PATTERN: `${PATTERN_SECTOR}:${PATTERN_BYTES}`,
      XENPV_PROBE_FOREIGN: '', XENPV_PROBE_GNTDEV: '0', XENPV_PROBE_MODE: 'done',
      ...extra,
    };
  }

  function rootOnlyImage(name: string): string {
    const image = join(dir, name);
    writeFileSync(image, Buffer.alloc(16 << 20), { mode: 0o600 });
    chmodSync(image, 0o600);
    return image;
  }

  function record(image: string): { uid: string; gid: string; capEff: string; capPrm: string; opens: Record<string, string>; fds: Record<string, string> } {
    const bytes = readFileSync(image).subarray(8 * 512, 8 * 512 + 4096);
    return JSON.parse(bytes.subarray(0, bytes.indexOf(10)).toString('utf8'));
  }

  it('SIGKILL: as nobody without capabilities, on the passed descriptors, its I/O reaches the loop device through kernel blkback; foreign xenstore paths are refused and logged; nothing is left after', async () => {
    const image = rootOnlyImage('xen-child.img');
    Object.assign(process.env, probeEnv(image, { XENPV_PROBE_MODE: 'hold', XENPV_PROBE_FOREIGN: FOREIGN.join(',') }));
    const job = await describeJob(probe, NOBODY, NOBODY);
    const logs: string[] = [];
    let seen: { status: Record<string, string>; fds: Record<string, string>; loops: string[]; disk: Buffer; backendState: string; irqs: number; refused: number } | undefined;
    let failure: unknown;
    const onRunning = async (child: ChildProcess, info: MasterInfo): Promise<void> => {
      try {
        const fds = Object.fromEntries([4, 5, 6, 7].map((n) => [n, readlinkSafe(`/proc/${child.pid}/fd/${n}`)]));
        const loops = await loopDevicesOf(image);
        const out = join(dir, 'dd.out');
        execFileSync('dd', [`if=${loops[0]}`, `of=${out}`, 'bs=512', `skip=${PATTERN_SECTOR}`, `count=${PATTERN_BYTES / 512}`, 'iflag=direct', 'status=none']);
        seen = {
          status: procStatus(child.pid!), fds, loops, disk: readFileSync(out),
          backendState: execFileSync('xenstore-read', [`${BACKEND}/state`], { encoding: 'utf8' }).trim(),
          irqs: userEvtchnIrqs(), refused: info.proxy!.refused,
        };
      } catch (err) {
        failure = err;
      } finally {
        child.kill('SIGKILL');
      }
    };
    const r = await runMaster({
      name: 'dom0-xen-kill', modulePath: probe, job, uid: NOBODY, gid: NOBODY, signals: false,
      xen: { backing: () => `file:${image}` }, log: (l) => logs.push(l),
      onChild: (child, info) => {
        child.on('message', (m: { type?: string; state?: string }) => { if (m.type === 'state' && m.state === 'running') void onRunning(child, info); });
      },
    });
    if (failure) throw failure;
    expect(r.signal, logs.join('\n')).toBe('SIGKILL');
    expect(r.exit).toBe(JobExit.ChildDied);
    expect(seen, logs.join('\n')).toBeDefined();
    const s = seen!;
    expect(s.status['Uid']!.split(/\s+/)).toEqual([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
    expect(s.status['Gid']!.split(/\s+/)).toEqual([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
    expect(s.status['Groups']).toBe('');
    expect(s.status['CapEff']).toBe('0000000000000000');
    expect(s.status['CapPrm']).toBe('0000000000000000');
    expect(s.fds[5]).toBe('/dev/xen/evtchn');
    expect(s.fds[6]).toBe('/dev/xen/gntalloc');
    // Not passed (the child's node reuses the number for its own files): in any case not gntdev.
    expect(s.fds[7]).not.toBe('/dev/xen/gntdev');
    expect(s.fds[4]).toMatch(/^socket:/);
    expect(s.loops).toHaveLength(1);
    expect(s.backendState).toBe('4');
    expect(s.irqs).toBeGreaterThan(irqs0);
    expect(Buffer.compare(s.disk, pattern())).toBe(0);
    // The child's own attempts, as the kernel answered them.
    const rec = record(image);
    expect(rec.opens).toEqual(Object.fromEntries([image, ...XEN_DEVICES.filter((d) => existsSync(d)), ...(existsSync(XENSTORED_SOCKET) ? [XENSTORED_SOCKET] : [])].map((p) => [p, 'EACCES'])));
    expect(rec.fds).toEqual(s.fds);
    expect(s.refused).toBe(FOREIGN.length);
    for (const p of FOREIGN) expect(logs.some((l) => l.includes('refused XS_READ') && l.includes(p)), logs.join('\n')).toBe(true);
    await expectNothingLeft(image);
  });

  it('a job that completes: exit 0, fd 7 is gntdev when the job maps grants, the pattern is in the image, and nothing is left', async () => {
    const image = rootOnlyImage('xen-child-done.img');
    Object.assign(process.env, probeEnv(image, { XENPV_PROBE_GNTDEV: '1' }));
    const job = await describeJob(probe, NOBODY, NOBODY);
    expect(job.mapsForeignGrants).toBe(true);
    const logs: string[] = [];
    const r = await runMaster({
      name: 'dom0-xen-done', modulePath: probe, job, uid: NOBODY, gid: NOBODY, signals: false,
      xen: { backing: () => `file:${image}` }, log: (l) => logs.push(l),
    });
    expect(r.exit, logs.join('\n')).toBe(JobExit.Ok);
    expect(r.reported?.kind).toBe('completed');
    const rec = record(image);
    expect(rec.uid.split(/\s+/)).toEqual([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
    expect(rec.fds).toMatchObject({ 5: '/dev/xen/evtchn', 6: '/dev/xen/gntalloc', 7: '/dev/xen/gntdev' });
    const disk = readFileSync(image).subarray(PATTERN_SECTOR * 512, PATTERN_SECTOR * 512 + PATTERN_BYTES);
    expect(Buffer.compare(disk, pattern())).toBe(0);
    await expectNothingLeft(image);
  });

  it('a real xen: device without a backing is refused before any child is spawned, saying what to pass', async () => {
    const job = { devices: { disk: 'xen:xvdb' } };
    await expect(runMaster({ name: 'dom0-xen', modulePath: probe, job, uid: NOBODY, gid: NOBODY, signals: false }))
      .rejects.toMatchObject({ code: 'job', reason: 'open-failed', message: expect.stringContaining('--backing disk=file:PATH') });
    expect(xenstoreExists(BACKEND)).toBe(false);
  });
});

function readlinkSafe(p: string): string {
  try { return readlinkSync(p); } catch (e) { return (e as NodeJS.ErrnoException).code ?? String(e); }
}
