/**
 * Reply messages of the transmission phase (proto.md "Simple reply
 * message", "Structured reply chunk message"). Each message is written
 * whole under one cork, so chunks of different requests may interleave
 * but never a message with another.
 *
 *  simple reply (16 bytes, then the data of a good NBD_CMD_READ)
 *  +-------------+-------+--------+
 *  | 0x67446698  | error | cookie |
 *  | u32         | u32   | u64    |
 *  +-------------+-------+--------+
 *
 *  structured reply chunk (20 bytes, then `length` bytes of payload)
 *  +-------------+-------+------+--------+--------+
 *  | 0x668e33ef  | flags | type | cookie | length |   flags bit 0: NBD_REPLY_FLAG_DONE (last chunk)
 *  | u32         | u16   | u16  | u64    | u32    |
 *  +-------------+-------+------+--------+--------+
 *
 *  payloads:
 *    NONE          (empty; always with DONE)
 *    OFFSET_DATA   offset u64, data
 *    OFFSET_HOLE   offset u64, hole size u32 (reads as zeroes)
 *    BLOCK_STATUS  context id u32, then (extent length u32, status flags u32)...
 *    ERROR         error u32, message length u16, message
 *    ERROR_OFFSET  error u32, message length u16, message, offset u64
 */
import type { Socket } from 'node:net';
import * as C from './constants.js';

/** What one chunk of a structured reply carries. */
export type Chunk =
  | { readonly type: 'none' }
  | { readonly type: 'data'; readonly offset: bigint; readonly data: Uint8Array }
  | { readonly type: 'hole'; readonly offset: bigint; readonly length: number }
  | { readonly type: 'status'; readonly context: number; readonly extents: readonly (readonly [length: number, flags: number])[] }
  | { readonly type: 'error'; readonly error: number; readonly message: string; readonly offset?: bigint };

export function writeSimple(sock: Socket, cookie: bigint, error: number, data?: Uint8Array): void {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(C.NBD_SIMPLE_REPLY_MAGIC, 0);
  h.writeUInt32BE(error, 4);
  h.writeBigUInt64BE(cookie, 8);
  sock.cork();
  sock.write(h);
  if (data !== undefined && data.length > 0) sock.write(data);
  sock.uncork();
}

/** Writes `chunks` as one structured reply: the last one carries NBD_REPLY_FLAG_DONE. */
export function writeStructured(sock: Socket, cookie: bigint, chunks: readonly Chunk[]): void {
  const all = chunks.length > 0 ? chunks : [{ type: 'none' } as const];
  sock.cork();
  all.forEach((chunk, i) => {
    const [type, payload] = encode(chunk);
    const length = payload.reduce((n, p) => n + p.length, 0);
    const h = Buffer.alloc(20);
    h.writeUInt32BE(C.NBD_STRUCTURED_REPLY_MAGIC, 0);
    h.writeUInt16BE(i === all.length - 1 ? C.NBD_REPLY_FLAG_DONE : 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(cookie, 8);
    h.writeUInt32BE(length, 16);
    sock.write(h);
    for (const p of payload) if (p.length > 0) sock.write(p);
  });
  sock.uncork();
}

function encode(chunk: Chunk): [number, Uint8Array[]] {
  switch (chunk.type) {
    case 'none':
      return [C.NBD_REPLY_TYPE_NONE, []];
    case 'data': {
      const o = Buffer.alloc(8);
      o.writeBigUInt64BE(chunk.offset);
      return [C.NBD_REPLY_TYPE_OFFSET_DATA, [o, chunk.data]];
    }
    case 'hole': {
      const b = Buffer.alloc(12);
      b.writeBigUInt64BE(chunk.offset, 0);
      b.writeUInt32BE(chunk.length, 8);
      return [C.NBD_REPLY_TYPE_OFFSET_HOLE, [b]];
    }
    case 'status': {
      const b = Buffer.alloc(4 + 8 * chunk.extents.length);
      b.writeUInt32BE(chunk.context, 0);
      chunk.extents.forEach(([length, flags], i) => {
        b.writeUInt32BE(length, 4 + 8 * i);
        b.writeUInt32BE(flags, 8 + 8 * i);
      });
      return [C.NBD_REPLY_TYPE_BLOCK_STATUS, [b]];
    }
    case 'error': {
      const msg = boundedMessage(chunk.message);
      const b = Buffer.alloc(6 + msg.length + (chunk.offset === undefined ? 0 : 8));
      b.writeUInt32BE(chunk.error, 0);
      b.writeUInt16BE(msg.length, 4);
      msg.copy(b, 6);
      if (chunk.offset !== undefined) b.writeBigUInt64BE(chunk.offset, 6 + msg.length);
      return [chunk.offset === undefined ? C.NBD_REPLY_TYPE_ERROR : C.NBD_REPLY_TYPE_ERROR_OFFSET, [b]];
    }
  }
}

/** A message is a string of at most 4096 bytes (proto.md "Conventions"); we keep it well under. */
function boundedMessage(message: string): Buffer {
  let b = Buffer.from(message.replace(/\0/g, ''), 'utf8');
  if (b.length > 1024) b = Buffer.from(b.subarray(0, 1024).toString('utf8').replace(/\uFFFD$/, ''), 'utf8');
  return b;
}

let zeros = Buffer.alloc(4096);

/**
 * Content chunks for `data` read at `offset`: runs of all-zero blocks of
 * `block` bytes become OFFSET_HOLE (nothing to send), the rest
 * OFFSET_DATA. The zero test is a native memcmp per block.
 */
export function contentChunks(offset: bigint, data: Uint8Array, block: number): Chunk[] {
  if (zeros.length < block) zeros = Buffer.alloc(block);
  const chunks: Chunk[] = [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let runStart = 0;
  let runHole = false;
  const flush = (end: number): void => {
    if (end === runStart) return;
    const at = offset + BigInt(runStart);
    chunks.push(runHole ? { type: 'hole', offset: at, length: end - runStart } : { type: 'data', offset: at, data: data.subarray(runStart, end) });
  };
  for (let at = 0; at < buf.length; at += block) {
    const end = Math.min(at + block, buf.length);
    const hole = buf.compare(zeros, 0, end - at, at, end) === 0;
    if (at === 0) runHole = hole;
    else if (hole !== runHole) {
      flush(at);
      runStart = at;
      runHole = hole;
    }
  }
  flush(buf.length);
  return chunks;
}
