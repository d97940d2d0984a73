/**
 * The fixed newstyle handshake and option haggling (proto.md "Newstyle
 * negotiation"), server side. Resolves with the export the client chose,
 * or undefined when the client aborted or left.
 *
 *  S: greeting (18 bytes)               C: client flags (4 bytes)
 *  +----------+----------+-------+      +-------------+
 *  | NBDMAGIC | IHAVEOPT | flags |      | flags u32   |  bit 0 FIXED_NEWSTYLE, bit 1 NO_ZEROES
 *  | u64      | u64      | u16   |      +-------------+
 *  +----------+----------+-------+
 *
 *  C: option                                      S: option reply
 *  +----------+--------+--------+------+          +-----------+--------+------+--------+------+
 *  | IHAVEOPT | option | length | data |          | REP_MAGIC | option | type | length | data |
 *  | u64      | u32    | u32    |      |          | u64       | u32    | u32  | u32    |      |
 *  +----------+--------+--------+------+          +-----------+--------+------+--------+------+
 *
 *  NBD_OPT_INFO / NBD_OPT_GO data: name length u32, name, request count u16, info types u16[].
 *  Replies: NBD_REP_INFO per item, then NBD_REP_ACK (GO: transmission starts after it).
 *    NBD_INFO_EXPORT      type u16 = 0, size u64, transmission flags u16
 *    NBD_INFO_NAME        type u16 = 1, name
 *    NBD_INFO_BLOCK_SIZE  type u16 = 3, minimum u32, preferred u32, maximum u32
 *  NBD_OPT_EXPORT_NAME (old way in): data is the name; the server answers
 *    size u64, transmission flags u16, then 124 zero bytes unless NO_ZEROES;
 *    an unknown name closes the connection (no way to say no).
 *  NBD_OPT_STRUCTURED_REPLY: no data; NBD_REP_ACK, and from then on the
 *    transmission flags carry NBD_FLAG_SEND_DF and meta contexts may be
 *    listed and set (meta-context.ts). Order matters: what GO or
 *    EXPORT_NAME sees is what was negotiated before it.
 */
import type { Socket } from 'node:net';
import * as C from './constants.js';
import type { SocketReader } from './reader.js';
import type { Export } from './export.js';
import { ALLOCATION_CONTEXT_ID, parseMetaQuery, selectContexts } from './meta-context.js';

