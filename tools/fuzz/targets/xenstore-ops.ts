/**
 * The `xenstore` target's operation level: random sequences of xenstore
 * operations by three domains (dom0 privileged, dom1, dom2) against the
 * simulated xenstored (src/xenstore/server), through the XenStore client
 * interface, checked step by step against model/xenstore-model.ts. At the
 * end: every watch saw the events it must and none it may not, and once
 * every client closes the server holds no connection, watch or transaction.
 */
import * as fc from 'fast-check';
import { XenpvError } from '../../../src/errors.js';
import type { XenStore, XsOps, XsPerm, XsWatch, XsWatchEvent } from '../../../src/platform/types.js';
import { canonical, formatPerms, XsModel, type ModelTx, type Outcome, type PermEntry, type Result, type Tree, type XsModelOp } from '../model/xenstore-model.js';
import { check, FuzzViolation } from '../target.js';

const NAMES = ['a', 'b'];
export interface PathGen { base: 'own' | 'other' | 'rel' | 'abs' | 'bad'; segs: number[]; pick: number }
export interface XsOpGen {
  dom: 0 | 1 | 2;
  kind: 'write' | 'mkdir' | 'rm' | 'read' | 'directory' | 'getPerms' | 'setPerms' | 'txStart' | 'txCommit' | 'txAbort' | 'watch' | 'unwatch';
  inTx: boolean;
  path: PathGen;
  value: string;
  perms: Array<{ dom: number; perm: 'n' | 'r' | 'w' | 'b' }>;
  token: number;
}
export interface XsOpsCase { k: 'ops'; ops: XsOpGen[] }

const pathGen: fc.Arbitrary<PathGen> = fc.record({
  base: fc.oneof({ weight: 10, arbitrary: fc.constantFrom('own' as const, 'rel' as const) }, { weight: 4, arbitrary: fc.constantFrom('other' as const, 'abs' as const) }, { weight: 1, arbitrary: fc.constant('bad' as const) }),
  segs: fc.array(fc.nat({ max: NAMES.length - 1 }), { maxLength: 2 }),
  pick: fc.nat({ max: 7 }),
});
const permGen = fc.constantFrom('n' as const, 'r' as const, 'w' as const, 'b' as const);
const opGen: fc.Arbitrary<XsOpGen> = fc.record({
  dom: fc.constantFrom(0 as const, 1 as const, 2 as const),
  kind: fc.oneof(
    { weight: 8, arbitrary: fc.constant('write' as const) },
    { weight: 3, arbitrary: fc.constant('read' as const) },
    { weight: 4, arbitrary: fc.constantFrom('mkdir' as const, 'rm' as const, 'directory' as const) },
    { weight: 4, arbitrary: fc.constantFrom('getPerms' as const, 'setPerms' as const, 'watch' as const) },
    { weight: 3, arbitrary: fc.constantFrom('txStart' as const, 'txCommit' as const) },
    { weight: 1, arbitrary: fc.constantFrom('txAbort' as const, 'unwatch' as const) },
  ),
  inTx: fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  path: pathGen,
  value: fc.oneof(fc.constantFrom('', 'x', '1', 'hello'), fc.string({ maxLength: 12 })),
  perms: fc.array(fc.record({ dom: fc.constantFrom(0, 1, 2), perm: permGen }), { minLength: 1, maxLength: 3 }),
  token: fc.nat({ max: 2 }),
});
export const xsOpsCase: fc.Arbitrary<XsOpsCase> = fc.record({ k: fc.constant('ops' as const), ops: fc.array(opGen, { minLength: 1, maxLength: 40, size: 'medium' }) });

const BAD = ['/a//b', '/a/', '', 'a b', '/local/domain/1/'];
export function pathOf(dom: number, g: PathGen): string {
  const rest = g.segs.map((s) => NAMES[s]);
  switch (g.base) {
    case 'own': return ['/local/domain/' + dom, ...rest].join('/');
    case 'other': return ['/local/domain/' + ((dom + 1 + (g.pick % 2)) % 3), ...rest].join('/');
    case 'rel': return rest.length ? rest.join('/') : 'a';
    case 'abs': return '/' + [['tool', 'vm', 'a', 'local'][g.pick % 4], ...rest].join('/');
    case 'bad': return BAD[g.pick % BAD.length];
  }
}

function permsOf(dom: number, o: XsOpGen): PermEntry[] {
  // Unprivileged domains mostly keep themselves as owner (changing owner is EPERM).
  const first = o.perms[0];
  const owner = dom !== 0 && o.token !== 2 ? dom : first.dom;
  return [{ domid: owner, perm: first.perm }, ...o.perms.slice(1).map((p) => ({ domid: p.dom, perm: p.perm }))];
}

