/**
 * `frontend`: our Blkfront (Wasm or JS engine, ring order 0–2, persistent
 * grants on/off) attached to the scriptable hostile backend
 * (peers/hostile-backend.ts), driven by a sequence of frontend calls and
 * backend misbehaviours (frontend-case.ts).
 *
 * Invariants, per case:
 * - no uncaught exception or unhandled rejection (process listeners);
 * - every call settles exactly once (then-handlers counted; a ring request
 *   completed twice is caught on IoOp.complete), within the deadline;
 * - every rejection is a typed XenpvError; a failed device failed with `protocol`;
 * - write data the backend receives is exactly what the caller wrote, at
 *   the right sectors (self-checking sector patterns, peers/sector-pattern.ts);
 * - a read the backend answered correctly, with nothing hostile between the
 *   answer and the settlement, returns exactly the bytes served;
 * - after healing the backend, a healthy device reads back the backend's disk;
 * - after disconnect: no grant (deferred ungrants waited for once the peer
 *   unmaps), no port, no watch left by dom0.
 */
import { Blkfront } from '../../../src/blkfront/blkfront.js';
import { IoOp } from '../../../src/blkfront/request.js';
import { XenpvError } from '../../../src/errors.js';
import { OP_INDIRECT, OP_READ, OP_WRITE, RSP_EOPNOTSUPP, RSP_ERROR, RSP_OKAY, Xb } from '../peers/blkif-wire.js';
import { DEFAULT_PROBE_KEYS, defaultConnectKeys, HostileBackend, type Received } from '../peers/hostile-backend.js';
import { pattern, SECTOR, sectorTag } from '../peers/sector-pattern.js';
import { eventually, tick, within, WorldPool, type World } from '../peers/world.js';
import { Phases } from '../phases.js';
import { check, FuzzViolation, type FuzzHarness, type FuzzSetupOptions, type FuzzTarget } from '../target.js';
import { FE_DISK_SECTORS, feCase, formatFeCase, type Answer, type FeCase } from './frontend-case.js';

interface Call {
  what: string;
  settles: number;
  ok?: boolean;
  err?: unknown;
}

interface ReadCall extends Call {
  s: number;
  n: number;
  buf: Uint8Array;
  /** Bytes the backend served, per sector, by a correct answer. */
  snap: Map<number, Uint8Array>;
  /** Some part was answered by a lie (OKAY without I/O, corrupted, unsupported op). */
  lied: boolean;
  /** Something hostile happened between a correct answer and the settlement. */
  dirty: boolean;
}

const phases = new Phases();
const stats = new Map<string, number>();
const bump = (k: string): void => void stats.set(k, (stats.get(k) ?? 0) + 1);

// A ring request completed twice drives IoOp's outstanding count negative:
// count it (the promise itself cannot settle twice observably).
let doubleCompletions = 0;
const realComplete = IoOp.prototype.complete;
function patchIoOp(): void {
  IoOp.prototype.complete = function (this: IoOp): void {
    realComplete.call(this);
    const left = (this as unknown as { outstanding?: unknown }).outstanding;
    if (typeof left === 'number' && left < 0) doubleCompletions++;
  };
}

const respOp = (r: Received): number => (r.req.op === OP_INDIRECT ? r.req.byte1 : r.req.op);
const wireSectors = (r: Received): number => r.req.segs.reduce((n, s) => n + (s.last - s.first + 1), 0);

/** Index of the first byte where `a` and `b` differ, or -1 (a plain loop: a findIndex closure over 256 KiB was 10 % of a case). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length === b.length && Buffer.compare(a, b) === 0) return -1;
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return k;
  return n;
}

/** The initial disk (tag 0 everywhere), made once: a case copies it. */
const INITIAL_DISK = pattern(0, 0, FE_DISK_SECTORS);

