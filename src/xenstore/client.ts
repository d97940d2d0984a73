/**
 * xenstore client: implements the XenStore interface over any XsTransport.
 * Many requests may be in flight; replies are matched by req_id. Watch
 * events are routed by token to their XsWatch.
 */
import type { DomId, XenStore, XsOps, XsPerm, XsWatch, XsWatchEvent } from '../platform/types.js';
import { DisconnectedError, InvalidArgumentError, ProtocolError } from '../errors.js';
import { XenstoreError, isXenstoreError, withoutStacks } from './errors.js';
import {
  XsFramingError, XsOp, XsParser, XsMessage, bytesToString, concatBytes, encodeMessage, nulTerminated,
  splitNulTerminated,
} from './wire.js';
import { formatPerm, parsePerms } from './perms.js';
import type { XsTransport } from './transport/types.js';
import { WatchQueue } from './watch-queue.js';
import { debug } from '../util/debug.js';

const log = debug('xenpv:xenstore');

/** A request's payload for the log: NUL-separated strings, shortened. */
function preview(payload: Uint8Array): string {
  const s = Buffer.from(payload.subarray(0, 120)).toString('latin1').replace(/\0/g, ' ').trimEnd();
  return payload.length > 120 ? `${s}...` : s;
}

interface Pending {
  type: XsOp;
  /** The request payload, kept to name its subject in an error. */
  payload: Uint8Array;
  resolve(m: XsMessage): void;
  reject(e: Error): void;
}

enum ClientState { Open, Closed }

export const DEFAULT_TRANSACTION_RETRIES = 16;

export class XenstoreClient implements XenStore {
  private readonly parser = new XsParser();
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<string, WatchQueue>();
  private nextReqId = 1;
  private nextToken = 1;
  private state = ClientState.Open;
  private closeReason: Error | undefined;
  private readonly root: XsOps;

  constructor(private readonly transport: XsTransport) {
    const t = transport as Partial<XsTransport> | undefined;
    if (typeof t?.send !== 'function' || typeof t.onData !== 'function' || typeof t.onClose !== 'function' || typeof t.close !== 'function') {
      throw new InvalidArgumentError('transport', 'must be an XsTransport (send, onData, onClose, close)');
    }
    transport.onData((chunk) => this.receive(chunk));
    transport.onClose((err) => this.shutdown(new DisconnectedError('xenstore connection closed', { cause: err })));
    this.root = this.ops(0);
  }

  /** Requests awaiting a reply (for leak checks). */
  get inFlight(): number { return this.pending.size; }

  // ------------------------------------------------------------- XsOps
  read(path: string): Promise<string> { return this.root.read(path); }
  tryRead(path: string): Promise<string | undefined> { return this.root.tryRead(path); }
  write(path: string, value: string | Uint8Array): Promise<void> { return this.root.write(path, value); }
  mkdir(path: string): Promise<void> { return this.root.mkdir(path); }
  rm(path: string): Promise<void> { return this.root.rm(path); }
  directory(path: string): Promise<string[]> { return this.root.directory(path); }
  getPermissions(path: string): Promise<XsPerm[]> { return this.root.getPermissions(path); }
  setPermissions(path: string, perms: XsPerm[]): Promise<void> { return this.root.setPermissions(path, perms); }

  /** READ returning raw bytes (values may hold any octets). */
  async readBytes(path: string, tx = 0): Promise<Uint8Array> {
    return (await this.request(XsOp.XS_READ, tx, nulTerminated([path]))).payload;
  }

  async getDomainPath(domid: DomId): Promise<string> {
    return single(await this.request(XsOp.XS_GET_DOMAIN_PATH, 0, nulTerminated([String(domid)])));
  }

  async isDomainIntroduced(domid: DomId): Promise<boolean> {
    return single(await this.request(XsOp.XS_IS_DOMAIN_INTRODUCED, 0, nulTerminated([String(domid)]))) === 'T';
  }

