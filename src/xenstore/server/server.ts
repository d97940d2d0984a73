/**
 * The simulated xenstored. Serves the real wire protocol on a unix socket
 * (socket connections are dom0, like xenstored's), in-process connections
 * for any domid (the simulation), and MessagePorts (worker_thread domains).
 * The hypervisor side calls introduceDomain / releaseDomain.
 */
import * as net from 'node:net';
import { chmodSync, existsSync, linkSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import type { DomId } from '../../platform/types.js';
import { XenstoreClient } from '../client.js';
import { createChannelPair } from '../transport/in-process.js';
import { messagePortTransport } from '../transport/message-port.js';
import type { XsTransport } from '../transport/types.js';
import { XsCore, type XsCheckpoint } from './core.js';
import type { Connection } from './connection.js';
import type { XsQuota } from './quota.js';
import { IoError, toIoError } from '../../errors.js';


/** Stop reading from a socket peer while this much of our output is unsent. */
const SOCKET_HIGH_WATER = 64 * 1024;

export interface XenstoreServerOptions {
  quota?: Partial<XsQuota>;
  /** Told about connections dropped for misbehaviour and internal errors. */
  log?: (msg: string) => void;
}

export class XenstoreServer {
  readonly core: XsCore;
  private servers: net.Server[] = [];
  private sockets = new Set<net.Socket>();
  private readonly socketPaths: string[] = [];

  constructor(opts: XenstoreServerOptions = {}) {
    this.core = new XsCore(opts.quota);
    const log = opts.log;
    if (log) this.core.onDrop = (c, reason) => log(`xenstored: connection ${c.id} (dom${c.domid}): ${reason}`);
  }

  /**
   * Serve the wire protocol on a unix socket; every socket peer is dom0, so
   * the socket is created with `mode` (default 0600: its owner only), never
   * with the umask's permissions: it is bound in a private (0700) directory
   * beside `path`, chmod'ed, then hard-linked into place (which fails if
   * `path` exists, as bind would). `unref`: the socket and its connections
   * do not keep the process alive (the simulation's xenstored; a standalone
   * xenstored leaves them ref'd). A path that cannot be bound rejects with
   * `io` naming it.
   */
  async listen(path: string, opts: { mode?: number; unref?: boolean } = {}): Promise<void> {
    const mode = opts.mode ?? 0o600;
    try {
      if (existsSync(path) && !(await socketIsLive(path))) unlinkSync(path); // a stale socket from a dead server
    } catch (err) {
      throw toIoError(err, `xenstored socket ${path}: remove stale socket`);
    }
    const srv = net.createServer((sock) => {
      if (opts.unref) sock.unref();
      this.acceptSocket(sock);
    });
    let tmp: string;
    try {
      tmp = mkdtempSync(join(dirname(path), '.xs-'));
    } catch (err) {
      throw toIoError(err, `xenstored socket ${path}: listen`);
    }
    const bound = join(tmp, 's');
    try {
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(bound, () => { srv.off('error', reject); resolve(); });
      });
      chmodSync(bound, mode);
      linkSync(bound, path);
    } catch (err) {
      await new Promise<void>((r) => srv.close(() => r()));
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST') throw new IoError(`xenstored socket ${path}: listen: EADDRINUSE: address already in use`, { cause: err });
      throw toIoError(err, `xenstored socket ${path}: listen`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    srv.on('error', () => undefined);
    if (opts.unref) srv.unref();
    this.servers.push(srv);
    this.socketPaths.push(path);
  }

  private acceptSocket(sock: net.Socket): void {
    this.sockets.add(sock);
    const conn = this.core.addConnection(0, {
      write: (bytes) => {
        if (sock.destroyed) return;
        // Backpressure: a peer that does not read its replies stops being read.
        if (!sock.write(bytes) && sock.writableLength > SOCKET_HIGH_WATER) sock.pause();
      },
      queuedBytes: () => sock.writableLength,
      close: () => {
        // Replies already written (to requests before a framing violation,
        // say) still go out; a peer that is not reading loses them.
        sock.pause();
        if (sock.writableLength > SOCKET_HIGH_WATER) return void sock.destroy();
        sock.end();
        setTimeout(() => sock.destroy(), 1000).unref();
      },
    });
    sock.on('drain', () => sock.resume());
    sock.on('data', (chunk: Buffer) => {
      // All replies to one chunk's requests leave in one write.
      sock.cork();
      try { conn.receive(chunk); } finally { sock.uncork(); }
    });
    sock.on('error', () => undefined); // 'close' follows
    sock.on('close', () => { this.sockets.delete(sock); this.core.dropped(conn, 'closed'); });
  }

  /** Attach any transport as a connection of `domid`. */
  attachTransport(t: XsTransport, domid: DomId): Connection {
    const conn = this.core.addConnection(domid, { write: (b) => t.send(b), queuedBytes: () => 0, close: () => t.close() });
    t.onData((chunk) => conn.receive(chunk));
    t.onClose(() => this.core.dropped(conn, 'closed'));
    return conn;
  }

  /** An in-process client connected as `domid` (dom0 is privileged). */
  connect(domid: DomId): XenstoreClient {
    // Both ends are ours: the client and the connection send fresh buffers and copy out what they parse.
    const [clientEnd, serverEnd] = createChannelPair({ handOver: true });
    this.attachTransport(serverEnd, domid);
    return new XenstoreClient(clientEnd);
  }

  /** Serve `domid` over a MessagePort (its other end: `connectMessagePort`). */
  attachPort(port: MessagePort, domid: DomId): { close(): void } {
    const conn = this.attachTransport(messagePortTransport(port), domid);
    return { close: () => this.core.dropped(conn, 'closed') };
  }

  introduceDomain(domid: DomId): void { this.core.introduceDomain(domid); }
  releaseDomain(domid: DomId): void { this.core.releaseDomain(domid); }
  isDomainIntroduced(domid: DomId): boolean { return this.core.isDomainIntroduced(domid); }

  /**
   * Fast reset for harnesses that reuse one server across runs (the fuzzer):
   * `checkpoint()` keeps the store as it is, `changedSince()` lists what a
   * run changed, `restore()` puts it back (refused while a watch or
   * transaction is open). Connections are untouched.
   */
  checkpoint(): XsCheckpoint { return this.core.checkpoint(); }
  changedSince(cp: XsCheckpoint): string[] { return this.core.changedSince(cp); }
  restore(cp: XsCheckpoint): void { this.core.restore(cp); }

  stats(): { connections: number; watches: number; transactions: number; nodes: number } {
    let transactions = 0;
    for (const c of this.core.connections) transactions += c.transactions.size;
    let nodes = 0;
    for (const n of this.core.db.owned.values()) nodes += n;
    return { connections: this.core.connections.size, watches: this.core.watches.size, transactions, nodes };
  }

  /** Stop listening and close every connection. */
  async close(): Promise<void> {
    for (const c of [...this.core.connections]) this.core.dropped(c, 'closed');
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers = [];
    for (const p of this.socketPaths.splice(0)) { try { unlinkSync(p); } catch { /* already gone */ } }
  }
}

function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