export async function runFeCase(c: FeCase, pool: WorldPool): Promise<void> {
  const errors: unknown[] = [];
  const onErr = (e: unknown): void => void errors.push(e);
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  doubleCompletions = 0;
  phases.start();
  try {
    const w = await pool.acquire();
    phases.mark('world');
    await runIn(c, w, pool, errors);
  } catch (e) {
    // A failed case leaves the world in an unknown state: build a new one.
    await pool.discard();
    throw e;
  } finally {
    await tick();
    process.off('uncaughtException', onErr);
    process.off('unhandledRejection', onErr);
  }
  if (errors.length > 0) await pool.discard();
  check(errors.length === 0, 'uncaught exception / unhandled rejection', errors.map(String));
  await pool.release();
  phases.mark('reset');
}

async function runIn(c: FeCase, w: World, pool: WorldPool, errors: unknown[]): Promise<void> {
  const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend, diskBytes: FE_DISK_SECTORS * SECTOR });
  be.disk.set(INITIAL_DISK);
  const violations: string[] = [];
  const calls: Call[] = [];
  const reads: ReadCall[] = [];
  const writes = new Map<number, { s: number; n: number }>(); // tag → range
  let held: Received[] = [];
  let hold = false;
  let scribbled = false;
  // The backend changed state behind the frontend's back: the ring it mapped may not be the frontend's.
  let desynced = false;
  const written: Received[] = []; // answers written, for dup
  const probe = { ...DEFAULT_PROBE_KEYS, 'max-ring-page-order': String(c.order) };
  const connect = { 'feature-persistent': c.persistent ? '1' : '0' };
  const watchesBefore = w.xenstored.stats().watches;

  let devRef: Blkfront | undefined;
  const live = (): boolean => devRef?.state === 'connected';
  let anyHostile = false; // after a lie (dup, bad id, moved rsp_prod) the frontend may rightly have ended a held request's grants
  // Held requests the frontend may have settled on a lie (dup, bad id, moved
  // rsp_prod): their grefs may now name other requests' pages.
  const stale = new Set<Received>();
  const hostile = (): void => {
    anyHostile = true;
    for (const r of reads) if (r.settles === 0) r.dirty = true;
    for (const r of held) stale.add(r);
  };
  const readOf = (r: Received): ReadCall | undefined => {
    const s = Number(r.req.sector);
    const e = s + wireSectors(r);
    return reads.find((x) => x.settles === 0 && x.s < e && s < x.s + x.n);
  };

  const answer = (r: Received, how: Answer, v: number): void => {
    bump(`answer ${how}`);
    const id = r.req.id;
    const op = respOp(r);
    const rc = r.req.op === OP_READ || (r.req.op === OP_INDIRECT && r.req.byte1 === OP_READ) ? readOf(r) : undefined;
    if (how === 'ok' && r.req.op === OP_INDIRECT) how = 'error'; // this peer does not do indirect
    if (how === 'ok' && stale.has(r)) {
      // Serving it does real I/O on whatever its grefs name now: hostile, nothing to check.
      hostile();
      be.respond({ id, op, status: be.doIo(r) });
      written.push(r);
      return;
    }
    switch (how) {
      case 'ok': {
        const status = be.doIo(r);
        // (A failed or restarted frontend ended its grants: only a live one must have granted them.)
        if ((r.req.op === OP_READ || r.req.op === OP_WRITE) && status !== RSP_OKAY && live() && !anyHostile) violations.push(`backend could not map the grants of request ${r.req.id} (op ${r.req.op})`);
        const s0 = Number(r.req.sector);
        const n = wireSectors(r);
        // (After a lie, a stale request may have written into pages now lent to this one.)
        if (status === RSP_OKAY && r.req.op === OP_WRITE && !scribbled && !anyHostile) {
          for (let i = 0; i < n && s0 + i < FE_DISK_SECTORS; i++) {
            const tag = sectorTag(be.disk, (s0 + i) * SECTOR, s0 + i);
            const range = writes.get(tag);
            if (tag <= 0 || !range || s0 + i < range.s || s0 + i >= range.s + range.n) {
              violations.push(`write request ${id} carried wrong data for sector ${s0 + i} (tag ${tag})`);
              break;
            }
          }
        }
        if (status === RSP_OKAY && rc) {
          for (let i = 0; i < n; i++) rc.snap.set(s0 + i, be.disk.slice((s0 + i) * SECTOR, (s0 + i + 1) * SECTOR));
        }
        be.respond({ id, op, status });
        written.push(r);
        return;
      }
      case 'error':
        if (rc) rc.lied = true; // an op it could not do: data untouched, but nothing to check
        be.respond({ id, op, status: RSP_ERROR });
        break;
      case 'eopnotsupp':
        be.respond({ id, op, status: RSP_EOPNOTSUPP });
        break;
      case 'noIo':
        if (rc) rc.lied = true;
        be.respond({ id, op, status: RSP_OKAY });
        break;
      case 'badId':
        hostile();
        be.respond({ id: BigInt(v >>> 0) | (v < 0 ? 1n << 40n : 0n), op, status: RSP_OKAY });
        break;
      case 'badOp':
        hostile();
        be.respond({ id, op: v & 0xff, status: RSP_OKAY });
        break;
      case 'badStatus':
        hostile();
        be.respond({ id, op, status: ((v & 0xffff) << 16) >> 16 });
        break;
    }
    written.push(r);
  };
  be.onRequest = (r) => {
    bump('requests');
    if (hold) held.push(r);
    else {
      answer(r, 'ok', 0);
      be.publish();
    }
  };

  const attaching = Blkfront.attach(w.dom0, {
    engine: pool.engine(c.engine),
    frontend: w.paths.frontend,
    persistent: c.persistent,
    maxRingPageOrder: c.order,
    connectTimeoutMs: 3000,
    disconnectTimeoutMs: 200,
    eventStormLimit: c.stormLimit,
    // The leak check waits for deferred ungrants to end: retry them often so that wait is short.
    ungrantRetryMs: 2,
  });
  attaching.catch(() => undefined);
  phases.mark('setup');
  await be.handshake({ probe, connect });
  const dev = await attaching;
  devRef = dev;
  phases.mark('handshake');

  const track = (call: Call, p: Promise<void>): void => {
    calls.push(call);
    p.then(
      () => ((call.settles++, (call.ok = true))),
      (e: unknown) => ((call.settles++, (call.ok = false), (call.err = e))),
    );
  };
  const reconnect = async (): Promise<void> => {
    be.release();
    held = [];
    // A backend restarting closes first: wait for the frontend to drop its ring (or give up).
    await be.setState(Xb.Closed);
    // A failed Blkfront is failed for good (it unwatched and stays Closed):
    // waiting for it to come back would only run into the peer's timeouts.
    const gaveUp = (): boolean => devRef?.state === 'failed';
    await be.awaitFrontend([Xb.Initialising], 1000, gaveUp).catch(() => undefined);
    await be.handshake({ probe, connect: { ...defaultConnectKeys(be.disk.byteLength), ...connect }, cancelled: gaveUp }).catch(() => undefined);
  };

  for (const [i, o] of c.ops.entries()) {
    const t0 = phases.now();
    const sectorSize = dev.state === 'connected' ? dev.info().sectorSize : 512;
    switch (o.k) {
      case 'read': {
        if (sectorSize !== 512 || reads.some((x) => x.settles === 0 && x.s < o.s + o.n && o.s < x.s + x.n)) break;
        const buf = new Uint8Array(o.n * SECTOR).fill(0xee);
        const rc: ReadCall = { what: `read#${i}`, settles: 0, s: o.s, n: o.n, buf, snap: new Map(), lied: false, dirty: false };
        reads.push(rc);
        track(rc, dev.read(BigInt(o.s), [buf]));
        break;
      }
      case 'write': {
        if (sectorSize !== 512) break;
        writes.set(i + 1, { s: o.s, n: o.n });
        track({ what: `write#${i}`, settles: 0 }, dev.write(BigInt(o.s), [pattern(i + 1, o.s, o.n)]));
        break;
      }
      case 'flush':
        track({ what: `flush#${i}`, settles: 0 }, dev.flush());
        break;
      case 'hold':
        hold = o.on;
        break;
      case 'answer': {
        if (held.length === 0) break;
        const [r] = held.splice(o.pick % held.length, 1);
        answer(r!, o.how, o.v);
        if (o.publish) be.publish();
        break;
      }
      case 'publish':
        if (be.ring) be.publish();
        break;
      case 'dup': {
        const r = written[written.length - 1 - (o.back % Math.max(written.length, 1))];
        if (!r || !be.ring) break;
        hostile();
        be.respond({ id: r.req.id, op: respOp(r), status: RSP_OKAY });
        be.publish();
        break;
      }
      case 'rspProd':
        if (!be.ring) break;
        hostile();
        be.setRspProd((be.rspProdPvt + o.delta) >>> 0);
        break;
      case 'rewrite': {
        if (!be.ring || be.rspProdPvt === 0) break;
        hostile();
        const at = (be.rspProdPvt - o.back) >>> 0;
        const base = { id: BigInt(o.v >>> 0), op: o.v & 0xff, status: ((o.v & 0xffff) << 16) >> 16 };
        const prev = written[written.length - o.back];
        const rsp = { id: prev?.req.id ?? 0n, op: prev ? respOp(prev) : 0, status: RSP_OKAY };
        be.rewrite(at, { ...rsp, [o.field]: base[o.field] });
        break;
      }
      case 'keep':
        be.keepMappings = o.on;
        break;
      case 'scribble':
        if (be.kept.length === 0) break;
        hostile();
        scribbled = true;
        be.scribbleKept(o.byte);
        break;
      case 'storm':
        await be.storm(o.n);
        break;
      case 'state':
        // The frontend may restart on a new ring: what we hold came off the old one.
        for (const r of held) stale.add(r);
        await be.setState(o.v);
        desynced = true;
        break;
      case 'reconnect':
        await reconnect();
        desynced = false;
        break;
      case 'key':
        await be.writeKeys({ [o.key]: o.v });
        if (o.kick) {
          for (const r of held) stale.add(r);
          await be.setState(Xb.Connected);
          desynced = true;
        }
        break;
      case 'tick':
        for (let k = 0; k < o.n; k++) await tick();
        break;
    }
    await tick();
    phases.op(o.k, t0);
  }

  phases.mark('ops');
  // Heal: the backend behaves from now on.
  hold = false;
  for (const r of held.splice(0)) answer(r, 'ok', 0);
  if (be.ring) be.publish();
  await tick();
  if (dev.state !== 'failed' && (dev.state !== 'connected' || desynced)) await reconnect();
  if (dev.state === 'connected') be.takeRequests();
  await eventually(() => calls.every((x) => x.settles > 0) || dev.state === 'failed', 1500, 2);
  const st = dev.state;
  bump(`end ${st}`);
  if (st !== 'failed') {
    const pending = calls.filter((x) => x.settles === 0).map((x) => x.what);
    check(pending.length === 0, `device ${st} with a healed backend, calls still pending (hang)`, pending);
  }
  if (st === 'connected' && dev.info().sectorSize === 512 && dev.info().sizeSectors >= BigInt(FE_DISK_SECTORS)) {
    const all = new Uint8Array(FE_DISK_SECTORS * SECTOR);
    const got = await within(dev.read(0n, [all]), 2000, 'final read');
    if (got.status === 'fulfilled') {
      const at = firstDifference(all, be.disk);
      check(at < 0, `healthy device reads back data the backend does not hold (first difference at byte ${at})`);
      bump('verified');
    } else {
      check(got.reason instanceof XenpvError, 'final read rejected with an untyped error', String(got.reason));
    }
  }

  phases.mark('heal+verify');
  // Close per xenbus; the peer lets go of everything.
  be.followClose();
  const closed = await within(dev.disconnect(), 3000, 'disconnect');
  check(closed.status === 'fulfilled', 'disconnect rejected', String((closed as PromiseRejectedResult).reason));
  be.release();
  await tick();
  phases.mark('disconnect');

  // Settlements and errors.
  check(doubleCompletions === 0, `a ring request completed twice (${doubleCompletions})`);
  for (const x of calls) {
    check(x.settles === 1, `${x.what} settled ${x.settles} times`);
    if (!x.ok) check(x.err instanceof XenpvError, `${x.what} rejected with an untyped error`, String(x.err));
  }
  if (st === 'failed') {
    const r = await within(dev.read(0n, [new Uint8Array(512)]), 1000, 'read after failure');
    check(r.status === 'rejected' && (r.reason as XenpvError).code === 'protocol' || (r.status === 'rejected' && (r.reason as XenpvError).code === 'disconnected'),
      'a failed device must have failed with `protocol`', String((r as PromiseRejectedResult).reason));
  }
  // Data: reads the backend answered correctly, with nothing hostile before they settled.
  for (const r of reads) {
    if (!r.ok || r.lied || r.dirty) continue;
    let full = true;
    for (let k = 0; k < r.n; k++) if (!r.snap.has(r.s + k)) full = false;
    if (!full) continue;
    bump('reads checked');
    for (let k = 0; k < r.n; k++) {
      const want = r.snap.get(r.s + k)!;
      const got = r.buf.subarray(k * SECTOR, (k + 1) * SECTOR);
      if (want.some((b, j) => b !== got[j])) throw new FuzzViolation(`${r.what}: sector ${r.s + k} differs from what the backend served`);
    }
  }
  if (violations.length) throw new FuzzViolation(violations[0]!, violations);

  phases.mark('checks');
  // Leaks (deferred ungrants end once the peer unmapped: wait for the retry timer).
  await eventually(() => dev.stats().deferredGrants === 0 && w.dom0.grants.activeGrants() === 0, 500, 5);
  check(dev.stats().deferredGrants === 0, `deferred grants left: ${dev.stats().deferredGrants}`);
  check(w.dom0.grants.activeGrants() === 0, `grants left: ${w.dom0.grants.activeGrants()}`);
  check(w.dom0.evtchn.openPorts().length === 0, 'ports left open', w.dom0.evtchn.openPorts());
  check(w.xenstored.stats().watches === watchesBefore, `watches left: ${w.xenstored.stats().watches - watchesBefore}`);
  phases.mark('leaks');
  void errors;
}

const FE_WORLD = { scratchBytes: 8 << 20, poolPages: 1024 };

export const frontendTarget: FuzzTarget<FeCase> = {
  name: 'frontend',
  summary: 'our blkfront against a scriptable hostile backend: corrupt/reordered/duplicated/withheld responses, rsp_prod anywhere, slot rewrites, kept-grant scribbles, storms, state flaps, nonsense keys',
  caseDeadlineMs: 10_000,
  async setup(opts: FuzzSetupOptions = {}): Promise<FuzzHarness<FeCase>> {
    patchIoOp();
    const pool = new WorldPool(FE_WORLD, opts.freshWorlds);
    return {
      arbitrary: feCase,
      runCase: (c) => runFeCase(c, pool),
      format: formatFeCase,
      coverage: () => [...stats].sort().map(([k, v]) => `${k}: ${v}`).join('; ') + phases.summary(),
      dispose: async () => {
        IoOp.prototype.complete = realComplete;
        await pool.discard();
      },
    };
  },
};