  async watch(path: string, token?: string): Promise<XsWatch> {
    const tok = token ?? `xenpv-w${this.nextToken++}`;
    if (this.watches.has(tok)) throw new InvalidArgumentError('token', `watch token ${tok} already in use on this connection`);
    const q = new WatchQueue(path, tok, () => this.unwatch(path, tok));
    // Registered before the request goes out: the immediate event may follow the reply at once.
    this.watches.set(tok, q);
    try {
      await this.request(XsOp.XS_WATCH, 0, nulTerminated([path, tok]));
    } catch (err) {
      this.watches.delete(tok);
      q.end();
      throw err;
    }
    return q;
  }

  private async unwatch(path: string, token: string): Promise<void> {
    const q = this.watches.get(token);
    if (!q) return;
    this.watches.delete(token);
    q.end();
    if (this.state === ClientState.Open) await this.request(XsOp.XS_UNWATCH, 0, nulTerminated([path, token]));
  }

  async transactionStart(): Promise<number> {
    const id = Number(single(await this.request(XsOp.XS_TRANSACTION_START, 0, nulTerminated(['']))));
    if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new ProtocolError(`bad transaction id from xenstored`);
    return id;
  }

  async transactionEnd(tx: number, commit: boolean): Promise<void> {
    await this.request(XsOp.XS_TRANSACTION_END, tx, nulTerminated([commit ? 'T' : 'F']));
  }

  /** Operations bound to transaction `tx` (0 = none). */
  ops(tx: number): XsOps {
    const req = (op: XsOp, payload: Uint8Array) => this.request(op, tx, payload);
    return {
      read: async (path) => bytesToString((await req(XsOp.XS_READ, nulTerminated([path]))).payload),
      tryRead: async (path) => {
        try { return bytesToString((await req(XsOp.XS_READ, nulTerminated([path]))).payload); } catch (err) {
          if (isXenstoreError(err, 'ENOENT')) return undefined;
          throw err;
        }
      },
      write: async (path, value) => { await req(XsOp.XS_WRITE, concatBytes([path, '\0', value])); },
      mkdir: async (path) => { await req(XsOp.XS_MKDIR, nulTerminated([path])); },
      rm: async (path) => { await req(XsOp.XS_RM, nulTerminated([path])); },
      directory: (path) => this.directory_(tx, path),
      getPermissions: async (path) => parsePerms(splitNulTerminated((await req(XsOp.XS_GET_PERMS, nulTerminated([path]))).payload)),
      setPermissions: async (path, perms) => { await req(XsOp.XS_SET_PERMS, nulTerminated([path, ...perms.map(formatPerm)])); },
    };
  }

