/**
 * The transmission phase, server side: requests in, simple replies out.
 * Requests run concurrently (up to MAX_IN_FLIGHT); each reply is written
 * whole, so replies never interleave. A bad request gets a typed NBD error
 * reply and the connection keeps serving; only a broken frame (bad magic,
 * a write payload beyond 2^25 bytes) ends the connection.
 *
 *  C: request (28 bytes, then `length` bytes of data for NBD_CMD_WRITE)
 *  +-------------+-------+------+--------+--------+--------+
 *  | 0x25609513  | flags | type | cookie | offset | length |
 *  | u32         | u16   | u16  | u64    | u64    | u32    |
 *  +-------------+-------+------+--------+--------+--------+
 *
 *  S: simple reply (16 bytes, then `length` bytes of data for a good NBD_CMD_READ)
 *  +-------------+-------+--------+
 *  | 0x67446698  | error | cookie |
 *  | u32         | u32   | u64    |
 *  +-------------+-------+--------+
 */
import type { Socket } from 'node:net';
import { XenpvError } from '../errors.js';
import * as C from './constants.js';
import type { Export } from './export.js';
import type { SocketReader } from './reader.js';

const MAX_IN_FLIGHT = 64;
const ZERO_CHUNK = 1 << 20;

interface Request {
  readonly flags: number;
  readonly type: number;
  readonly cookie: bigint;
  readonly offset: bigint;
  readonly length: number;
}

/** Flags each command may carry; anything else is EINVAL (proto.md "Error values"). */
const ALLOWED_FLAGS: Record<number, number> = {
  [C.NBD_CMD_READ]: 0,
  [C.NBD_CMD_WRITE]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_DISC]: 0,
  [C.NBD_CMD_FLUSH]: 0,
  [C.NBD_CMD_TRIM]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_WRITE_ZEROES]: C.NBD_CMD_FLAG_FUA | C.NBD_CMD_FLAG_NO_HOLE,
};

/** A device error as the NBD error value the spec asks for. */
function errno(err: unknown, write: boolean): number {
  const code = err instanceof XenpvError ? err.code : 'io';
  switch (code) {
    case 'read-only': return C.NBD_EPERM;
    case 'out-of-range': return write ? C.NBD_ENOSPC : C.NBD_EINVAL;
    case 'invalid-argument':
    case 'unsupported': return C.NBD_EINVAL;
    case 'disconnected': return C.NBD_ESHUTDOWN;
    default: return C.NBD_EIO;
  }
}

export interface TransmissionStats {
  requests: number;
  errors: number;
}

export class Transmission {
  readonly #inFlight = new Set<Promise<void>>();
  readonly stats: TransmissionStats = { requests: 0, errors: 0 };

  constructor(private readonly sock: Socket, private readonly reader: SocketReader, private readonly ex: Export) {}

  /** Serves until NBD_CMD_DISC (resolves) or a broken connection (rejects); in-flight requests finish first either way. */
  async serve(): Promise<void> {
    try {
      for (;;) {
        while (this.#inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.#inFlight);
        const h = await this.reader.read(28);
        if (h.readUInt32BE(0) !== C.NBD_REQUEST_MAGIC) throw new XenpvError('protocol', `nbd: bad request magic 0x${h.readUInt32BE(0).toString(16)}`);
        const req: Request = { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: h.readBigUInt64BE(8), offset: h.readBigUInt64BE(16), length: h.readUInt32BE(24) };
        this.stats.requests++;
        let payload: Buffer | undefined;
        if (req.type === C.NBD_CMD_WRITE) {
          // The payload follows whatever we think of the request: read it to stay in frame.
          if (req.length > C.MAX_PAYLOAD) throw new XenpvError('protocol', `nbd: write payload of ${req.length} bytes exceeds 2^25`);
          payload = await this.reader.read(req.length);
        }
        if (req.type === C.NBD_CMD_DISC) return;
        const p = this.#handle(req, payload).finally(() => this.#inFlight.delete(p));
        this.#inFlight.add(p);
      }
    } finally {
      await Promise.allSettled([...this.#inFlight]);
    }
  }

  #reply(req: Request, error: number, data?: Uint8Array): void {
    if (error !== 0) this.stats.errors++;
    if (!this.sock.writable) return; // the client left: nothing to tell it
    const h = Buffer.alloc(16);
    h.writeUInt32BE(C.NBD_SIMPLE_REPLY_MAGIC, 0);
    h.writeUInt32BE(error, 4);
    h.writeBigUInt64BE(req.cookie, 8);
    this.sock.cork();
    this.sock.write(h);
    if (data !== undefined && data.length > 0) this.sock.write(data);
    this.sock.uncork();
  }

  /** The error value for a request that must not reach the device, or 0. */
  #check(req: Request): number {
    const allowed = ALLOWED_FLAGS[req.type];
    if (allowed === undefined || (req.flags & ~allowed) !== 0) return C.NBD_EINVAL; // unknown command or flag
    const info = this.ex.device.info();
    const writes = req.type === C.NBD_CMD_WRITE || req.type === C.NBD_CMD_TRIM || req.type === C.NBD_CMD_WRITE_ZEROES;
    if (req.type === C.NBD_CMD_FLUSH) return info.features.flush ? 0 : C.NBD_EINVAL;
    if (writes && !info.readWrite) return C.NBD_EPERM;
    if (req.type === C.NBD_CMD_TRIM && !info.features.discard) return C.NBD_EINVAL;
    const S = BigInt(this.ex.sectorSize);
    if (req.offset % S !== 0n || BigInt(req.length) % S !== 0n) return C.NBD_EINVAL; // below the advertised minimum block size
    if (req.offset + BigInt(req.length) > this.ex.sizeBytes) {
      return req.type === C.NBD_CMD_WRITE || req.type === C.NBD_CMD_WRITE_ZEROES ? C.NBD_ENOSPC : C.NBD_EINVAL;
    }
    if (req.type === C.NBD_CMD_READ && req.length > C.MAX_PAYLOAD) return C.NBD_EINVAL;
    return 0;
  }

  async #handle(req: Request, payload: Buffer | undefined): Promise<void> {
    const bad = this.#check(req);
    if (bad !== 0) return this.#reply(req, bad);
    const dev = this.ex.device;
    const sector = req.offset / BigInt(this.ex.sectorSize);
    const fua = (req.flags & C.NBD_CMD_FLAG_FUA) !== 0;
    try {
      switch (req.type) {
        case C.NBD_CMD_READ: {
          const data = new Uint8Array(req.length);
          if (req.length > 0) await dev.read(sector, [data]);
          return this.#reply(req, 0, data);
        }
        case C.NBD_CMD_WRITE:
          if (req.length > 0) await dev.write(sector, [payload!]);
          break;
        case C.NBD_CMD_FLUSH:
          await dev.flush();
          break;
        case C.NBD_CMD_TRIM:
          if (req.length > 0) await dev.discard(sector, BigInt(req.length / this.ex.sectorSize));
          break;
        case C.NBD_CMD_WRITE_ZEROES: {
          const zeros = new Uint8Array(Math.min(req.length, ZERO_CHUNK));
          for (let done = 0; done < req.length; done += zeros.length) {
            const n = Math.min(zeros.length, req.length - done);
            await dev.write(sector + BigInt(done / this.ex.sectorSize), [zeros.subarray(0, n)]);
          }
          break;
        }
      }
      // FUA: the data is durable before the reply says done.
      if (fua && dev.info().features.flush) await dev.flush();
      this.#reply(req, 0);
    } catch (err) {
      this.#reply(req, errno(err, req.type !== C.NBD_CMD_READ));
    }
  }
}
