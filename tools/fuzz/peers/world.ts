/**
 * A minimal simulated machine for hostile-peer tests: a xenstored, a
 * hypervisor, dom0 (frontends live here) and one in-process peer domain whose
 * every move the test scripts. Everything runs on this thread, so the test
 * can inspect both sides' grants, ports and state at any point.
 */
import { createVbd, type VbdPaths } from '../../../src/blkfront/toolstack.js';
import type { SimPlatform } from '../../../src/platform/sim/domain.js';
import { domainLeaks as domainLeaksOf, Hypervisor } from '../../../src/platform/sim/hypervisor.js';
import { createEngine, type RingEngine } from '../../../src/ring/index.js';
import type { XsCheckpoint } from '../../../src/xenstore/server/core.js';
import { XenstoreServer } from '../../../src/xenstore/server/server.js';
import { FuzzViolation } from '../target.js';

export interface World {
  xenstored: XenstoreServer;
  hv: Hypervisor;
  /** Replaced by a fresh platform on every reset (WorldPool). */
  dom0: SimPlatform;
  peer: SimPlatform;
  paths: VbdPaths;
  stop(): Promise<void>;
}

export type WorldOptions = { peerDomid?: number; readOnly?: boolean; scratchBytes?: number; poolPages?: number };

export const XVDA = 51712;

/** dom0 (frontend side) and a peer domain `peerDomid`, with a vbd between them. */
export async function createWorld(opts: WorldOptions = {}): Promise<World> {
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

/**
 * One simulated machine reused across fuzz cases, instead of one built per
 * case (7 ms of CPU: memory, pool format, xenstored, two domains, a vbd).
 *
 * `release()` after a case is the reset, and a leak check: it fails (a
 * FuzzViolation naming what is left) unless the case left nothing behind —
 * no watch or transaction in xenstored, no xenstore node changed outside
 * the vbd's two directories, and in either domain no open port, grant,
 * foreign mapping, allocated page, scratch block or xenstore request in
 * flight (Hypervisor.resetDomain). Then both domains get fresh platforms
 * (zeroed tables and scratch, so grefs and ports are handed out as in a new
 * machine) and xenstore goes back to its checkpoint taken right after the
 * vbd was created: the next case starts from the state a fresh world has.
 * A world that failed its check, or whose case failed, is thrown away.
 *
 * `fresh: true` builds a new world per case (the reference the reuse is
 * tested against, test/fuzz-world-reuse.test.ts).
 */
export class WorldPool {
  private world: World | undefined;
  private checkpoint: XsCheckpoint | undefined;
  private readonly engines = new Map<string, RingEngine>();
  /** Worlds built (1 when every case reused the first). */
  built = 0;

  constructor(private readonly opts: WorldOptions = {}, readonly fresh = false) {}

  /** The world for the next case. */
  async acquire(): Promise<World> {
    if (this.world) return this.world;
    const w = await createWorld(this.opts);
    this.built++;
    this.world = w;
    this.checkpoint = w.xenstored.checkpoint();
    this.engines.clear();
    return w;
  }

  /**
   * A ring engine over the world's memory, made once per world (an engine
   * holds no state of its own: rings live in the domains' scratch).
   */
  engine(kind: 'wasm' | 'js'): RingEngine {
    const w = this.world!;
    let e = this.engines.get(kind);
    if (!e) this.engines.set(kind, (e = createEngine(kind, w.hv.memory)));
    return e;
  }

  /** The case passed: check it left nothing, and reset for the next one. */
  async release(): Promise<void> {
    const w = this.world;
    if (!w) return;
    if (this.fresh) return this.discard();
    // Let stragglers of the case (a last xenstore reply, a watch event) land first.
    await tick();
    await tick();
    const leaks = this.leaks(w);
    if (leaks.length > 0) {
      await this.discard();
      throw new FuzzViolation(`the case left state behind (found at reset): ${leaks.join('; ')}`, leaks);
    }
    try {
      w.dom0 = w.hv.resetDomain(w.dom0.domid);
      w.peer = w.hv.resetDomain(w.peer.domid);
      w.xenstored.restore(this.checkpoint!);
    } catch (e) {
      await this.discard();
      throw new FuzzViolation(`the case left state behind (found at reset): ${(e as Error).message}`);
    }
  }

  /** What the world holds beyond its checkpoint (empty: nothing). */
  leaks(w: World): string[] {
    const out: string[] = [];
    const st = w.xenstored.stats();
    if (st.watches > 0) out.push(`${st.watches} xenstore watch(es)`);
    if (st.transactions > 0) out.push(`${st.transactions} xenstore transaction(s)`);
    const mine = (p: string): boolean => [w.paths.frontend, w.paths.backend].some((d) => p === d || p.startsWith(`${d}/`));
    const nodes = w.xenstored.changedSince(this.checkpoint!).filter((p) => !mine(p));
    if (nodes.length > 0) out.push(`xenstore nodes changed outside the vbd: ${nodes.join(', ')}`);
    for (const d of [w.dom0, w.peer]) {
      const held = domainLeaksOf(d);
      if (held.length > 0) out.push(`dom${d.domid}: ${held.join(', ')}`);
    }
    return out;
  }

  /** Throw the world away (a failed case: what it left is unknown). */
  async discard(): Promise<void> {
    const w = this.world;
    this.world = undefined;
    this.engines.clear();
    await w?.stop();
  }
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
