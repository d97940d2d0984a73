/**
 * A minimal xenstored for the C-to-C peer tests: xs_wire over a unix
 * socket, READ / WRITE / MKDIR / RM / DIRECTORY on a flat map, no
 * permissions, transactions or watches (the peers poll). Test scaffolding
 * only, written from xenstore.txt; the project's own xenstored replaces it
 * when the driver tests arrive.
 *
 * ```
 *  0        4        8        12       16
 *  +--------+--------+--------+--------+----------------+
 *  | type   | req_id | tx_id  | len    | payload (len)  |   all u32 LE
 *  +--------+--------+--------+--------+----------------+
 * ```
 */
import { createServer, type Server, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';

const XS_DIRECTORY = 1;
const XS_READ = 2;
const XS_WRITE = 11;
const XS_MKDIR = 12;
const XS_RM = 13;
const XS_ERROR = 16;

export class MiniXenstored {
  readonly nodes = new Map<string, string>();
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly path: string) {}

  static start(path: string): Promise<MiniXenstored> {
    try { unlinkSync(path); } catch { /* none */ }
    return new Promise((resolve, reject) => {
      let me: MiniXenstored | undefined;
      const server = createServer((s) => me?.serve(s));
      server.once('error', reject);
      server.listen(path, () => {
        me = new MiniXenstored(server, path);
        resolve(me);
      });
    });
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    let buf = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    s.on('close', () => this.sockets.delete(s));
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 16) {
        const len = buf.readUInt32LE(12);
        if (len > 4096) { s.destroy(); return; }
        if (buf.length < 16 + len) break;
        const type = buf.readUInt32LE(0), reqId = buf.readUInt32LE(4), txId = buf.readUInt32LE(8);
        const body = buf.subarray(16, 16 + len);
        buf = buf.subarray(16 + len);
        const [rtype, payload] = this.handle(type, body);
        const h = Buffer.alloc(16);
        h.writeUInt32LE(rtype, 0); h.writeUInt32LE(reqId, 4); h.writeUInt32LE(txId, 8); h.writeUInt32LE(payload.length, 12);
        s.write(Buffer.concat([h, payload]));
      }
    });
  }

  private handle(type: number, body: Buffer): [number, Buffer] {
    const nul = body.indexOf(0);
    const path = body.subarray(0, nul < 0 ? body.length : nul).toString('latin1');
    const err = (e: string): [number, Buffer] => [XS_ERROR, Buffer.from(`${e}\0`, 'latin1')];
    const ok = (): [number, Buffer] => [type, Buffer.from('OK\0', 'latin1')];
    switch (type) {
      case XS_READ: {
        const v = this.nodes.get(path);
        return v === undefined ? err('ENOENT') : [XS_READ, Buffer.from(v, 'latin1')];
      }
      case XS_WRITE:
        if (nul < 0) return err('EINVAL');
        this.nodes.set(path, body.subarray(nul + 1).toString('latin1'));
        return ok();
      case XS_MKDIR:
        if (!this.nodes.has(path)) this.nodes.set(path, '');
        return ok();
      case XS_RM:
        for (const k of [...this.nodes.keys()]) if (k === path || k.startsWith(`${path}/`)) this.nodes.delete(k);
        return ok();
      case XS_DIRECTORY: {
        const kids = new Set<string>();
        for (const k of this.nodes.keys()) if (k.startsWith(`${path}/`)) kids.add(k.slice(path.length + 1).split('/')[0]!);
        return [XS_DIRECTORY, Buffer.from([...kids].map((k) => `${k}\0`).join(''), 'latin1')];
      }
      default:
        return err('ENOSYS');
    }
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
