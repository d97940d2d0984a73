/**
 * xenstore wire codec, per xen/io/xs_wire.h.
 *
 * Every message, in either direction, is a 16-byte header then `len` bytes:
 *
 *   0        4        8        12       16
 *   +--------+--------+--------+--------+----------------------+
 *   | type   | req_id | tx_id  | len    | payload (len bytes)  |
 *   +--------+--------+--------+--------+----------------------+
 *     u32 LE   u32 LE   u32 LE   u32 LE   len <= XENSTORE_PAYLOAD_MAX
 *
 * Payloads are NUL-separated strings (`/a/b\0`), except a WRITE value and a
 * READ reply, which are raw bytes. Errors travel as type XS_ERROR with the
 * errno name as payload (`ENOENT\0`).
 */
import { ProtocolError } from '../errors.js';
import { XenstoreError } from './errors.js';

/** enum xsd_sockmsg_type, with wire values. */
export enum XsOp {
  XS_CONTROL = 0,
  XS_DIRECTORY = 1,
  XS_READ = 2,
  XS_GET_PERMS = 3,
  XS_WATCH = 4,
  XS_UNWATCH = 5,
  XS_TRANSACTION_START = 6,
  XS_TRANSACTION_END = 7,
  XS_INTRODUCE = 8,
  XS_RELEASE = 9,
  XS_GET_DOMAIN_PATH = 10,
  XS_WRITE = 11,
  XS_MKDIR = 12,
  XS_RM = 13,
  XS_SET_PERMS = 14,
  XS_WATCH_EVENT = 15,
  XS_ERROR = 16,
  XS_IS_DOMAIN_INTRODUCED = 17,
  XS_RESUME = 18,
  XS_SET_TARGET = 19,
  /* 20 was XS_RESTRICT, removed */
  XS_RESET_WATCHES = 21,
  XS_DIRECTORY_PART = 22,
}
/** `#define XS_DEBUG XS_CONTROL` */
export const XS_DEBUG = XsOp.XS_CONTROL;
export const XS_TYPE_COUNT = 23;
export const XS_INVALID = 0xffff;

export const XSD_SOCKMSG_BYTES = 16;
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;
export const XS_WRITE_NONE = 'NONE';

/** True for a type value the header defines (20 is the removed XS_RESTRICT). */
export function isKnownOp(type: number): type is XsOp {
  return Number.isInteger(type) && type >= 0 && type < XS_TYPE_COUNT && type !== 20;
}

export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function toBytes(s: string | Uint8Array): Uint8Array {
  return typeof s === 'string' ? enc.encode(s) : s;
}

/** Each string followed by a NUL: `<s>|*`. */
export function nulTerminated(strings: readonly string[]): Uint8Array {
  return enc.encode(strings.map((s) => s + '\0').join(''));
}

/**
 * Byte strings: one JS char (U+0000..U+00FF) per wire byte, Buffer's
 * 'latin1'. Watch tokens are opaque bytes and must come back byte for byte
 * (`tok\xff\xfe` is not UTF-8); the server keeps tokens, and the paths
 * that travel with them in events, as byte strings. (Valid paths are ASCII,
 * where the two encodings agree.)
 */
export function nulTerminatedBytes(strings: readonly string[]): Uint8Array {
  return Buffer.from(strings.map((s) => s + '\0').join(''), 'latin1');
}

/** splitNulTerminated, as byte strings (see nulTerminatedBytes). */
export function splitNulTerminatedBytes(payload: Uint8Array): string[] {
  if (payload.length === 0) return [];
  if (payload[payload.length - 1] !== 0) throw new XenstoreError('EINVAL', 'payload string is not NUL-terminated');
  return Buffer.from(payload.buffer, payload.byteOffset, payload.length - 1).toString('latin1').split('\0');
}

/** Concatenate byte parts (strings are UTF-8 encoded). */
export function concatBytes(parts: readonly (string | Uint8Array)[]): Uint8Array {
  const bufs = parts.map(toBytes);
  const out = new Uint8Array(bufs.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of bufs) { out.set(b, at); at += b.length; }
  return out;
}

/**
 * Split `<s>|*`: the payload must end in NUL (else XenstoreError EINVAL, as
 * xenstored answers a request whose last string is unterminated).
 */
export function splitNulTerminated(payload: Uint8Array): string[] {
  if (payload.length === 0) return [];
  if (payload[payload.length - 1] !== 0) throw new XenstoreError('EINVAL', 'payload string is not NUL-terminated');
  return dec.decode(payload.subarray(0, payload.length - 1)).split('\0');
}