function describe(o: XsOpGen): string {
  const p = o.kind === 'txStart' || o.kind === 'txCommit' || o.kind === 'txAbort' ? '' : ` ${JSON.stringify(pathOf(o.dom, o.path))}`;
  const extra = o.kind === 'write' ? ` = ${JSON.stringify(o.value)}` : o.kind === 'setPerms' ? ` ${formatPerms(permsOf(o.dom, o))}` : o.kind === 'watch' || o.kind === 'unwatch' ? ` token t${o.token}` : '';
  return `dom${o.dom}${o.inTx ? ' (tx)' : ''} ${o.kind}${p}${extra}`;
}
export function formatOpsCase(c: XsOpsCase): string {
  return c.ops.map((o, i) => `  ${String(i).padStart(3)} ${describe(o)}`).join('\n');
}

interface Server {
  connect(domid: number): XenStore & { transactionStart(): Promise<number>; transactionEnd(tx: number, commit: boolean): Promise<void>; ops(tx: number): XsOps };
  stats(): { connections: number; watches: number; transactions: number };
  close(): Promise<void>;
}

const show = (r: Result) => ('ok' in r ? `ok ${JSON.stringify(r.ok)}` : r.err);

async function attempt(f: () => Promise<string>): Promise<Result> {
  try {
    return { ok: await f() };
  } catch (e) {
    if (e instanceof XenpvError) {
      const errno = (e as XenpvError & { errno?: string }).errno;
      if (errno) return { err: errno };
      if (e.code === 'invalid-argument') return { err: 'EINVAL' };
      return { err: `${e.code}: ${e.message}` };
    }
    throw new FuzzViolation(`a xenstore call threw a non-XenpvError: ${(e as Error)?.stack ?? e}`);
  }
}

async function snapshot(c: XenStore): Promise<Tree> {
  const t: Tree = new Map();
  const walk = async (p: string): Promise<void> => {
    const perms = (await c.getPermissions(p)).map((x: XsPerm) => ({ domid: x.domid, perm: x.perm }));
    t.set(p, { value: await c.read(p), perms });
    for (const k of await c.directory(p)) await walk(p === '/' ? `/${k}` : `${p}/${k}`);
  };
  await walk('/');
  return t;
}

interface LiveWatch { dom: number; token: string; path: string; rel: boolean; w: XsWatch; seen: XsWatchEvent[]; done: Promise<void>; model: import('../model/xenstore-model.js').ModelWatch | undefined }

