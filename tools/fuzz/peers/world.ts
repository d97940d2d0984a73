/**
 * A minimal simulated machine for hostile-peer tests: a xenstored, a
 * hypervisor, dom0 (frontends live here) and one in-process peer domain whose
 * every move the test scripts. Everything runs on this thread, so the test
 * can inspect both sides' grants, ports and state at any point.
 */
import { createVbd, type VbdPaths } from '../../../src/blkfront/toolstack.js';
import type { SimPlatform } from '../../../src/platform/sim/domain.js';
import { Hypervisor } from '../../../src/platform/sim/hypervisor.js';
import { XenstoreServer } from '../../../src/xenstore/server/server.js';

export interface World {
  xenstored: XenstoreServer;
  hv: Hypervisor;
  dom0: SimPlatform;
  peer: SimPlatform;
  paths: VbdPaths;
  stop(): Promise<void>;
}

export const XVDA = 51712;

/** dom0 (frontend side) and a peer domain `peerDomid`, with a vbd between them. */
export async function createWorld(opts: { peerDomid?: number; readOnly?: boolean; scratchBytes?: number; poolPages?: number } = {}): Promise<World> {
  const xenstored = new XenstoreServer();
  const hv = Hypervisor.create({ xenstore: xenstored, scratchBytes: opts.scratchBytes ?? 32 << 20, poolPages: opts.poolPages ?? 4096 });
  const dom0 = hv.createDomain('dom0', undefined, { domid: 0 });
  const peerDomid = opts.peerDomid ?? 5;
  const peer = hv.createDomain('peer', undefined, { domid: peerDomid });
  // dom0 is always the frontend, the peer always the backend; which side is
  // hostile is up to the test.
  const paths = await createVbd(dom0.xenstore, {
    frontendDomid: 0,
    backendDomid: peerDomid,
    devid: XVDA,
    params: 'hostile',
    readOnly: opts.readOnly,
  });
  let stopped = false;
  return {
    xenstored,
    hv,
    dom0,
    peer,
    paths,
    async stop() {
      if (stopped) return;
      stopped = true;
      await hv.shutdown().catch(() => undefined);
      await xenstored.close().catch(() => undefined);
    },
  };
}

/** Settle `p` within `ms`, or throw "hung": no test waits forever on a driver. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms (hung)`)), ms);
  });
  try {
    return await Promise.race([
      p.then(
        (value) => ({ status: 'fulfilled', value }) as const,
        (reason: unknown) => ({ status: 'rejected', reason }) as const,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Poll `cond` until true or `ms` pass. Returns whether it became true.
 *
 * Everything a peer test waits for happens on this thread (xenstore replies,
 * watch events, event-channel upcalls), one event-loop turn away. So the
 * first `spinMs` of a wait re-check after every turn (`setImmediate`, which
 * runs after pending I/O and timers): a wait ends as soon as its condition
 * holds, instead of a timer step later (a 5 ms step is 10–20 ms on a loaded
 * machine, and was most of a fuzz case). Past `spinMs` the wait is for a
 * real timer (a retry interval, a grace period) or for something that will
 * never come: it steps by `stepMs` timers then, so it does not burn a core.
 * The result is the same either way; only how soon it is known changes.
 */
export async function eventually(cond: () => boolean | Promise<boolean>, ms = 3000, stepMs = 5, spinMs = 20): Promise<boolean> {
  const start = Date.now();
  const end = start + ms;
  for (;;) {
    if (await cond()) return true;
    const now = Date.now();
    if (now > end) return false;
    if (now - start < spinMs) await tick();
    else await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
