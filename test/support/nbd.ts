/**
 * What the NBD tests share: the libnbd tools as the independent client
 * (nbdinfo, nbdcopy, nbdsh), a server on a unix socket per test, and a raw
 * client written from the protocol document (proto.md) for what libnbd will
 * not send: bad magics, unknown commands, options with data.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { BlockDevice } from '../../src/block/types.js';
import { NbdServer } from '../../src/nbd/index.js';

export const run = promisify(execFile);
// nbdsh runs `python3 -mnbd`: Debian's python3, whatever else is first on PATH.
export const ENV = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` };

const PACKAGE = { nbdinfo: 'libnbd-bin', nbdcopy: 'libnbd-bin', nbdsh: 'python3-libnbd' } as const;

/** Fails (never skips) with how to install a missing or broken tool. */
export async function requireNbdTools(...tools: (keyof typeof PACKAGE)[]): Promise<void> {
  for (const tool of tools) {
    await run(tool, ['--version'], { env: ENV }).catch(() => {
      throw new Error(`${tool} is missing or broken: apt-get install -y ${PACKAGE[tool]} (tools/install-system-deps.sh installs it)`);
    });
  }
}

let sockN = 0;
/** Exports `device` as `name` on a fresh unix socket under `dir`. */
export async function serveNbd(dir: string, device: BlockDevice, name = 'disk'): Promise<{ server: NbdServer; uri: string; path: string }> {
  const path = join(dir, `s${sockN++}.sock`);
  const server = await NbdServer.listen({ exports: [{ name, device, description: 'test export' }], path });
  return { server, uri: `nbd+unix:///${name}?socket=${path}`, path };
}

/**
 * Runs Python in nbdsh and returns its JSON `r`: `h` is connected to `uri`
 * (after `before`, which may set handle options), strict checks off, and
 * `err(f)` gives the errno f() failed with (0: it did not).
 */
export async function nbdsh(uri: string, script: string, before = ''): Promise<Record<string, unknown>> {
  const prelude = [
    'import json, nbd',
    before,
    `h.connect_uri(${JSON.stringify(uri)})`,
    'h.set_strict_mode(0)  # send what a buggy client would; let the server judge',
    'def err(f):',
    '    try:',
    '        f()',
    '        return 0',
    '    except nbd.Error as e:',
    '        return e.errnum',
    'r = {}',
  ].join('\n');
  const { stdout } = await run('nbdsh', ['-c', `${prelude}\n${script}\nprint(json.dumps(r))`], { env: ENV, maxBuffer: 1 << 26 });
  return JSON.parse(stdout);
}

const NBD_OPT_GO = 7;
const NBD_REP_ACK = 1;
const NBD_REP_INFO = 3;

/** A raw NBD client from proto.md: fixed newstyle; options, requests and both reply kinds by hand. */
export class RawNbdClient {
  readonly sock: Socket;
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake?.();
    });
    sock.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    sock.on('error', () => undefined);
  }

  /** Connects, checks the greeting and answers it (FIXED_NEWSTYLE | NO_ZEROES): options may follow. */
  static async open(path: string): Promise<RawNbdClient> {
    const sock = connect(path);
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    const c = new RawNbdClient(sock);
    const greet = await c.need(18);
    expect(greet.subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3);
    sock.write(flags);
    return c;
  }

  /** open(), then NBD_OPT_GO on the default export with no other option: simple replies. */
  static async go(path: string): Promise<RawNbdClient> {
    const c = await RawNbdClient.open(path);
    const replies = await c.option(NBD_OPT_GO, Buffer.alloc(6)); // empty name, no info requests
    expect(replies.slice(0, -1).every(([t]) => t === NBD_REP_INFO)).toBe(true);
    expect(replies.at(-1)![0]).toBe(NBD_REP_ACK);
    return c;
  }

  /** Sends one option; returns its replies up to the first ACK or error: [type, data][]. */
  async option(option: number, data: Buffer = Buffer.alloc(0)): Promise<[number, Buffer][]> {
    const h = Buffer.alloc(16);
    h.write('IHAVEOPT', 0, 'latin1');
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(data.length, 12);
    this.sock.write(Buffer.concat([h, data]));
    const replies: [number, Buffer][] = [];
    for (;;) {
      const r = await this.need(20);
      expect(r.readUInt32BE(8)).toBe(option);
      const type = r.readUInt32BE(12);
      replies.push([type, Buffer.from(await this.need(r.readUInt32BE(16)))]);
      if (type === NBD_REP_ACK || type >= 0x8000_0000) return replies;
    }
  }

  async need(n: number): Promise<Buffer> {
    while (this.#buf.length < n) {
      if (this.#closed) throw new Error('closed');
      await new Promise<void>((r) => (this.#wake = r));
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  get closed(): Promise<void> {
    return this.#closed ? Promise.resolve() : new Promise((r) => this.sock.once('close', () => r()));
  }

  /** One request header (not sent): `magic` may be made wrong on purpose. */
  header(type: number, cookie: bigint, offset: bigint, length: number, flags = 0, magic = 0x25609513): Buffer {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(magic, 0);
    b.writeUInt16BE(flags, 4);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(cookie, 8);
    b.writeBigUInt64BE(offset, 16);
    b.writeUInt32BE(length, 24);
    return b;
  }

  /** Sends one request header. */
  request(type: number, cookie: bigint, offset: bigint, length: number, flags = 0): void {
    this.sock.write(this.header(type, cookie, offset, length, flags));
  }

  /** Reads one simple reply: [error, cookie]. */
  async reply(): Promise<[number, bigint]> {
    const r = await this.need(16);
    expect(r.readUInt32BE(0)).toBe(0x67446698);
    return [r.readUInt32BE(4), r.readBigUInt64BE(8)];
  }

  /** Reads structured chunks up to the one flagged DONE. */
  async chunks(): Promise<{ flags: number; type: number; cookie: bigint; payload: Buffer }[]> {
    const out = [];
    for (;;) {
      const h = await this.need(20);
      expect(h.readUInt32BE(0)).toBe(0x668e33ef);
      const c = { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: h.readBigUInt64BE(8), payload: Buffer.from(await this.need(h.readUInt32BE(16))) };
      out.push(c);
      if (c.flags & 1) return out;
    }
  }
}
