/**
 * Real event channels through /dev/xen/evtchn: a loopback pair in dom0
 * (an unbound port and a port bound to it), driven hard: ping-pong round
 * trips where any lost wake-up stalls the exchange, and a notify flood whose
 * last event must be seen. Then child Node processes that open the Linux
 * platform (evtchn, gntalloc, xenstore over the socket or xenbus) must exit
 * promptly: after close(), by themselves, and on process.exit() without it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLinuxPlatform, type LinuxPlatform } from '../../src/platform/linux/platform.js';
import { requireDom0, userEvtchnIrqs } from './dom0.js';

const ROOT = resolve(__dirname, '../..');
const DIST = join(ROOT, 'dist/src');

let p: LinuxPlatform;
let irqs0: number;
beforeAll(async () => {
  requireDom0();
  irqs0 = userEvtchnIrqs();
  p = await openLinuxPlatform({ xenstore: 'socket' });
});
afterAll(async () => { await p?.close(); });

function pair(): { a: number; b: number; close(): void } {
  const a = p.evtchn.allocUnbound(p.domid);
  const b = p.evtchn.bindInterdomain(p.domid, a);
  return { a, b, close: () => { p.evtchn.close(b); p.evtchn.close(a); } };
}

describe('event channels on real Xen', () => {
  it('ping-pong: 1000 round trips over a loopback pair, none lost', async () => {
    const { a, b, close } = pair();
    const ROUNDS = 1000;
    let pongs = 0;
    const t0 = Date.now();
    try {
      await new Promise<void>((res, rej) => {
        // A lost wake-up stalls the exchange for good; slowness (TCG) only slows it.
        let last = -1;
        const watchdog = setInterval(() => {
          if (pongs === last) { clearInterval(watchdog); rej(new Error(`stalled after ${pongs} round trips: a wake-up was lost`)); }
          last = pongs;
        }, 20_000);
        p.evtchn.setHandler(a, () => p.evtchn.notify(a)); // echo back
        p.evtchn.setHandler(b, () => {
          pongs++;
          if (pongs === ROUNDS) { clearInterval(watchdog); res(); } else p.evtchn.notify(b);
        });
        p.evtchn.notify(b);
      });
    } finally {
      close();
    }
    expect(pongs).toBe(ROUNDS);
    console.log(`evtchn round trip in dom0: ${(((Date.now() - t0) * 1000) / ROUNDS).toFixed(0)} us`);
  });

  it('a flood of 20000 notifies coalesces but the last one is always seen', async () => {
    const { a, b, close } = pair();
    let sent = 0;
    let seen = 0;
    let calls = 0;
    try {
      const done = new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`last value seen ${seen} of ${sent}: a wake-up was lost`)), 120_000);
        p.evtchn.setHandler(a, () => {
          calls++;
          seen = sent; // what the sender had published before this event
          if (seen === 20000) { clearTimeout(timer); res(); }
        });
      });
      for (let burst = 0; burst < 200; burst++) {
        for (let i = 0; i < 100; i++) { sent++; p.evtchn.notify(b); }
        await new Promise((r) => setImmediate(r));
      }
      await done;
      expect(calls).toBeGreaterThan(0);
      expect(calls).toBeLessThanOrEqual(20000);
      console.log(`flood: 20000 notifies, ${calls} deliveries`);
    } finally {
      close();
    }
  });

  it('masked events are held and delivered on unmask', async () => {
    const { a, b, close } = pair();
    try {
      let calls = 0;
      p.evtchn.setHandler(a, () => { calls++; });
      p.evtchn.mask(a);
      p.evtchn.notify(b);
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBe(0);
      p.evtchn.unmask(a);
      const end = Date.now() + 10_000;
      while (calls === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(calls).toBeGreaterThanOrEqual(1);
    } finally {
      close();
    }
  });
});

interface Exit { code: number | null; killed: boolean; afterReadyMs: number; out: string }

/**
 * Run `body` in a child over dist/. `afterReadyMs`: from its "ready" to its
 * 'exit' event, both timed inside the child: how long the event loop stayed
 * alive, without the process teardown that TCG makes slow and noisy.
 */
function child(body: string, deadlineMs = 120_000): Promise<Exit> {
  const script = `
    import { writeSync } from 'node:fs';
    let readyAt = 0;
    const ready = () => { readyAt = performance.now(); };
    process.on('exit', () => writeSync(1, '\\nalive-after-ready ' + Math.round(performance.now() - readyAt) + '\\n'));
    const { openLinuxPlatform } = await import(${JSON.stringify(join(DIST, 'platform/linux/platform.js'))});
    ${body}`;
  return new Promise((res) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    let killed = false;
    const t = setTimeout(() => { killed = true; c.kill('SIGKILL'); }, deadlineMs);
    c.on('exit', (code) => {
      clearTimeout(t);
      const m = /alive-after-ready (\d+)/.exec(out);
      res({ code, killed, afterReadyMs: m ? Number(m[1]) : -1, out });
    });
  });
}

describe('a Node process that used the Linux platform exits promptly', () => {
  beforeAll(() => {
    if (!existsSync(join(DIST, 'platform/linux/platform.js'))) throw new Error('dist/ is missing: npm run build on the host first');
  });

  for (const xenstore of ['socket', 'xenbus'] as const) {
    it(`after close() (xenstore over ${xenstore}), with nothing else to do`, async () => {
      const r = await child(`
        const p = await openLinuxPlatform({ xenstore: '${xenstore}' });
        const port = p.evtchn.allocUnbound(0);
        p.evtchn.setHandler(port, () => {});
        await p.xenstore.read('domid').catch(() => {});
        await p.close();
        ready();`);
      expect(r, r.out).toMatchObject({ killed: false, code: 0 });
      expect(r.afterReadyMs, r.out).toBeGreaterThanOrEqual(0);
      expect(r.afterReadyMs, r.out).toBeLessThan(3000);
    });

    it(`on process.exit() while it still holds everything (xenstore over ${xenstore})`, async () => {
      const r = await child(`
        const p = await openLinuxPlatform({ xenstore: '${xenstore}' });
        const port = p.evtchn.allocUnbound(0);
        p.evtchn.setHandler(port, () => {});
        const w = await p.xenstore.watch('/local/domain/0');
        ready();
        process.exit(0);`);
      expect(r, r.out).toMatchObject({ killed: false, code: 0 });
      expect(r.afterReadyMs, r.out).toBeGreaterThanOrEqual(0);
      expect(r.afterReadyMs, r.out).toBeLessThan(3000);
    });
  }

  it('left no bound port behind', () => {
    // Our own platform's ports (the wake-up pair) are still open; the children's are gone.
    expect(userEvtchnIrqs()).toBe(irqs0 + 2);
  });
});