/** `<first>|<rest|>`: a NUL-terminated string, then raw bytes. */
export function splitFirst(payload: Uint8Array): [string, Uint8Array] {
  const nul = payload.indexOf(0);
  if (nul < 0) throw new XenstoreError('EINVAL', 'payload string is not NUL-terminated');
  return [dec.decode(payload.subarray(0, nul)), payload.subarray(nul + 1)];
}

export function bytesToString(b: Uint8Array): string {
  return dec.decode(b);
}

/** Encode one message; throws E2BIG (nothing sent) if the payload exceeds 4096. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Uint8Array {
  if (payload.length > XENSTORE_PAYLOAD_MAX) {
    throw new XenstoreError('E2BIG', `payload ${payload.length} bytes exceeds XENSTORE_PAYLOAD_MAX ${XENSTORE_PAYLOAD_MAX}`);
  }
  const out = new Uint8Array(XSD_SOCKMSG_BYTES + payload.length);
  // Byte stores, not a DataView: one per message was a visible share of a request's CPU.
  putU32(out, 0, type);
  putU32(out, 4, reqId);
  putU32(out, 8, txId);
  putU32(out, 12, payload.length);
  out.set(payload, XSD_SOCKMSG_BYTES);
  return out;
}

/** Little-endian u32 at `at` (the header's byte order). */
function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

function getU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/**
 * A framing violation, with the whole messages that came before it in the
 * same chunk: they are valid requests and are processed before the
 * connection is closed (a stream is a sequence, as C xenstored reads it).
 */
export class XsFramingError extends ProtocolError {
  constructor(message: string, readonly parsed: readonly XsMessage[]) {
    super(message);
  }
}

/**
 * Incremental parser: feed it chunks split anywhere; it yields whole
 * messages. A header announcing more than XENSTORE_PAYLOAD_MAX is a protocol
 * violation (xenstored kills such a connection): `push` throws an
 * XsFramingError (a ProtocolError) carrying the messages parsed before the
 * bad header, and the parser stays failed (later pushes throw it, with none).
 */
export class XsParser {
  private buf = new Uint8Array(XSD_SOCKMSG_BYTES + XENSTORE_PAYLOAD_MAX);
  private have = 0;
  private failed: XsFramingError | undefined;

  /** Bytes of a partial message held (0 between messages). */
  get buffered(): number { return this.have; }

  push(chunk: Uint8Array): XsMessage[] {
    if (this.failed) throw this.failed;
    const out: XsMessage[] = [];
    let at = 0;
    while (at < chunk.length) {
      // Fast path: nothing buffered and a whole header in the chunk: read it
      // in place, and take a whole payload straight from the chunk (one copy,
      // as the buffered path makes). Same checks, same messages.
      if (this.have === 0 && chunk.length - at >= XSD_SOCKMSG_BYTES) {
        const len = getU32(chunk, at + 12);
        if (len > XENSTORE_PAYLOAD_MAX) {
          this.buf.set(chunk.subarray(at, at + XSD_SOCKMSG_BYTES), 0);
          this.have = XSD_SOCKMSG_BYTES;
          this.fail(len, out);
        }
        const end = at + XSD_SOCKMSG_BYTES + len;
        if (end <= chunk.length) {
          out.push({ type: getU32(chunk, at), reqId: getU32(chunk, at + 4), txId: getU32(chunk, at + 8), payload: chunk.slice(at + XSD_SOCKMSG_BYTES, end) });
          at = end;
          continue;
        }
      }
      const need = this.have < XSD_SOCKMSG_BYTES ? XSD_SOCKMSG_BYTES : XSD_SOCKMSG_BYTES + this.len();
      const take = Math.min(need - this.have, chunk.length - at);
      this.buf.set(chunk.subarray(at, at + take), this.have);
      this.have += take;
      at += take;
      if (this.have === XSD_SOCKMSG_BYTES) {
        const len = this.len();
        if (len > XENSTORE_PAYLOAD_MAX) this.fail(len, out);
      }
      if (this.have >= XSD_SOCKMSG_BYTES && this.have === XSD_SOCKMSG_BYTES + this.len()) {
        const b = this.buf;
        out.push({ type: getU32(b, 0), reqId: getU32(b, 4), txId: getU32(b, 8), payload: b.slice(XSD_SOCKMSG_BYTES, this.have) });
        this.have = 0;
      }
    }
    return out;
  }

  private fail(len: number, parsed: XsMessage[]): never {
    const message = `xenstore message length ${len} exceeds XENSTORE_PAYLOAD_MAX ${XENSTORE_PAYLOAD_MAX}`;
    this.failed = new XsFramingError(message, []);
    throw new XsFramingError(message, parsed);
  }

  private len(): number {
    return getU32(this.buf, 12);
  }
}
