/** Shared fixtures for the xenstore tests: a server on a temp socket, raw socket I/O. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { XenstoreServer } from '../src/xenstore/server/server.js';

export interface RunningServer {
  server: XenstoreServer;
  path: string;
  stop(): Promise<void>;
}

export async function startServer(opts: ConstructorParameters<typeof XenstoreServer>[0] = {}): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'xenstored-'));
  const path = join(dir, 'socket');
  const server = new XenstoreServer(opts);
  await server.listen(path);
  return { server, path, stop: async () => { await server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** Independent frame builder (not the production encoder). */
export function frame(type: number, reqId: number, txId: number, payload: string | Buffer): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const h = Buffer.alloc(16);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(reqId, 4);
  h.writeUInt32LE(txId, 8);
  h.writeUInt32LE(p.length, 12);
  return Buffer.concat([h, p]);
}

export interface RawReply { type: number; reqId: number; txId: number; payload: string }

/** A raw socket peer that collects whole replies with an independent parser. */
export class RawPeer {
  private buf = Buffer.alloc(0);
  private replies: RawReply[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 16) {
        const len = this.buf.readUInt32LE(12);
        if (this.buf.length < 16 + len) break;
        this.replies.push({
          type: this.buf.readUInt32LE(0), reqId: this.buf.readUInt32LE(4), txId: this.buf.readUInt32LE(8),
          payload: this.buf.subarray(16, 16 + len).toString('latin1'),
        });
        this.buf = this.buf.subarray(16 + len);
      }
      this.wake();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => { this.closed = true; this.wake(); });
  }
  private wake(): void { for (const w of this.waiters.splice(0)) w(); }

  static connect(path: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path });
      s.once('connect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }
  send(b: Buffer): void { this.sock.write(b); }
  /** Next reply (not a watch event unless asked), or undefined if the connection closes first. */
  async next(opts: { events?: boolean; timeoutMs?: number } = {}): Promise<RawReply | undefined> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    for (;;) {
      const i = this.replies.findIndex((r) => opts.events || r.type !== 15);
      if (i >= 0) return this.replies.splice(i, 1)[0];
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error('timed out waiting for a reply');
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 20); });
    return this.closed;
  }
  end(): void { this.sock.destroy(); }
}
