/**
 * The xenstore an unprivileged child gets: a proxy the master runs between
 * the child's socket and xenstored. It speaks the xenstore wire protocol
 * (src/xenstore/wire.ts), forwards a request only if every path it names
 * lies inside the child's own device directories, and answers anything else
 * itself with XS_ERROR `EACCES` (logged). Replies and watch events from
 * xenstored go back unchanged. Upstream is a connection of the child's own:
 * on the simulation one of its own domid (so xenstored's permissions apply
 * as well), on real Xen one the master opened to dom0's xenstored (the
 * allow list is then the only limit). Closing it makes xenstored drop the
 * child's watches and transactions.
 *
 * ```
 *  child ──socket──► XsParser ─► allowed? ──yes──► xenstored (as dom<N>)
 *                                  │ no                │
 *        ◄── XS_ERROR "EACCES" ────┘                   │
 *        ◄──────────── replies, watch events ──────────┘
 * ```
 * Allowed: DIRECTORY, DIRECTORY_PART, READ, GET_PERMS, WATCH, UNWATCH,
 * WRITE, MKDIR, RM, SET_PERMS on a path inside an allowed prefix (relative
 * paths are taken relative to /local/domain/<N>, as xenstored does);
 * TRANSACTION_START/END (a transaction only spans what the rest allows);
 * GET_DOMAIN_PATH of its own domid. Refused: special paths (@...) and every
 * other operation (INTRODUCE, RELEASE, SET_TARGET, RESET_WATCHES, CONTROL...).
 * A framing violation (length > 4096) closes the child's connection.
 */
import type { DomId } from '../platform/types.js';
import { canonicalPath, isChildOf } from '../xenstore/paths.js';
import { createChannelPair } from '../xenstore/transport/in-process.js';
import type { XsTransport } from '../xenstore/transport/types.js';
import type { XenstoreServer } from '../xenstore/server/server.js';
import { XsOp, XsParser, encodeMessage, nulTerminated, splitFirst, splitNulTerminated, type XsMessage } from '../xenstore/wire.js';

export interface XsProxyOptions {
  readonly domid: DomId;
  /** Absolute path prefixes the child may touch (each with everything below it). */
  readonly allow: readonly string[];
  readonly log?: (line: string) => void;
}

const PATH_OPS = new Set<number>([
  XsOp.XS_DIRECTORY, XsOp.XS_DIRECTORY_PART, XsOp.XS_READ, XsOp.XS_GET_PERMS, XsOp.XS_WATCH,
  XsOp.XS_UNWATCH, XsOp.XS_WRITE, XsOp.XS_MKDIR, XsOp.XS_RM, XsOp.XS_SET_PERMS,
]);

export class XenstoreProxy {
  private readonly parser = new XsParser();
  private readonly upstream: XsTransport;
  private closed = false;
  /** Requests refused so far (tests, logs). */
  refused = 0;

  /** `upstream`: our xenstored (a connection of `opts.domid` is made), or a connection to a real one. */
  constructor(private readonly child: XsTransport, upstream: XenstoreServer | XsTransport, private readonly opts: XsProxyOptions) {
    let ours: XsTransport;
    if (isServer(upstream)) {
      let theirs: XsTransport;
      [ours, theirs] = createChannelPair();
      upstream.attachTransport(theirs, opts.domid);
    } else {
      ours = upstream;
    }
    this.upstream = ours;
    ours.onData((chunk) => { if (!this.closed) child.send(chunk); });
    ours.onClose(() => this.close());
    child.onData((chunk) => this.fromChild(chunk));
    child.onClose(() => this.close());
  }

  /** Close both sides: xenstored drops the child's watches and transactions. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.upstream.close();
    this.child.close();
  }

  private fromChild(chunk: Uint8Array): void {
    if (this.closed) return;
    let msgs: XsMessage[];
    try {
      msgs = this.parser.push(chunk);
    } catch (err) {
      this.log(`closing: ${(err as Error).message}`);
      this.close();
      return;
    }
    for (const m of msgs) {
      const why = this.refusal(m);
      if (why === undefined) {
        this.upstream.send(encodeMessage(m.type, m.reqId, m.txId, m.payload));
      } else {
        this.refused++;
        this.log(`refused ${XsOp[m.type] ?? `op ${m.type}`}: ${why}`);
        this.child.send(encodeMessage(XsOp.XS_ERROR, m.reqId, m.txId, nulTerminated(['EACCES'])));
      }
    }
  }

  /** Why `m` may not pass, or undefined if it may. */
  private refusal(m: XsMessage): string | undefined {
    if (m.type === XsOp.XS_TRANSACTION_START || m.type === XsOp.XS_TRANSACTION_END) return undefined;
    if (m.type === XsOp.XS_GET_DOMAIN_PATH) {
      const arg = safe(() => splitNulTerminated(m.payload)[0]);
      return arg === String(this.opts.domid) ? undefined : `domain path of ${JSON.stringify(arg)}`;
    }
    if (!PATH_OPS.has(m.type)) return 'operation not allowed for a job';
    const raw = m.type === XsOp.XS_WRITE ? safe(() => splitFirst(m.payload)[0]) : safe(() => splitNulTerminated(m.payload)[0]);
    if (raw === undefined) return 'malformed payload';
    let abs: string;
    try {
      abs = canonicalPath(raw, this.opts.domid, { allowSpecial: true });
    } catch {
      return `bad path ${JSON.stringify(raw.slice(0, 80))}`;
    }
    if (abs.startsWith('@')) return `special path ${abs}`;
    return this.opts.allow.some((p) => isChildOf(abs, p)) ? undefined : `${abs} is outside the job's devices`;
  }

  private log(line: string): void {
    this.opts.log?.(`xenstore proxy (dom${this.opts.domid}): ${line}`);
  }
}

function isServer(u: XenstoreServer | XsTransport): u is XenstoreServer {
  return typeof (u as Partial<XenstoreServer>).attachTransport === 'function';
}

function safe<T>(f: () => T): T | undefined {
  try { return f(); } catch { return undefined; }
}