  private async directory_(tx: number, path: string): Promise<string[]> {
    try {
      return splitNulTerminated((await this.request(XsOp.XS_DIRECTORY, tx, nulTerminated([path]))).payload);
    } catch (err) {
      if (!isXenstoreError(err, 'E2BIG')) throw err;
    }
    // Too many children for one reply: page through with DIRECTORY_PART,
    // restarting if the node's generation count changes under us.
    for (let attempt = 0; attempt < 8; attempt++) {
      const names: string[] = [];
      let offset = 0;
      let gen: string | undefined;
      for (;;) {
        const parts = splitNulTerminated((await this.request(XsOp.XS_DIRECTORY_PART, tx, nulTerminated([path, String(offset)]))).payload);
        const [g, ...rest] = parts;
        if (gen !== undefined && g !== gen) break;
        gen = g;
        const done = rest.length > 0 && rest[rest.length - 1] === '';
        const got = done ? rest.slice(0, -1) : rest;
        names.push(...got);
        offset += got.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0);
        if (done) return names;
        if (got.length === 0) throw new ProtocolError('DIRECTORY_PART made no progress');
      }
    }
    throw new XenstoreError('EAGAIN', `directory ${path} kept changing`);
  }

  async transaction<T>(fn: (tx: XsOps) => Promise<T>, opts: { maxRetries?: number } = {}): Promise<T> {
    const maxRetries = opts.maxRetries ?? DEFAULT_TRANSACTION_RETRIES;
    for (let attempt = 0; ; attempt++) {
      const tx = await this.transactionStart();
      let result: T;
      try {
        result = await fn(this.ops(tx));
      } catch (err) {
        await this.transactionEnd(tx, false).catch(() => undefined);
        throw err;
      }
      try {
        await this.transactionEnd(tx, true);
        return result;
      } catch (err) {
        if (!isXenstoreError(err, 'EAGAIN') || attempt >= maxRetries) throw err;
      }
    }
  }

  async close(): Promise<void> {
    if (this.state === ClientState.Closed) return;
    this.shutdown(new DisconnectedError('xenstore client closed'));
    this.transport.close();
  }

  /** Send one request; resolves with the reply, rejects with XenstoreError on XS_ERROR. */
  request(type: XsOp, txId: number, payload: Uint8Array): Promise<XsMessage> {
    if (this.state === ClientState.Closed) return Promise.reject(this.closeReason ?? new DisconnectedError('xenstore client closed'));
    let bytes: Uint8Array;
    const reqId = this.allocReqId();
    try { bytes = encodeMessage(type, reqId, txId, payload); } catch (err) { return Promise.reject(err); }
    if (log.enabled) log(`> ${XsOp[type] ?? type} #${reqId}${txId ? ` tx ${txId}` : ''} ${preview(payload)}`);
    return new Promise<XsMessage>((resolve, reject) => {
      this.pending.set(reqId, { type, payload, resolve, reject });
      if (this.pending.size === 1) this.transport.hold?.(true);
      this.transport.send(bytes);
    });
  }

  private allocReqId(): number {
    // req_id is u32 and wraps; skip ids still in flight.
    do { this.nextReqId = (this.nextReqId + 1) >>> 0; } while (this.pending.has(this.nextReqId));
    return this.nextReqId;
  }

  private receive(chunk: Uint8Array): void {
    let msgs: readonly XsMessage[];
    try { msgs = this.parser.push(chunk); } catch (err) {
      // Replies that came before the violation are still answers.
      if (err instanceof XsFramingError) for (const m of err.parsed) this.dispatch(m);
      this.shutdown(err as Error);
      this.transport.close();
      return;
    }
    for (const m of msgs) this.dispatch(m);
  }

  private dispatch(m: XsMessage): void {
    if (m.type === XsOp.XS_WATCH_EVENT) {
      let parts: string[];
      try { parts = splitNulTerminated(m.payload); } catch { return; }
      if (parts.length < 2) return;
      const ev: XsWatchEvent = { path: parts[0]!, token: parts[1]! };
      if (log.enabled) log(`< WATCH_EVENT ${ev.path} (token ${ev.token})`);
      this.watches.get(ev.token)?.push(ev);
      return;
    }
    const p = this.pending.get(m.reqId);
    if (!p) return; // a reply to nothing we asked: ignore (spurious, or after unwatch)
    this.pending.delete(m.reqId);
    if (this.pending.size === 0) this.transport.hold?.(false);
    if (m.type === XsOp.XS_ERROR) {
      let errno = 'EIO';
      try { errno = splitNulTerminated(m.payload)[0] ?? 'EIO'; } catch { /* keep EIO */ }
      if (log.enabled) log(`< #${m.reqId} error ${errno}`);
      // Made in a microtask: a stack would hold only the parser's frames.
      p.reject(withoutStacks(() => new XenstoreError(errno, `${XsOp[p.type] ?? p.type} ${subject(p.payload)} failed`)));
    } else if (m.type !== p.type) {
      p.reject(new ProtocolError(`xenstore reply type ${m.type} to request type ${p.type}`));
    } else {
      p.resolve(m);
    }
  }

  private shutdown(reason: Error): void {
    if (this.state === ClientState.Closed) return;
    this.state = ClientState.Closed;
    this.closeReason = reason instanceof DisconnectedError ? reason : new DisconnectedError('xenstore connection failed', { cause: reason });
    for (const p of this.pending.values()) p.reject(this.closeReason);
    this.pending.clear();
    for (const q of this.watches.values()) q.end();
    this.watches.clear();
  }
}

/** What a request was about, for its error message: the payload's first string (a path, mostly), quoted and capped. */
function subject(payload: Uint8Array): string {
  const end = payload.indexOf(0);
  const text = bytesToString(payload.subarray(0, Math.min(end < 0 ? payload.length : end, 120)));
  return JSON.stringify(text);
}

function single(m: XsMessage): string {
  return splitNulTerminated(m.payload)[0] ?? '';
}
