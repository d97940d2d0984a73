/**
 * The transmission phase, server side: requests in, replies out (simple,
 * or structured when the client negotiated NBD_OPT_STRUCTURED_REPLY; the
 * encodings are in replies.ts). Requests run concurrently (up to
 * MAX_IN_FLIGHT); each reply is written whole, so replies never
 * interleave. A bad request gets a typed NBD error reply (structured: an
 * NBD_REPLY_TYPE_ERROR chunk with a message) and the connection keeps
 * serving; only a broken frame (bad magic, a write payload beyond 2^25
 * bytes) ends the connection.
 *
 *  C: request (28 bytes, then `length` bytes of data for NBD_CMD_WRITE)
 *  +-------------+-------+------+--------+--------+--------+
 *  | 0x25609513  | flags | type | cookie | offset | length |
 *  | u32         | u16   | u16  | u64    | u64    | u32    |
 *  +-------------+-------+------+--------+--------+--------+
 *
 * Structured reads are read in READ_PIECE pieces, concurrently: a piece
 * the device fails becomes an NBD_REPLY_TYPE_ERROR_OFFSET at its offset,
 * the others still arrive (as OFFSET_DATA, or OFFSET_HOLE for all-zero
 * blocks) unless the client set NBD_CMD_FLAG_DF, which gets one
 * OFFSET_DATA chunk or only errors.
 */
import type { Socket } from 'node:net';
import { XenpvError } from '../errors.js';
import * as C from './constants.js';
import type { Export } from './export.js';
import type { Negotiated } from './negotiate.js';
import type { SocketReader } from './reader.js';
import { contentChunks, writeSimple, writeStructured, type Chunk } from './replies.js';

const MAX_IN_FLIGHT = 64;
const ZERO_CHUNK = 1 << 20;
const READ_PIECE = 1 << 20;
/** Hole granularity in structured reads (at least a sector). */
const HOLE_BLOCK = 4096;

interface Request {
  readonly flags: number;
  readonly type: number;
  readonly cookie: bigint;
  readonly offset: bigint;
  readonly length: number;
}

interface Refusal {
  readonly error: number;
  readonly message: string;
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

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export interface TransmissionStats {
  requests: number;
  errors: number;
}

export class Transmission {
  readonly #inFlight = new Set<Promise<void>>();
  readonly stats: TransmissionStats = { requests: 0, errors: 0 };
  readonly #ex: Export;
  readonly #structured: boolean;
  readonly #allocationContext: number | undefined;
  readonly #allowed: Record<number, number>;

