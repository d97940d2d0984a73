/**
 * `backend`: our Blkback (in-process, MemoryBlockDevice) against the
 * scriptable hostile frontend (peers/hostile-frontend.ts): valid and
 * malformed requests (bad segment counts and sector ranges, bad / read-only
 * / foreign / ended grant refs, indirect pages of garbage, unknown ops, raw
 * slot bytes), req_prod jumps past the ring, and xenbus state flapping.
 *
 * Invariants: no uncaught exception; every request answered exactly once
 * with its id and op echoed — OKAY when well-formed, ERROR/EOPNOTSUPP when
 * not (requests in flight when the ring was dropped may go unanswered); the
 * device's bytes are a possible result of the valid writes (per-sector tag
 * sets, peers/sector-pattern.ts); read data likewise; at the end no mapping,
 * port or watch left in the backend domain.
 */
import * as fc from 'fast-check';
import { Blkback } from '../../../src/blkback/blkback.js';
import { MemoryBlockDevice } from '../../../src/block/memory.js';
import { OP_DISCARD, OP_FLUSH_DISKCACHE, OP_INDIRECT, OP_READ, OP_WRITE, RSP_EOPNOTSUPP, RSP_ERROR, RSP_OKAY, Xb, type Segment, type WireRequest } from '../peers/blkif-wire.js';
import { HostileFrontend } from '../peers/hostile-frontend.js';
import { fillSector, isZeroSector, pattern, SECTOR, sectorTag } from '../peers/sector-pattern.js';
import { eventually, tick, WorldPool, type World } from '../peers/world.js';
import { Phases } from '../phases.js';
import { check, FuzzViolation, type FuzzHarness, type FuzzSetupOptions, type FuzzTarget } from '../target.js';

const DISK_SECTORS = 512;
const ZERO = -2; // a discarded sector

type Grant = 'ok' | 'ro' | 'other' | 'bad' | 'ended';
type BeOp =
  | { k: 'rw'; write: boolean; s: number; segs: { first: number; last: number }[]; grant: Grant; nseg?: number }
  | { k: 'indirect'; write: boolean; s: number; pages: number; garbage: boolean; badGref: boolean; indirectOp?: number }
  | { k: 'badop'; op: number }
  | { k: 'flush' }
  | { k: 'discard'; s: number; n: number }
  | { k: 'raw'; op: number; bytes: Uint8Array }
  | { k: 'wait' }
  /** req_prod = req_prod_pvt + nrEnts + delta (delta > 0), or + delta (negative / 2^31). */
  | { k: 'jump'; delta: number }
  | { k: 'state'; v: string }
  | { k: 'reconnect' };

interface BeCase {
  engine: 'wasm' | 'js';
  persistent: boolean;
  pages: number;
  ops: BeOp[];
}

const seg = fc.integer({ min: 0, max: 7 }).chain((first) => fc.integer({ min: first, max: 7 }).map((last) => ({ first, last })));
const badSeg = fc.record({ first: fc.integer({ min: 0, max: 255 }), last: fc.integer({ min: 0, max: 255 }) });
const beOp: fc.Arbitrary<BeOp> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record(
      {
        k: fc.constant('rw' as const),
        write: fc.boolean(),
        s: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: DISK_SECTORS - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: DISK_SECTORS - 8, max: DISK_SECTORS + 8 }) }),
        segs: fc.array(fc.oneof({ weight: 12, arbitrary: seg }, { weight: 1, arbitrary: badSeg }), { minLength: 1, maxLength: 12 }),
        grant: fc.oneof({ weight: 10, arbitrary: fc.constant('ok' as const) }, { weight: 3, arbitrary: fc.constantFrom('ro' as const, 'other' as const, 'bad' as const, 'ended' as const) }),
        nseg: fc.integer({ min: 0, max: 255 }),
      },
      { requiredKeys: ['k', 'write', 's', 'segs', 'grant'] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      { k: fc.constant('indirect' as const), write: fc.boolean(), s: fc.integer({ min: 0, max: DISK_SECTORS - 1 }), pages: fc.integer({ min: 0, max: 40 }), garbage: fc.boolean(), badGref: fc.boolean(), indirectOp: fc.integer({ min: 0, max: 255 }) },
      { requiredKeys: ['k', 'write', 's', 'pages', 'garbage', 'badGref'] },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(2, 4, 7, 8, 0x80, 0xff).map((op) => ({ k: 'badop' as const, op })) },
  { weight: 1, arbitrary: fc.constant({ k: 'flush' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('discard' as const), s: fc.integer({ min: 0, max: DISK_SECTORS + 4 }), n: fc.integer({ min: 0, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('raw' as const), op: fc.constantFrom(OP_READ, OP_FLUSH_DISKCACHE, 4, 7, 0x80, 0xff), bytes: fc.uint8Array({ minLength: 112, maxLength: 112 }) }) },
  { weight: 3, arbitrary: fc.constant({ k: 'wait' as const }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: -5, max: -1 }), fc.constant(0x8000_0000)).map((delta) => ({ k: 'jump' as const, delta })) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('1', '3', '5', '6', '1', '0', '4', '7'), fc.string({ maxLength: 4 })).map((v) => ({ k: 'state' as const, v })) },
  { weight: 1, arbitrary: fc.constant({ k: 'reconnect' as const }) },
);
const beCase: fc.Arbitrary<BeCase> = fc.record({
  engine: fc.oneof({ weight: 4, arbitrary: fc.constant('wasm' as const) }, { weight: 1, arbitrary: fc.constant('js' as const) }),
  persistent: fc.boolean(),
  pages: fc.constantFrom(1, 2, 4),
  ops: fc.array(beOp, { maxLength: 30 }),
});

