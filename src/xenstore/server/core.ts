/**
 * The xenstored core: the live store, watches, transactions, domains, and
 * the dispatch of each request to its handler. Transport-free: connections
 * hand it parsed messages. Every request gets exactly one reply (its own
 * type, or XS_ERROR with the errno name); nothing a client sends can throw
 * out of `handle`.
 */
import type { DomId, XsPerm } from '../../platform/types.js';
import { XenstoreError, withoutStacks } from '../errors.js';
import {
  XENSTORE_PAYLOAD_MAX, XsOp, bytesToString, concatBytes, isKnownOp, nulTerminated, splitFirst,
  splitNulTerminated, splitNulTerminatedBytes,
} from '../wire.js';
import { canonicalPath, domainPath } from '../paths.js';
import { formatPerm, parsePerms } from '../perms.js';
import { changedPaths, Db } from './tree.js';
import { WatchTable } from './watches.js';
import { Transaction } from './transactions.js';
import { type OpContext, type WatchFire, opDirectory, opGetPerms, opMkdir, opRead, opRm, opSetPerms, opWrite } from './ops.js';
import { Connection, ConnState, type ConnHost, type ConnSink } from './connection.js';
import { DEFAULT_QUOTA, type XsQuota } from './quota.js';

const OK = nulTerminated(['OK']);

/** What `XsCore.checkpoint` keeps (opaque to callers). */
export interface XsCheckpoint {
  readonly db: Db;
  readonly generation: number;
  readonly nextTxId: number;
  readonly introduced: readonly DomId[];
}

export class XsCore implements ConnHost {
  db = Db.create();
  readonly watches = new WatchTable();
  readonly connections = new Set<Connection>();
  readonly quota: XsQuota;
  private readonly introduced = new Set<DomId>([0]);
  private readonly targets = new Map<DomId, DomId>();
  private nextTxId = 1;
  private nextConnId = 1;
  /** Called with every connection dropped for misbehaviour (for logs). */
  onDrop: ((conn: Connection, reason: string) => void) | undefined;

  constructor(quota: Partial<XsQuota> = {}) {
    this.quota = { ...DEFAULT_QUOTA, ...quota };
  }

  get outputLimit(): number { return this.quota.outputBytesPerConnection; }

  targetOf(domid: DomId): DomId | undefined { return this.targets.get(domid); }

  addConnection(domid: DomId, sink: ConnSink): Connection {
    const c = new Connection(this.nextConnId++, domid, sink, this);
    this.connections.add(c);
    return c;
  }

  /** The transport went away, or the connection misbehaved: forget it. */
  dropped(conn: Connection, reason: string): void {
    if (!this.connections.delete(conn)) return;
    this.watches.removeAll(conn);
    const notify = conn.state === ConnState.Open && reason !== 'closed';
    conn.close();
    if (notify) this.onDrop?.(conn, reason);
  }

  // ------------------------------------------------------------ checkpoints

  /**
   * The store as it is now, for `restore` (a harness reusing one server
   * across runs: the fuzzer). The tree is persistent, so this is a root
   * reference plus the counters a fresh run would see.
   */
  checkpoint(): XsCheckpoint {
    return { db: this.db.clone(), generation: this.db.generation, nextTxId: this.nextTxId, introduced: [...this.introduced] };
  }

  /** Nodes created, removed or changed since `cp` (tops of created/removed subtrees). */
  changedSince(cp: XsCheckpoint): string[] {
    return changedPaths(cp.db.root, this.db.root);
  }

  /**
   * Put the store back as it was at `cp`. Refused while any watch or
   * transaction is open: they would outlive the tree they were made on.
   */
  restore(cp: XsCheckpoint): void {
    let transactions = 0;
    for (const c of this.connections) transactions += c.transactions.size;
    if (this.watches.size > 0 || transactions > 0) {
      throw new XenstoreError('EBUSY', `cannot restore a checkpoint with ${this.watches.size} watch(es) and ${transactions} transaction(s) open`);
    }
    this.db = cp.db.clone();
    this.db.generation = cp.generation;
    this.nextTxId = cp.nextTxId;
    this.introduced.clear();
    for (const d of cp.introduced) this.introduced.add(d);
  }

  // ------------------------------------------------------------ domains