export async function runOpsCase(c: XsOpsCase, makeServer: () => Server): Promise<void> {
  const server = makeServer();
  const clients = [0, 1, 2].map((d) => server.connect(d));
  const c0 = clients[0];
  try {
    for (const d of [1, 2]) {
      await c0.mkdir(`/local/domain/${d}`);
      await c0.setPermissions(`/local/domain/${d}`, [{ domid: d, perm: 'n' }]);
    }
    const model = new XsModel(await snapshot(c0));
    const txs: Array<{ id: number; m: ModelTx } | undefined> = [undefined, undefined, undefined];
    const watches: LiveWatch[] = [];
    const ping = async () => {
      for (const cl of clients) await cl.getDomainPath(0);
      await new Promise((r) => setImmediate(r));
    };

    for (let i = 0; i < c.ops.length; i++) {
      const o = c.ops[i];
      const cl = clients[o.dom];
      const tx = o.inTx ? txs[o.dom] : undefined;
      const path = pathOf(o.dom, o.path);
      let outcomes: Outcome[];
      let actual: Result;
      let after: ((r: Result) => void) | undefined;
      const ops: XsOps = tx ? cl.ops(tx.id) : cl;
      const mop = (op: XsModelOp) => (tx ? model.txStep(tx.m, op) : model.step(o.dom, op));
      switch (o.kind) {
        case 'write':
          outcomes = mop({ op: 'write', path, value: o.value });
          actual = await attempt(async () => { await ops.write(path, o.value); return ''; });
          break;
        case 'mkdir':
          outcomes = mop({ op: 'mkdir', path });
          actual = await attempt(async () => { await ops.mkdir(path); return ''; });
          break;
        case 'rm':
          outcomes = mop({ op: 'rm', path });
          actual = await attempt(async () => { await ops.rm(path); return ''; });
          break;
        case 'read':
          outcomes = mop({ op: 'read', path });
          actual = await attempt(() => ops.read(path));
          break;
        case 'directory':
          outcomes = mop({ op: 'directory', path });
          actual = await attempt(async () => (await ops.directory(path)).sort().join('\n'));
          break;
        case 'getPerms':
          outcomes = mop({ op: 'getPerms', path });
          actual = await attempt(async () => formatPerms((await ops.getPermissions(path)).map((x) => ({ domid: x.domid, perm: x.perm }))));
          break;
        case 'setPerms': {
          const perms = permsOf(o.dom, o);
          outcomes = mop({ op: 'setPerms', path, perms });
          actual = await attempt(async () => { await ops.setPermissions(path, perms.map((p) => ({ domid: p.domid, perm: p.perm }))); return ''; });
          break;
        }
        case 'txStart': {
          if (txs[o.dom]) continue; // one open transaction per domain in this target
          const id = await attempt(async () => String(await cl.transactionStart()));
          if (!('ok' in id)) throw new FuzzViolation(`op #${i} ${describe(o)}: transaction start failed: ${show(id)}`);
          txs[o.dom] = { id: Number(id.ok), m: model.txStart(o.dom) };
          continue;
        }
        case 'txCommit':
        case 'txAbort': {
          const open = txs[o.dom];
          if (!open) continue;
          txs[o.dom] = undefined;
          outcomes = o.kind === 'txCommit' ? model.txCommit(open.m) : [{ result: { ok: '' }, apply: () => undefined }];
          actual = await attempt(async () => { await cl.transactionEnd(open.id, o.kind === 'txCommit'); return ''; });
          break;
        }
        case 'watch': {
          const token = `t${o.token}`;
          // Relative watches stay relative: their events must come back relative (xenstore.txt).
          const wpath = o.path.base === 'bad' || o.path.base === 'rel' ? path : canonical(path, o.dom) ?? path;
          if (watches.some((w) => w.dom === o.dom && w.token === token)) continue; // the client refuses reused tokens itself
          outcomes = model.addWatch(o.dom, wpath, token);
          const live: LiveWatch = { dom: o.dom, token, path: wpath, rel: !wpath.startsWith('/'), w: undefined as unknown as XsWatch, seen: [], done: Promise.resolve(), model: undefined };
          actual = await attempt(async () => { live.w = await cl.watch(wpath, token); return ''; });
          after = (r) => {
            if (!('ok' in r)) return;
            live.model = model.watches[model.watches.length - 1];
            live.done = (async () => { for await (const ev of live.w) live.seen.push(ev); })();
            watches.push(live);
          };
          break;
        }
        case 'unwatch': {
          const live = watches.find((w) => w.dom === o.dom && w.token === `t${o.token}`);
          if (!live) continue;
          await ping(); // drain events queued before the unwatch
          watches.splice(watches.indexOf(live), 1);
          const mi = model.watches.indexOf(live.model!);
          if (mi >= 0) model.watches.splice(mi, 1);
          actual = await attempt(async () => { await live.w.unwatch(); return ''; });
          outcomes = [{ result: { ok: '' }, apply: () => undefined }];
          await live.done;
          checkWatch(live, i);
          break;
        }
      }
      const match = outcomes.find((x) => JSON.stringify(x.result) === JSON.stringify(actual));
      if (!match) {
        throw new FuzzViolation(`op #${i} ${describe(o)}: server answered ${show(actual)}, model allows ${outcomes.map((x) => show(x.result)).join(' | ')}`);
      }
      match.apply();
      after?.(actual);
      const key = `${o.kind}${tx ? '(tx)' : ''} ${'ok' in actual ? 'ok' : actual.err}`;
      xsStats.set(key, (xsStats.get(key) ?? 0) + 1);
    }
    // End: abort what is open, drain and check watches, then leaks.
    for (let d = 0; d < 3; d++) {
      const open = txs[d];
      if (open) await clients[d].transactionEnd(open.id, false);
    }
    await ping();
    for (const live of watches) {
      await live.w.unwatch();
      await live.done;
      checkWatch(live, c.ops.length);
    }
    const st = server.stats();
    check(st.watches === 0 && st.transactions === 0, `after unwatching and ending everything the server still holds ${st.watches} watches, ${st.transactions} transactions`);
  } finally {
    for (const cl of clients) await cl.close();
    const st = server.stats();
    await server.close();
    check(st.connections === 0 && st.watches === 0 && st.transactions === 0, `after every client closed the server still holds ${JSON.stringify(st)}`);
  }
}

/** Outcome counts across cases (for coverage reports). */
export const xsStats = new Map<string, number>();

function checkWatch(live: LiveWatch, at: number): void {
  const m = live.model!;
  xsStats.set('watch events seen', (xsStats.get('watch events seen') ?? 0) + live.seen.length);
  xsStats.set('watch must paths', (xsStats.get('watch must paths') ?? 0) + m.must.size);
  const seen = new Set<string>();
  for (const ev of live.seen) {
    check(ev.token === live.token, `watch ${live.token} got an event with token ${ev.token}`);
    check(live.rel === !ev.path.startsWith('/'), `dom${live.dom} watch ${live.path} (${live.token}) got event path ${ev.path}: a ${live.rel ? 'relative' : 'absolute'} watch gets ${live.rel ? 'relative' : 'absolute'} event paths`);
    const abs = live.rel ? `/local/domain/${live.dom}/${ev.path}` : ev.path;
    if (!m.must.has(abs) && !m.may.has(abs)) {
      throw new FuzzViolation(`by op #${at}: dom${live.dom} watch ${live.path} (${live.token}) got an event for ${ev.path}, which no change fired`, { seen: live.seen, must: [...m.must.keys()], may: [...m.may.keys()] });
    }
    seen.add(abs);
  }
  for (const p of m.must.keys()) {
    if (!seen.has(p)) throw new FuzzViolation(`by op #${at}: dom${live.dom} watch ${live.path} (${live.token}) never got an event for ${p}`, { seen: live.seen, must: [...m.must.keys()], may: [...m.may.keys()] });
  }
}