interface Pending {
  what: string;
  id: bigint;
  op: number;
  /** Well-formed: must be OKAY. Malformed: ERROR or EOPNOTSUPP. Undefined: any of the three. */
  valid?: boolean;
  /** May go unanswered (in flight when the ring was dropped). */
  optional: boolean;
  write?: { s: number; n: number; tag: number };
  read?: { s: number; n: number; pages: Uint8Array[]; offs: number[]; allowed: Set<number>[] };
  discard?: { s: number; n: number };
  answers: number;
}

const phases = new Phases();
const stats = new Map<string, number>();
const bump = (k: string): void => void stats.set(k, (stats.get(k) ?? 0) + 1);

/** The initial disk (tag 0 everywhere), made once: a case copies it. */
const INITIAL_DISK = pattern(0, 0, DISK_SECTORS);

async function runBeCase(c: BeCase, pool: WorldPool): Promise<void> {
  const errors: unknown[] = [];
  const onErr = (e: unknown): void => void errors.push(e);
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  let back: Blkback | undefined;
  phases.start();
  try {
    const w = await pool.acquire();
    const device = new MemoryBlockDevice({ sizeBytes: DISK_SECTORS * SECTOR });
    await device.write(0n, [INITIAL_DISK]);
    const watchesBefore = w.xenstored.stats().watches;
    phases.mark('world');
    back = await Blkback.start(w.peer, { backend: w.paths.backend, device, engine: pool.engine(c.engine) });
    phases.mark('start');
    await runIn(c, w, back, device);
    await back.stop();
    back = undefined;
    check(w.peer.grants.activeMappings() === 0, `backend domain still maps ${w.peer.grants.activeMappings()} grants after stop`);
    check(w.peer.evtchn.openPorts().length === 0, 'backend domain ports left open after stop', w.peer.evtchn.openPorts());
    check(w.xenstored.stats().watches === watchesBefore, `watches left after stop: ${w.xenstored.stats().watches - watchesBefore}`);
    phases.mark('stop');
  } catch (e) {
    await back?.stop().catch(() => undefined);
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

async function runIn(c: BeCase, w: World, back: Blkback, device: MemoryBlockDevice): Promise<void> {
  const fe = new HostileFrontend(w.dom0, { backendId: w.peer.domid, frontend: w.paths.frontend, backend: w.paths.backend });
  await fe.connect({ pages: c.pages, persistent: c.persistent });
  phases.mark('connect');
  const model: Set<number>[] = Array.from({ length: DISK_SECTORS }, () => new Set([0]));
  const pending: Pending[] = [];
  let nextId = 0x5eed_0000_0000_0001n;
  let connected = true;
  let seen = 0;
  // An ended grant: granted to the backend, ended, its gref then reused for a
  // grant to another domain (the sim reuses grefs LIFO; held until the end).
  const ended = w.dom0.grants.grantPages(w.peer.domid, 1);
  w.dom0.grants.ungrantPages(ended);
  const reuse = w.dom0.grants.grantPages(7, 1);

  // Another unanswered write (or discard) over `s` — even one on a dropped ring — may still land.
  const overlapsPendingWrite = (s: number, p: Pending): boolean =>
    pending.some((q) => q !== p && q.answers === 0 && q.write && q.write.s <= s && s < q.write.s + q.write.n);

  /** Consume new responses: check each against what was pushed, update the model. */
  const absorb = (): void => {
    fe.reap();
    for (; seen < fe.responses.length; seen++) {
      const r = fe.responses[seen]!;
      const p = pending.find((x) => x.id === r.id);
      if (!p) throw new FuzzViolation(`response for an id never pushed: ${r.id}`, r);
      p.answers++;
      check(p.answers === 1, `${p.what}: answered twice`, r);
      check(r.op === p.op, `${p.what}: response op ${r.op}, request op ${p.op}`);
      if (p.valid === true) check(r.status === RSP_OKAY, `${p.what}: well-formed, answered ${r.status}`);
      else if (p.valid === false) check(r.status === RSP_ERROR || r.status === RSP_EOPNOTSUPP, `${p.what}: malformed, answered ${r.status}`);
      else check([RSP_OKAY, RSP_ERROR, RSP_EOPNOTSUPP].includes(r.status), `${p.what}: status ${r.status}`);
      bump(`status ${r.status}`);
      if (r.status !== RSP_OKAY) continue;
      if (p.write) {
        for (let i = 0; i < p.write.n; i++) if (!overlapsPendingWrite(p.write.s + i, p)) model[p.write.s + i] = new Set([p.write.tag]);
      }
      if (p.read) {
        const rd = p.read;
        for (let i = 0; i < rd.n; i++) {
          const tag = sectorTag(rd.pages[i]!, rd.offs[i]!, rd.s + i);
          const zero = isZeroSector(rd.pages[i]!, rd.offs[i]!);
          const ok = (zero && (rd.allowed[i]!.has(ZERO) || model[rd.s + i]!.has(ZERO))) || (tag >= 0 && (rd.allowed[i]!.has(tag) || model[rd.s + i]!.has(tag)));
          if (!ok) throw new FuzzViolation(`${p.what}: sector ${rd.s + i} read back tag ${tag}, possible ${[...rd.allowed[i]!, ...model[rd.s + i]!]}`);
        }
        bump('reads checked');
      }
    }
  };
  const push = (p: Omit<Pending, 'answers' | 'optional'>, req: WireRequest): void => {
    pending.push({ ...p, answers: 0, optional: !connected });
    fe.push([req]);
  };
  const dropRing = (): void => {
    // Whatever is in flight may never be answered; its writes may or may not have landed.
    for (const p of pending) if (p.answers === 0) p.optional = true;
    connected = false;
  };

  for (const [i, o] of c.ops.entries()) {
    if (!fe.ring && o.k !== 'reconnect' && o.k !== 'state') continue;
    const t0 = phases.now();
    const id = nextId++;
    switch (o.k) {
      case 'rw': {
        const nseg = o.nseg ?? o.segs.length;
        // The backend reads nr_segments segments; slots past what we wrote are zero (gref 0: invalid).
        const eff = o.segs.slice(0, Math.min(nseg, 11));
        const wellSegs = nseg >= 1 && nseg <= 11 && nseg <= o.segs.length && eff.every((x) => x.first <= x.last && x.last <= 7);
        const n = eff.reduce((a, x) => a + Math.max(0, x.last - x.first + 1), 0);
        const inRange = o.s + n <= DISK_SECTORS;
        const g = fe.grant(o.segs.length, o.grant === 'ro', o.grant === 'other' ? 7 : w.peer.domid);
        const grefs = g.grefs.map((x) => (o.grant === 'bad' ? 0xffff_fff0 : o.grant === 'ended' ? ended.grefs[0]! : x));
        const segs: Segment[] = o.segs.map((x, k) => ({ gref: grefs[k]!, first: x.first, last: x.last }));
        const grantOk = o.grant === 'ok' || (o.grant === 'ro' && o.write);
        // blkif.h feature-persistent: the backend may map every grant read-write, so a
        // read-only grant for a write may fail when persistent grants are negotiated.
        const roPersistent = c.persistent && o.grant === 'ro' && o.write && wellSegs && inRange;
        const valid = roPersistent ? undefined : wellSegs && inRange && grantOk;
        const req: WireRequest = { op: o.write ? OP_WRITE : OP_READ, byte1: nseg, id, sector: BigInt(o.s), segs };
        if (o.write) {
          const tag = i + 1;
          let at = o.s;
          if (wellSegs) {
            eff.forEach((x, k) => {
              for (let sct = x.first; sct <= x.last; sct++) fillSector(fe.page(g, k), sct * SECTOR, tag, at++);
            });
          }
          const lands = valid !== false;
          if (lands) for (let k = 0; k < n; k++) model[o.s + k]!.add(tag);
          push({ what: `write#${i}`, id, op: OP_WRITE, valid, write: lands ? { s: o.s, n, tag } : undefined }, req);
        } else {
          const pages: Uint8Array[] = [];
          const offs: number[] = [];
          if (wellSegs) eff.forEach((x, k) => { for (let sct = x.first; sct <= x.last; sct++) (pages.push(fe.page(g, k)), offs.push(sct * SECTOR)); });
          const read = valid !== false ? { s: o.s, n, pages, offs, allowed: Array.from({ length: n }, (_, k) => new Set(model[o.s + k])) } : undefined;
          push({ what: `read#${i}`, id, op: OP_READ, valid, read }, req);
        }
        break;
      }
      case 'indirect': {
        const nData = Math.max(o.pages, 1);
        const data = fe.grant(nData, false);
        const ind = fe.grant(1, true);
        const page = fe.page(ind);
        const dv = new DataView(page.buffer, page.byteOffset, 4096);
        if (o.garbage) for (let k = 0; k < 4096; k++) page[k] = (k * 131 + i * 17) & 0xff;
        else for (let k = 0; k < o.pages; k++) { dv.setUint32(k * 8, data.grefs[k]!, true); dv.setUint8(k * 8 + 4, 0); dv.setUint8(k * 8 + 5, 7); }
        const iop = o.indirectOp ?? (o.write ? OP_WRITE : OP_READ);
        const valid = o.garbage || o.badGref || (iop !== OP_READ && iop !== OP_WRITE) || o.pages === 0 || o.pages <= 11 ? (o.pages === 0 || o.badGref || (iop !== OP_READ && iop !== OP_WRITE) ? false : undefined) : o.s + o.pages * 8 <= DISK_SECTORS ? true : false;
        // Garbage may still decode as valid segments; ≤ 11 segments indirect is allowed by some backends: any status.
        const mayWrite = iop === OP_WRITE && valid !== false;
        if (mayWrite) {
          // Tag data so a landed write is recognised; model: possible at every sector it may touch.
          for (let k = 0; k < nData; k++) for (let sct = 0; sct < 8; sct++) fillSector(fe.page(data, k), sct * SECTOR, i + 1, o.s + k * 8 + sct);
          for (let k = 0; k < o.pages * 8 && o.s + k < DISK_SECTORS; k++) model[o.s + k]!.add(i + 1);
        }
        const req: WireRequest = { op: OP_INDIRECT, byte1: iop, id, sector: BigInt(o.s), segs: [], indirectSegs: o.pages, indirectGrefs: [o.badGref ? 0xffff_fff0 : ind.grefs[0]!] };
        push({ what: `indirect#${i}`, id, op: iop, valid: o.garbage ? (valid === true ? undefined : valid) : valid, write: mayWrite && !o.garbage ? { s: o.s, n: Math.min(o.pages * 8, DISK_SECTORS - o.s), tag: i + 1 } : undefined }, req);
        break;
      }
      case 'badop':
        push({ what: `op${o.op}#${i}`, id, op: o.op, valid: o.op === 2 ? undefined : false }, { op: o.op, byte1: 0, id, sector: 0n, segs: [] });
        break;
      case 'flush':
        push({ what: `flush#${i}`, id, op: OP_FLUSH_DISKCACHE, valid: true }, { op: OP_FLUSH_DISKCACHE, byte1: 0, id, sector: 0n, segs: [] });
        break;
      case 'discard': {
        const valid = o.n > 0 && o.s + o.n <= DISK_SECTORS ? true : o.s + o.n > DISK_SECTORS ? false : undefined;
        for (let k = 0; k < o.n && o.s + k < DISK_SECTORS; k++) model[o.s + k]!.add(ZERO);
        // A discard is a write of zeroes for the model (racing writes keep both outcomes possible).
        push({ what: `discard#${i}`, id, op: OP_DISCARD, valid, write: valid === true ? { s: o.s, n: o.n, tag: ZERO } : undefined }, { op: OP_DISCARD, byte1: 0, id, sector: BigInt(o.s), segs: [], nrSectors: BigInt(o.n) });
        break;
      }
      case 'raw': {
        const b = o.bytes.slice();
        b[0] = o.op;
        new DataView(b.buffer).setBigUint64(8, id, true);
        pending.push({ what: `raw#${i}`, id, op: o.op, valid: o.op === 4 || o.op >= 7 ? false : undefined, answers: 0, optional: !connected });
        fe.pushBytes(b);
        break;
      }
      case 'wait':
        await eventually(() => (absorb(), pending.every((p) => p.answers > 0 || p.optional)), 1000, 1);
        break;
      case 'jump':
        // Always past the ring (overflow): the backend must drop it, not serve stale slots.
        fe.setReqProd(fe.reqProdPvt + (o.delta > 0 && o.delta < 0x8000_0000 ? fe.nrEnts + o.delta : o.delta));
        dropRing();
        // A backend serving a ring sees the overflow and closes: wait for that.
        // One serving none (its ring already dropped) never looks at this
        // req_prod: waiting would only run out the deadline (1 s, once most
        // of a campaign's time).
        if (back.queueCount > 0) await eventually(() => (back.xenbusState as number) === Xb.Closed, 1000, 2);
        break;
      case 'state':
        await fe.setState(o.v);
        dropRing();
        break;
      case 'reconnect': {
        dropRing();
        await fe.setState(Xb.Closed);
        await eventually(() => w.peer.grants.activeMappings() === 0, 1000, 2);
        absorb();
        fe.release();
        await fe.setState(Xb.Initialising);
        try {
          await fe.awaitBackend([Xb.InitWait], 1000);
          await fe.createRing({ pages: c.pages, persistent: c.persistent });
          seen = 0;
          await fe.setState(Xb.Initialised);
          await fe.awaitBackend([Xb.Connected], 1000);
          connected = true;
          bump('reconnected');
        } catch (e) {
          throw new FuzzViolation(`backend did not come back for a fresh, correct frontend: ${String(e)}`);
        }
        break;
      }
    }
    if (fe.ring) absorb();
    await tick();
    phases.op(o.k, t0);
  }
  phases.mark('ops');
  if (fe.ring) {
    await eventually(() => (absorb(), pending.every((p) => p.answers > 0 || p.optional)), 1500, 1);
    const lost = pending.filter((p) => p.answers === 0 && !p.optional).map((p) => p.what);
    check(lost.length === 0, 'requests never answered (hang)', lost);
  }
  phases.mark('answers');
  bump(connected ? 'end connected' : 'end dropped');
  // The device holds a possible outcome of the valid writes.
  const disk = new Uint8Array(DISK_SECTORS * SECTOR);
  await device.read(0n, [disk]);
  for (let s = 0; s < DISK_SECTORS; s++) {
    const tag = sectorTag(disk, s * SECTOR, s);
    const zero = isZeroSector(disk, s * SECTOR);
    if (!((zero && model[s]!.has(ZERO)) || (tag >= 0 && model[s]!.has(tag)))) throw new FuzzViolation(`disk sector ${s} holds tag ${tag}, possible: ${[...model[s]!]}`);
  }
  phases.mark('disk');
  // Close per xenbus: the backend lets go of the ring and every grant.
  await fe.setState(Xb.Closing);
  await fe.setState(Xb.Closed);
  await eventually(() => w.peer.grants.activeMappings() === 0 && w.peer.evtchn.openPorts().length === 0, 1000, 2);
  check(w.peer.grants.activeMappings() === 0, `backend domain still maps ${w.peer.grants.activeMappings()} grants after the frontend closed`);
  check(w.peer.evtchn.openPorts().length === 0, 'backend domain ports left open after the frontend closed', w.peer.evtchn.openPorts());
  fe.release();
  w.dom0.grants.ungrantPages(reuse);
  phases.mark('close');
}

export const backendTarget: FuzzTarget<BeCase> = {
  name: 'backend',
  summary: 'our blkback against a hostile frontend: malformed requests, bad grant refs, garbage indirect pages, req_prod jumps, state flapping',
  caseDeadlineMs: 10_000,
  async setup(opts: FuzzSetupOptions = {}): Promise<FuzzHarness<BeCase>> {
    const pool = new WorldPool({ scratchBytes: 8 << 20, poolPages: 1024 }, opts.freshWorlds);
    return {
      arbitrary: beCase,
      runCase: (c) => runBeCase(c, pool),
      dispose: () => pool.discard(),
      format: (c) => [`engine ${c.engine}, ring pages ${c.pages}, persistent ${c.persistent}`, ...c.ops.map((o, i) => `${String(i).padStart(3)}  ${JSON.stringify(o, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}`)].join('\n'),
      coverage: () => [...stats].sort().map(([k, v]) => `${k}: ${v}`).join('; ') + phases.summary(),
    };
  },
};