  isDomainIntroduced(domid: DomId): boolean { return this.introduced.has(domid); }

  introduceDomain(domid: DomId): void {
    this.introduced.add(domid);
    this.fire({ path: '@introduceDomain', perms: [], removal: false });
  }

  /** Drop the domain's connections (their watches and transactions go too) and fire @releaseDomain. */
  releaseDomain(domid: DomId): void {
    this.introduced.delete(domid);
    this.targets.delete(domid);
    for (const c of [...this.connections]) if (c.domid === domid) this.dropped(c, 'closed');
    this.fire({ path: '@releaseDomain', perms: [], removal: false });
  }

  private fire(ev: WatchFire): void {
    this.watches.fire(ev);
  }

  // ------------------------------------------------------------ requests

  handle(conn: Connection, type: number, reqId: number, txId: number, payload: Uint8Array): void {
    let reply: Uint8Array;
    try {
      // A refusal becomes an errno reply at once: its stack would be thrown away.
      reply = withoutStacks(() => this.dispatch(conn, type, txId, payload));
      if (reply.length > XENSTORE_PAYLOAD_MAX) throw new XenstoreError('E2BIG', 'reply too large');
    } catch (err) {
      const errno = err instanceof XenstoreError ? err.errno : 'EIO';
      if (!(err instanceof XenstoreError)) this.onDrop?.(conn, `internal error: ${(err as Error)?.stack ?? err}`);
      conn.reply(XsOp.XS_ERROR, reqId, txId, nulTerminated([errno]));
      return;
    }
    conn.reply(type, reqId, txId, reply);
  }

