/**
 * The `xenstore` target's hostile client: a connection that writes raw
 * messages (any type, transaction id and payload, sometimes an over-long
 * header), split anywhere, into the simulated xenstored — as a guest can.
 *
 * Invariants: the server never hits an internal error (its log stays free
 * of them); every reply is a well-formed message answering a request sent
 * (same req_id, same type or XS_ERROR with a known errno), at most once;
 * unless it dropped the connection, every complete request is answered; a
 * well-behaved dom0 client on the same server still works; once the hostile
 * connection closes, none of its watches or transactions remain.
 */
import * as fc from 'fast-check';
import { XSD_ERRORS } from '../../../src/xenstore/errors.js';
import { createChannelPair } from '../../../src/xenstore/transport/in-process.js';
import type { XenstoreServer } from '../../../src/xenstore/server/server.js';
import { check, FuzzViolation } from '../target.js';

export interface RawMsg { type: number; txId: number; payload: Uint8Array; longLen: boolean }
export interface RawCase { k: 'raw'; dom: 0 | 1 | 2; msgs: RawMsg[]; splits: number[] }

const enc = new TextEncoder();
const words = ['/', '/a', '/a/b', 'a', '/local/domain/1', '/local/domain/2/x', '@introduceDomain', '@releaseDomain', 'T', 'F', '1', '0', 'r1', 'n0', 'b2', 'tok', '', '0/1', 'xx'];
const structured = fc.array(fc.constantFrom(...words), { maxLength: 4 }).chain((parts) =>
  fc.boolean().map((terminated) => enc.encode(parts.join('\0') + (terminated ? '\0' : ''))));
const rawMsg: fc.Arbitrary<RawMsg> = fc.record({
  type: fc.oneof({ weight: 10, arbitrary: fc.nat({ max: 23 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) }),
  txId: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat({ max: 4 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) }),
  payload: fc.oneof({ weight: 4, arbitrary: structured }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) }),
  longLen: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
export const rawCase: fc.Arbitrary<RawCase> = fc.record({
  k: fc.constant('raw' as const),
  dom: fc.constantFrom(0 as const, 1 as const, 2 as const),
  msgs: fc.array(rawMsg, { minLength: 1, maxLength: 24, size: 'medium' }),
  splits: fc.array(fc.nat({ max: 2000 }), { maxLength: 8 }),
});

const OP_NAMES = ['CONTROL', 'DIRECTORY', 'READ', 'GET_PERMS', 'WATCH', 'UNWATCH', 'TRANSACTION_START', 'TRANSACTION_END', 'INTRODUCE', 'RELEASE', 'GET_DOMAIN_PATH', 'WRITE', 'MKDIR', 'RM', 'SET_PERMS', 'WATCH_EVENT', 'ERROR', 'IS_DOMAIN_INTRODUCED', 'RESUME', 'SET_TARGET', '(20)', 'RESET_WATCHES', 'DIRECTORY_PART'];
export function formatRawCase(c: RawCase): string {
  const lines = [`hostile connection as dom${c.dom}, split at ${JSON.stringify(c.splits)}:`];
  c.msgs.forEach((m, i) => lines.push(`  ${String(i).padStart(3)} ${OP_NAMES[m.type] ?? m.type} tx=${m.txId}${m.longLen ? ' len=4097' : ''} ${JSON.stringify(Buffer.from(m.payload).toString('latin1'))}`));
  return lines.join('\n');
}

const tick = () => new Promise<void>((r) => setImmediate(r));

export async function runRawCase(c: RawCase, makeServer: (log: (m: string) => void) => XenstoreServer): Promise<void> {
  const logs: string[] = [];
  const server = makeServer((m) => logs.push(m));
  const good = server.connect(0);
  const [mine, theirs] = createChannelPair();
  server.attachTransport(theirs, c.dom);
  let closed = false;
  let rx: Buffer = Buffer.alloc(0);
  mine.onData((chunk) => { rx = Buffer.concat([rx, chunk]); });
  mine.onClose(() => { closed = true; });
  try {
    // Build the stream: req_id = index + 1; stop at the first over-long header (nothing after it is a message).
    const parts: Uint8Array[] = [];
    const sent: RawMsg[] = [];
    for (const m of c.msgs) {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(m.type >>> 0, 0);
      h.writeUInt32LE(sent.length + 1, 4);
      h.writeUInt32LE(m.txId >>> 0, 8);
      h.writeUInt32LE(m.longLen ? 4097 : m.payload.length, 12);
      parts.push(h, m.payload);
      sent.push(m);
      if (m.longLen) break;
    }
    const stream = Buffer.concat(parts);
    const cuts = [...new Set(c.splits.map((s) => s % (stream.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    for (const cut of [...cuts, stream.length]) {
      mine.send(stream.subarray(prev, cut));
      prev = cut;
      await tick();
    }
    for (let i = 0; i < 4; i++) await tick();
    // The server still serves a well-behaved client.
    await good.write('/fuzz-alive', 'yes');
    check((await good.read('/fuzz-alive')) === 'yes', 'the server stopped serving a well-behaved client after a hostile one');
    const internal = logs.filter((l) => l.includes('internal error'));
    if (internal.length) throw new FuzzViolation(`xenstored hit an internal error on a hostile message: ${internal[0].slice(0, 600)}`);

    // Replies: well-formed, each answering a request once.
    const answered = new Set<number>();
    let at = 0;
    while (rx.length - at >= 16) {
      const type = rx.readUInt32LE(at), reqId = rx.readUInt32LE(at + 4), len = rx.readUInt32LE(at + 12);
      check(len <= 4096, `xenstored sent a reply with len ${len} > 4096`);
      check(rx.length - at - 16 >= len, 'xenstored sent a truncated reply');
      const payload = rx.subarray(at + 16, at + 16 + len);
      at += 16 + len;
      if (type === 15) continue; // XS_WATCH_EVENT
      const req = sent[reqId - 1];
      check(req !== undefined, `xenstored replied to req_id ${reqId}, which was never sent`);
      check(!answered.has(reqId), `xenstored answered req_id ${reqId} twice`);
      answered.add(reqId);
      if (type === 16) {
        const errno = Buffer.from(payload).toString('latin1');
        check(errno.endsWith('\0') && (XSD_ERRORS as readonly string[]).includes(errno.slice(0, -1)), `XS_ERROR payload ${JSON.stringify(errno)} is not a NUL-terminated errno name`);
      } else {
        check(type === req.type, `reply type ${type} to a request of type ${req.type}`);
      }
    }
    check(at === rx.length, `xenstored left ${rx.length - at} stray bytes after its last reply`);
    const bad = sent.findIndex((m) => m.longLen);
    check(bad < 0 || closed, 'xenstored kept a connection open after a header with len > 4096');
    if (!closed) {
      for (let i = 1; i <= sent.length; i++) check(answered.has(i), `request ${i} (${OP_NAMES[sent[i - 1].type] ?? sent[i - 1].type}) got no reply on an open connection`);
    }
  } finally {
    mine.close();
    for (let i = 0; i < 3; i++) await tick();
    const st = server.stats();
    await good.close();
    await server.close();
    check(st.connections === 1 && st.watches === 0 && st.transactions === 0, `after the hostile connection closed the server still holds ${JSON.stringify(st)} (only the good client should remain)`);
  }
}