export interface Negotiated {
  /** Its transmissionFlags are what this client was told. */
  readonly export: Export;
  /** NBD_OPT_STRUCTURED_REPLY was acknowledged: replies are structured. */
  readonly structured: boolean;
  /** The id of base:allocation when SET_META_CONTEXT chose it for this export (NBD_CMD_BLOCK_STATUS allowed). */
  readonly allocationContext: number | undefined;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function reply(sock: Socket, option: number, type: number, data: Buffer = Buffer.alloc(0)): void {
  const h = Buffer.alloc(20);
  h.writeBigUInt64BE(C.NBD_REP_MAGIC, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(type >>> 0, 12);
  h.writeUInt32BE(data.length, 16);
  sock.write(Buffer.concat([h, data]));
}

function errorReply(sock: Socket, option: number, type: number, message: string): void {
  reply(sock, option, type, Buffer.from(message, 'utf8'));
}

/** Parses NBD_OPT_INFO/GO data: the name and info requests, or a reason it is malformed. */
function parseGo(data: Buffer): { name: string; requests: number[] } | string {
  if (data.length < 6) return 'too short';
  const nameLen = data.readUInt32BE(0);
  if (nameLen > 4096 || 4 + nameLen + 2 > data.length) return 'name length out of bounds';
  const name = data.subarray(4, 4 + nameLen).toString('utf8');
  const n = data.readUInt16BE(4 + nameLen);
  if (data.length !== 4 + nameLen + 2 + 2 * n) return 'length does not match the information requests';
  const requests = Array.from({ length: n }, (_, i) => data.readUInt16BE(4 + nameLen + 2 + 2 * i));
  return { name, requests };
}

function infoReplies(sock: Socket, option: number, ex: Export, requests: number[]): void {
  const exp = Buffer.alloc(12);
  exp.writeUInt16BE(C.NBD_INFO_EXPORT, 0);
  exp.writeBigUInt64BE(ex.sizeBytes, 2);
  exp.writeUInt16BE(ex.transmissionFlags, 10);
  reply(sock, option, C.NBD_REP_INFO, exp);
  // Block sizes always: our device only takes whole sectors.
  const bs = Buffer.alloc(14);
  bs.writeUInt16BE(C.NBD_INFO_BLOCK_SIZE, 0);
  bs.writeUInt32BE(ex.sectorSize, 2);
  bs.writeUInt32BE(Math.max(ex.sectorSize, 4096), 6);
  bs.writeUInt32BE(C.MAX_PAYLOAD, 10);
  reply(sock, option, C.NBD_REP_INFO, bs);
  if (requests.includes(C.NBD_INFO_NAME)) reply(sock, option, C.NBD_REP_INFO, Buffer.concat([u16(C.NBD_INFO_NAME), Buffer.from(ex.name, 'utf8')]));
  if (requests.includes(C.NBD_INFO_DESCRIPTION) && ex.description) {
    reply(sock, option, C.NBD_REP_INFO, Buffer.concat([u16(C.NBD_INFO_DESCRIPTION), Buffer.from(ex.description, 'utf8')]));
  }
}

export async function negotiate(sock: Socket, reader: SocketReader, lookup: (name: string) => Export | undefined, all: () => Export[]): Promise<Negotiated | undefined> {
  const greeting = Buffer.alloc(18);
  greeting.writeBigUInt64BE(C.NBDMAGIC, 0);
  greeting.writeBigUInt64BE(C.IHAVEOPT, 8);
  greeting.writeUInt16BE(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES, 16);
  sock.write(greeting);
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if ((clientFlags & ~(C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES)) !== 0) return undefined; // unknown flags: spec says close
  const noZeroes = (clientFlags & C.NBD_FLAG_C_NO_ZEROES) !== 0;
  let structured = false;
  // The export name of the last successful SET_META_CONTEXT that chose base:allocation.
  let allocationFor: string | undefined;
  const chosen = (ex: Export): Negotiated => ({
    export: structured ? { ...ex, transmissionFlags: ex.transmissionFlags | C.NBD_FLAG_SEND_DF } : ex,
    structured,
    // Block status only on the export the contexts were set for (the empty name is the first export).
    allocationContext: allocationFor !== undefined && lookup(allocationFor)?.name === ex.name ? ALLOCATION_CONTEXT_ID : undefined,
  });

  for (;;) {
    const head = await reader.read(16);
    if (head.readBigUInt64BE(0) !== C.IHAVEOPT) return undefined; // not an option: nothing sane left to say
    const option = head.readUInt32BE(8);
    const length = head.readUInt32BE(12);
    if (length > C.MAX_OPTION) {
      // Too long to be a real option: skip it and say so.
      await reader.skip(length);
      errorReply(sock, option, C.NBD_REP_ERR_INVALID, `option data of ${length} bytes is too long`);
      continue;
    }
    const data = await reader.read(length);
    switch (option) {
      case C.NBD_OPT_EXPORT_NAME: {
        const found = lookup(data.toString('utf8'));
        if (found === undefined) return undefined;
        const go = chosen(found);
        const b = Buffer.alloc(noZeroes ? 10 : 134);
        b.writeBigUInt64BE(go.export.sizeBytes, 0);
        b.writeUInt16BE(go.export.transmissionFlags, 8);
        sock.write(b);
        return go;
      }
      case C.NBD_OPT_ABORT:
        reply(sock, option, C.NBD_REP_ACK);
        return undefined;
      case C.NBD_OPT_LIST:
        if (length !== 0) {
          errorReply(sock, option, C.NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const ex of all()) {
          const name = Buffer.from(ex.name, 'utf8');
          const b = Buffer.alloc(4);
          b.writeUInt32BE(name.length);
          reply(sock, option, C.NBD_REP_SERVER, Buffer.concat([b, name]));
        }
        reply(sock, option, C.NBD_REP_ACK);
        break;
      case C.NBD_OPT_INFO:
      case C.NBD_OPT_GO: {
        const go = parseGo(data);
        if (typeof go === 'string') {
          errorReply(sock, option, C.NBD_REP_ERR_INVALID, go);
          break;
        }
        const found = lookup(go.name);
        if (found === undefined) {
          errorReply(sock, option, C.NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(go.name)}`);
          break;
        }
        const result = chosen(found);
        infoReplies(sock, option, result.export, go.requests);
        reply(sock, option, C.NBD_REP_ACK);
        if (option === C.NBD_OPT_GO) return result;
        break;
      }
      case C.NBD_OPT_STRUCTURED_REPLY:
        if (length !== 0) {
          errorReply(sock, option, C.NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          break;
        }
        structured = true;
        reply(sock, option, C.NBD_REP_ACK);
        break;
      case C.NBD_OPT_LIST_META_CONTEXT:
      case C.NBD_OPT_SET_META_CONTEXT: {
        const set = option === C.NBD_OPT_SET_META_CONTEXT;
        if (set) allocationFor = undefined; // a SET replaces what was set before, even when it fails
        if (!structured) {
          errorReply(sock, option, C.NBD_REP_ERR_INVALID, 'negotiate NBD_OPT_STRUCTURED_REPLY first');
          break;
        }
        const q = parseMetaQuery(data);
        if (typeof q === 'string') {
          errorReply(sock, option, C.NBD_REP_ERR_INVALID, q);
          break;
        }
        if (lookup(q.exportName) === undefined) {
          errorReply(sock, option, C.NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(q.exportName)}`);
          break;
        }
        for (const name of selectContexts(q.queries, !set)) {
          const id = Buffer.alloc(4);
          id.writeUInt32BE(set ? ALLOCATION_CONTEXT_ID : 0);
          reply(sock, option, C.NBD_REP_META_CONTEXT, Buffer.concat([id, Buffer.from(name, 'utf8')]));
          if (set) allocationFor = q.exportName;
        }
        reply(sock, option, C.NBD_REP_ACK);
        break;
      }
      case C.NBD_OPT_STARTTLS:
        errorReply(sock, option, C.NBD_REP_ERR_POLICY, 'TLS is not offered: connect over 127.0.0.1 or a unix socket');
        break;
      default:
        // Extended headers and anything newer: not offered.
        errorReply(sock, option, C.NBD_REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}