  private dispatch(conn: Connection, type: number, txId: number, payload: Uint8Array): Uint8Array {
    if (!isKnownOp(type)) throw new XenstoreError('ENOSYS', `unknown operation ${type}`);
    const path = (p: string) => canonicalPath(p, conn.domid);
    switch (type) {
      case XsOp.XS_READ:
        return this.db_(conn, txId, (ctx) => opRead(ctx, path(oneArg(payload))));
      case XsOp.XS_DIRECTORY: {
        const names = this.db_(conn, txId, (ctx) => opDirectory(ctx, path(oneArg(payload)))).names;
        const out = nulTerminated(names);
        if (out.length > XENSTORE_PAYLOAD_MAX) throw new XenstoreError('E2BIG', 'use DIRECTORY_PART');
        return out;
      }
      case XsOp.XS_DIRECTORY_PART: {
        const [p, off] = args(payload, 2);
        return directoryPart(this.db_(conn, txId, (ctx) => opDirectory(ctx, path(p!))), off!);
      }
      case XsOp.XS_GET_PERMS:
        return nulTerminated(this.db_(conn, txId, (ctx) => opGetPerms(ctx, path(oneArg(payload)))).map(formatPerm));
      case XsOp.XS_WRITE: {
        const [p, value] = splitFirst(payload);
        const abs = path(p);
        const v = value.slice();
        this.mutate(conn, txId, (ctx) => opWrite(ctx, abs, v));
        return OK;
      }
      case XsOp.XS_MKDIR: {
        const abs = path(oneArg(payload));
        this.mutate(conn, txId, (ctx) => opMkdir(ctx, abs));
        return OK;
      }
      case XsOp.XS_RM: {
        const abs = path(oneArg(payload));
        this.mutate(conn, txId, (ctx) => opRm(ctx, abs));
        return OK;
      }
      case XsOp.XS_SET_PERMS: {
        const [p, ...rest] = splitNulTerminated(payload);
        if (p === undefined) throw new XenstoreError('EINVAL', 'missing path');
        const abs = path(p);
        const perms: XsPerm[] = parsePerms(rest.filter((s, i) => !(s === '' && i === rest.length - 1)));
        this.mutate(conn, txId, (ctx) => opSetPerms(ctx, abs, perms));
        return OK;
      }
      case XsOp.XS_WATCH: return this.watch(conn, payload);
      case XsOp.XS_UNWATCH: {
        const [wpath, token] = args(payload, 2, splitNulTerminatedBytes);
        const abs = canonicalPath(wpath!, conn.domid, { allowSpecial: true });
        if (!this.watches.remove(conn, abs, token!)) throw new XenstoreError('ENOENT', `no watch ${wpath} ${token}`);
        return OK;
      }
      case XsOp.XS_RESET_WATCHES:
        this.watches.removeAll(conn);
        conn.transactions.clear();
        return OK;
      case XsOp.XS_TRANSACTION_START: {
        if (txId !== 0) throw new XenstoreError('EBUSY', 'TRANSACTION_START inside a transaction');
        if (conn.transactions.size >= this.quota.transactionsPerConnection) throw new XenstoreError('ENOSPC', 'transaction quota');
        const id = this.allocTxId();
        conn.transactions.set(id, new Transaction(id, this.db));
        return nulTerminated([String(id)]);
      }
      case XsOp.XS_TRANSACTION_END: {
        const arg = oneArg(payload);
        if (arg !== 'T' && arg !== 'F') throw new XenstoreError('EINVAL', 'TRANSACTION_END wants T or F');
        const tx = conn.transactions.get(txId);
        if (!tx) throw new XenstoreError('ENOENT', `no transaction ${txId}`);
        conn.transactions.delete(txId);
        if (arg === 'T') this.commit(conn, tx);
        return OK;
      }
      case XsOp.XS_GET_DOMAIN_PATH:
        return nulTerminated([domainPath(domidArg(oneArg(payload)))]);
      case XsOp.XS_IS_DOMAIN_INTRODUCED:
        return nulTerminated([this.introduced.has(domidArg(oneArg(payload))) ? 'T' : 'F']);
      case XsOp.XS_INTRODUCE: {
        privileged(conn);
        const [d] = args(payload, 3);
        const domid = domidArg(d!);
        if (domid === 0) throw new XenstoreError('EINVAL', 'cannot introduce dom0');
        this.introduceDomain(domid);
        return OK;
      }
      case XsOp.XS_RELEASE: {
        privileged(conn);
        const domid = domidArg(oneArg(payload));
        if (domid === 0) throw new XenstoreError('EINVAL', 'cannot release dom0');
        if (!this.introduced.has(domid)) throw new XenstoreError('ENOENT', `domain ${domid} not introduced`);
        this.releaseDomain(domid);
        return OK;
      }
      case XsOp.XS_RESUME: {
        privileged(conn);
        if (!this.introduced.has(domidArg(oneArg(payload)))) throw new XenstoreError('ENOENT', 'domain not introduced');
        return OK;
      }
      case XsOp.XS_SET_TARGET: {
        privileged(conn);
        const [d, t] = args(payload, 2);
        this.targets.set(domidArg(d!), domidArg(t!));
        return OK;
      }
      case XsOp.XS_CONTROL: {
        const [cmd, ...rest] = splitNulTerminated(payload);
        privileged(conn);
        if (cmd === 'help') return nulTerminated(['check\nprint\nhelp\n']);
        if (cmd === 'check') return OK;
        if (cmd === 'print') { void rest; return OK; }
        throw new XenstoreError('EINVAL', `unknown control command ${cmd}`);
      }
      case XsOp.XS_WATCH_EVENT:
      case XsOp.XS_ERROR:
        throw new XenstoreError('EINVAL', 'not a request type');
    }
  }

  private watch(conn: Connection, payload: Uint8Array): Uint8Array {
    // Byte strings: the token comes back in events byte for byte.
    const [wpath, token] = args(payload, 2, splitNulTerminatedBytes);
    const abs = canonicalPath(wpath!, conn.domid, { allowSpecial: true });
    if (this.watches.has(conn, abs, token!)) throw new XenstoreError('EEXIST', `watch ${wpath} ${token} exists`);
    if (this.watches.countFor(conn) >= this.quota.watchesPerConnection) throw new XenstoreError('E2BIG', 'watch quota');
    const w = { owner: conn, abs, token: token!, relative: !wpath!.startsWith('/') && !wpath!.startsWith('@') };
    this.watches.add(w);
    // The immediate event, sent after the WATCH reply (the reply is queued
    // by our caller, so defer): "triggered once straight away, with <path> equal to <wpath>".
    queueMicrotask(() => { if (conn.state === ConnState.Open && this.watches.has(conn, abs, w.token)) this.watches.deliver(w, abs); });
    return OK;
  }

  private allocTxId(): number {
    do { this.nextTxId = (this.nextTxId + 1) >>> 0; } while (this.nextTxId === 0 || this.txInUse(this.nextTxId));
    return this.nextTxId;
  }