  constructor(private readonly sock: Socket, private readonly reader: SocketReader, negotiated: Negotiated) {
    this.#ex = negotiated.export;
    this.#structured = negotiated.structured;
    this.#allocationContext = negotiated.allocationContext;
    this.#allowed = { ...ALLOWED_FLAGS };
    if (this.#structured) this.#allowed[C.NBD_CMD_READ] = C.NBD_CMD_FLAG_DF;
    if (this.#allocationContext !== undefined) this.#allowed[C.NBD_CMD_BLOCK_STATUS] = C.NBD_CMD_FLAG_REQ_ONE;
  }

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

  /** The whole reply to `req`: a data payload for a good simple read, chunks when structured. */
  #reply(req: Request, result: { ok: true; data?: Uint8Array; chunks?: Chunk[] } | Refusal): void {
    const failed = !('ok' in result) || (result.chunks?.some((c) => c.type === 'error') ?? false);
    if (failed) this.stats.errors++;
    if (!this.sock.writable) return; // the client left: nothing to tell it
    if (!this.#structured) {
      writeSimple(this.sock, req.cookie, 'ok' in result ? 0 : result.error, 'ok' in result ? result.data : undefined);
      return;
    }
    if ('ok' in result) writeStructured(this.sock, req.cookie, result.chunks ?? []);
    else writeStructured(this.sock, req.cookie, [{ type: 'error', error: result.error, message: result.message }]);
  }

  /** Why a request must not reach the device, or undefined. */
  #check(req: Request): Refusal | undefined {
    const allowed = this.#allowed[req.type];
    if (allowed === undefined) return { error: C.NBD_EINVAL, message: `unknown or unnegotiated command ${req.type}` };
    if ((req.flags & ~allowed) !== 0) return { error: C.NBD_EINVAL, message: `flags 0x${req.flags.toString(16)} are not valid for command ${req.type}` };
    const info = this.#ex.device.info();
    const writes = req.type === C.NBD_CMD_WRITE || req.type === C.NBD_CMD_TRIM || req.type === C.NBD_CMD_WRITE_ZEROES;
    if (req.type === C.NBD_CMD_FLUSH) return info.features.flush ? undefined : { error: C.NBD_EINVAL, message: 'the device does not flush' };
    if (writes && !info.readWrite) return { error: C.NBD_EPERM, message: 'the export is read-only' };
    if (req.type === C.NBD_CMD_TRIM && !info.features.discard) return { error: C.NBD_EINVAL, message: 'the device does not discard' };
    const S = BigInt(this.#ex.sectorSize);
    if (req.offset % S !== 0n || BigInt(req.length) % S !== 0n) {
      // Below the advertised minimum block size.
      return { error: C.NBD_EINVAL, message: `offset ${req.offset} and length ${req.length} must be multiples of the ${S}-byte block size` };
    }
    if (req.offset + BigInt(req.length) > this.#ex.sizeBytes) {
      const error = req.type === C.NBD_CMD_WRITE || req.type === C.NBD_CMD_WRITE_ZEROES ? C.NBD_ENOSPC : C.NBD_EINVAL;
      return { error, message: `${req.length} bytes at offset ${req.offset} run past the end of the export (${this.#ex.sizeBytes} bytes)` };
    }
    if (req.type === C.NBD_CMD_READ && req.length > C.MAX_PAYLOAD) return { error: C.NBD_EINVAL, message: `a read of ${req.length} bytes exceeds the maximum of 2^25` };
    if (req.type === C.NBD_CMD_BLOCK_STATUS && req.length === 0) return { error: C.NBD_EINVAL, message: 'block status of zero bytes' };
    return undefined;
  }

  async #handle(req: Request, payload: Buffer | undefined): Promise<void> {
    const bad = this.#check(req);
    if (bad !== undefined) return this.#reply(req, bad);
    const dev = this.#ex.device;
    const sector = req.offset / BigInt(this.#ex.sectorSize);
    const fua = (req.flags & C.NBD_CMD_FLAG_FUA) !== 0;
    try {
      switch (req.type) {
        case C.NBD_CMD_READ:
          return await this.#read(req);
        case C.NBD_CMD_BLOCK_STATUS:
          // The device cannot say what is allocated: all of it is reported as
          // data of unknown content (status 0), which the spec always allows.
          return this.#reply(req, { ok: true, chunks: [{ type: 'status', context: this.#allocationContext!, extents: [[req.length, 0]] }] });
        case C.NBD_CMD_WRITE:
          if (req.length > 0) await dev.write(sector, [payload!]);
          break;
        case C.NBD_CMD_FLUSH:
          await dev.flush();
          break;
        case C.NBD_CMD_TRIM:
          if (req.length > 0) await dev.discard(sector, BigInt(req.length / this.#ex.sectorSize));
          break;
        case C.NBD_CMD_WRITE_ZEROES: {
          const zeros = new Uint8Array(Math.min(req.length, ZERO_CHUNK));
          for (let done = 0; done < req.length; done += zeros.length) {
            const n = Math.min(zeros.length, req.length - done);
            await dev.write(sector + BigInt(done / this.#ex.sectorSize), [zeros.subarray(0, n)]);
          }
          break;
        }
      }
      // FUA: the data is durable before the reply says done.
      if (fua && dev.info().features.flush) await dev.flush();
      this.#reply(req, { ok: true });
    } catch (err) {
      this.#reply(req, { error: errno(err, req.type !== C.NBD_CMD_READ), message: messageOf(err) });
    }
  }

  async #read(req: Request): Promise<void> {
    const data = new Uint8Array(req.length);
    const S = this.#ex.sectorSize;
    const first = req.offset / BigInt(S);
    const pieces: { at: number; len: number }[] = [];
    for (let at = 0; at < req.length; at += READ_PIECE) pieces.push({ at, len: Math.min(READ_PIECE, req.length - at) });
    const results = await Promise.allSettled(pieces.map((p) => this.#ex.device.read(first + BigInt(p.at / S), [data.subarray(p.at, p.at + p.len)])));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ piece: pieces[i]!, err: r.reason as unknown }] : []));
    if (!this.#structured) {
      // A simple reply is all or nothing: the first failure is the answer.
      if (failures.length > 0) return this.#reply(req, { error: errno(failures[0]!.err, false), message: messageOf(failures[0]!.err) });
      return this.#reply(req, { ok: true, data });
    }
    const errorAt = (f: (typeof failures)[number]): Chunk => ({
      type: 'error', error: errno(f.err, false), message: messageOf(f.err), offset: req.offset + BigInt(f.piece.at),
    });
    if ((req.flags & C.NBD_CMD_FLAG_DF) !== 0) {
      // Don't fragment: one content chunk with the zeroes in it, or no content at all.
      const chunks: Chunk[] = failures.length > 0 ? failures.map(errorAt) : req.length > 0 ? [{ type: 'data', offset: req.offset, data }] : [];
      return this.#reply(req, { ok: true, chunks });
    }
    const block = Math.max(S, HOLE_BLOCK);
    const chunks = results.flatMap((r, i): Chunk[] => {
      const p = pieces[i]!;
      return r.status === 'fulfilled'
        ? contentChunks(req.offset + BigInt(p.at), data.subarray(p.at, p.at + p.len), block)
        : [errorAt({ piece: p, err: r.reason })];
    });
    this.#reply(req, { ok: true, chunks });
  }
}
