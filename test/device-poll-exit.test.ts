/**
 * Regression: a read parked on a Xen character device kept Node alive.
 *
 * The /dev/xen/xenbus transport read through libuv's thread pool; with
 * nothing to read, that read never returned, close() did not end it, and
 * the process never exited, not even on process.exit() (libuv joins its pool
 * threads at exit). The evtchn device read the same way. Both now wait with
 * poll() on the event loop (src/native/fd-poll.cc) and read without blocking.
 *
 * Stand-in for the devices: a FIFO opened read-write. Like xenbus and evtchn
 * it supports poll() and O_NONBLOCK, and a read on it blocks while it is
 * empty, so the old code hung on it exactly as on the device. Whatever is
 * written to it comes back as input: a xenstore request sent over the
 * "xenbus" returns as its own reply, which proves the data path too.
 *
 * Each case runs in a child Node process over the compiled package (dist/),
 * killed after a deadline; it must exit on its own, with status 0.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '..');
const DIST = join(ROOT, 'dist/src');
const DEADLINE_MS = 20_000;
let dir: string;
let fifo: string;

beforeAll(() => {
  if (!existsSync(join(DIST, 'xenstore/transport/xenbus.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test builds first)');
  dir = mkdtempSync(join(tmpdir(), 'xenpv-poll-'));
  fifo = join(dir, 'dev');
  execFileSync('mkfifo', [fifo]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Exit { code: number | null; killed: boolean; ms: number; stdout: string; stderr: string }

function runChild(script: string): Promise<Exit> {
  return new Promise((res) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, FIFO: fifo, DIST } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    let killed = false;
    const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, DEADLINE_MS);
    child.on('exit', (code) => { clearTimeout(timer); res({ code, killed, ms: Date.now() - t0, stdout, stderr }); });
  });
}

const XENBUS = `
import { openSync, writeSync } from 'node:fs';
const { openXenbusDevice } = await import(process.env.DIST + '/xenstore/transport/xenbus.js');
const { XenstoreClient } = await import(process.env.DIST + '/xenstore/client.js');
const client = new XenstoreClient(await openXenbusDevice(process.env.FIFO));
`;

const EVTCHN = `
import { openSync, writeSync } from 'node:fs';
const { evtchnDeviceOnFd } = await import(process.env.DIST + '/platform/linux/evtchn-device.js');
const fd = openSync(process.env.FIFO, 'r+');
const dev = evtchnDeviceOnFd(fd);
`;

describe('xenbus device transport', () => {
  it('carries a request and its reply through poll-driven reads', async () => {
    const r = await runChild(`${XENBUS}
      console.log(JSON.stringify(await client.read('/echo/me')));
      await client.close();`);
    expect(r).toMatchObject({ killed: false, code: 0 });
    // The FIFO echoed the XS_READ request: its payload is the "value".
    expect(JSON.parse(r.stdout).replace(/\0$/, '')).toBe('/echo/me');
  });

  it('close() with a reply still awaited ends the wait, and the process exits', async () => {
    const r = await runChild(`${XENBUS}
      // Type 15 (XS_WATCH_EVENT) comes back from the FIFO as an event, never
      // as a reply: the request stays awaited.
      const p = client.request(15, 0, new Uint8Array(0)).catch((e) => console.log(e.code));
      setTimeout(() => client.close(), 200);
      await p;`);
    expect(r).toMatchObject({ killed: false, code: 0 });
    expect(r.stdout.trim()).toBe('disconnected');
  });

  it('an idle client (open, nothing awaited) does not keep the process alive', async () => {
    const r = await runChild(`${XENBUS}
      await client.read('/x'); // one round trip, then idle and never closed
      console.log('idle');`);
    expect(r).toMatchObject({ killed: false, code: 0 });
    expect(r.stdout.trim()).toBe('idle');
  });

  it('process.exit() exits while a read waits on the device', async () => {
    const r = await runChild(`${XENBUS}
      // A request whose reply never comes (see above): the client holds the
      // loop while it waits, and the poll watcher sits on the fd.
      void client.request(15, 0, new Uint8Array(0)).catch(() => {});
      setTimeout(() => process.exit(0), 300);`);
    expect(r).toMatchObject({ killed: false, code: 0 });
  });
});

describe('evtchn device', () => {
  it('readPorts() returns the ports the device holds (u32 each), read when poll says so', async () => {
    const r = await runChild(`${EVTCHN}
      const p = dev.readPorts();
      const b = Buffer.alloc(8); b.writeUInt32LE(5, 0); b.writeUInt32LE(70000, 4);
      setTimeout(() => writeSync(fd, b), 100);
      console.log(JSON.stringify(await p));
      dev.close();`);
    expect(r).toMatchObject({ killed: false, code: 0 });
    expect(JSON.parse(r.stdout)).toEqual([5, 70000]);
  });

  it('close() ends a waiting readPorts() (with no ports) and the process exits', async () => {
    const r = await runChild(`${EVTCHN}
      const p = dev.readPorts();
      setTimeout(() => dev.close(), 200);
      console.log(JSON.stringify(await p));`);
    expect(r).toMatchObject({ killed: false, code: 0 });
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('process.exit() exits while readPorts() waits', async () => {
    const r = await runChild(`${EVTCHN}
      void dev.readPorts();
      setTimeout(() => process.exit(0), 300);`);
    expect(r).toMatchObject({ killed: false, code: 0 });
  });
});