  private txInUse(id: number): boolean {
    for (const c of this.connections) if (c.transactions.has(id)) return true;
    return false;
  }

  private context(conn: Connection, db: Db, tx?: Transaction): OpContext {
    const none = () => undefined;
    return {
      db, who: conn.who, quota: this.quota, fired: [],
      touch: tx ? (p) => tx.touched.add(p) : none,
      rely: tx ? (p) => tx.relied.add(p) : none,
    };
  }

  private transactionOf(conn: Connection, txId: number): Transaction {
    const tx = conn.transactions.get(txId);
    if (!tx) throw new XenstoreError('ENOENT', `no transaction ${txId}`);
    return tx;
  }

  /** A read-only op, on the live store or inside a transaction. */
  private db_<T>(conn: Connection, txId: number, op: (ctx: OpContext) => T): T {
    if (txId === 0) return op(this.context(conn, this.db));
    const tx = this.transactionOf(conn, txId);
    return op(this.context(conn, tx.db, tx));
  }

  /** A change: applied to the live store at once (watches fire), or logged in the transaction. */
  private mutate(conn: Connection, txId: number, op: (ctx: OpContext) => void): void {
    if (txId === 0) {
      const ctx = this.context(conn, this.db);
      op(ctx);
      for (const ev of ctx.fired) this.fire(ev);
      return;
    }
    const tx = this.transactionOf(conn, txId);
    op(this.context(conn, tx.db, tx));
    tx.log.push(op);
  }

  private commit(conn: Connection, tx: Transaction): void {
    if (tx.conflictsWith(this.db)) throw new XenstoreError('EAGAIN', 'transaction conflicts with a later commit');
    const next = this.db.clone();
    const ctx = this.context(conn, next);
    for (const op of tx.log) op(ctx); // throws: live store untouched
    this.db = next;
    for (const ev of ctx.fired) this.fire(ev);
  }
}

/** `<arg>|`: exactly one NUL-terminated string spanning the payload. */
function oneArg(payload: Uint8Array): string {
  if (payload.length === 0 || payload[payload.length - 1] !== 0 || payload.indexOf(0) !== payload.length - 1) {
    throw new XenstoreError('EINVAL', 'expected one NUL-terminated argument');
  }
  return bytesToString(payload.subarray(0, payload.length - 1));
}

/** At least `n` NUL-terminated strings (extra reserved ones are ignored). */
function args(payload: Uint8Array, n: number, split: (p: Uint8Array) => string[] = splitNulTerminated): string[] {
  const parts = split(payload);
  if (parts.length < n) throw new XenstoreError('EINVAL', `expected ${n} arguments`);
  return parts;
}

function domidArg(s: string): DomId {
  if (!/^\d{1,5}$/.test(s) || Number(s) > 0xffff) throw new XenstoreError('EINVAL', `bad domid ${JSON.stringify(s)}`);
  return Number(s);
}

function privileged(conn: Connection): void {
  if (!conn.who.privileged) throw new XenstoreError('EACCES', 'dom0 only');
}

/**
 * DIRECTORY_PART reply: `<gencnt>|<child>|*`, children starting at byte
 * `offset` of the full `<child>|*` list, as many as fit; an extra empty
 * string (a second NUL) marks the end of the list.
 */
function directoryPart(dir: { names: string[]; gen: number }, offsetArg: string): Uint8Array {
  if (!/^\d+$/.test(offsetArg)) throw new XenstoreError('EINVAL', 'bad offset');
  const offset = Number(offsetArg);
  const head = nulTerminated([String(dir.gen)]);
  let at = 0;
  let i = 0;
  while (i < dir.names.length && at < offset) at += Buffer.byteLength(dir.names[i++]!) + 1;
  if (at !== offset) throw new XenstoreError('EINVAL', 'offset is not at a child boundary');
  const parts: Uint8Array[] = [head];
  let size = head.length;
  for (; i < dir.names.length; i++) {
    const b = nulTerminated([dir.names[i]!]);
    if (size + b.length + 1 > XENSTORE_PAYLOAD_MAX) return concatBytes(parts);
    parts.push(b);
    size += b.length;
  }
  parts.push(new Uint8Array(1));
  return concatBytes(parts);
}
