/**
 * Wire codec: op values and limits against the installed xs_wire.h (compiled
 * with gcc: the oracle is the C header, not our enum), golden bytes built by
 * hand in the test, and a parser fed every possible split of a stream.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  XsOp, XsParser, encodeMessage, XENSTORE_PAYLOAD_MAX, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX,
  XS_DEBUG, XSD_SOCKMSG_BYTES, XsFramingError, splitNulTerminated,
} from '../src/xenstore/wire.js';
import { XenstoreError, XSD_ERRORS } from '../src/xenstore/errors.js';
import { ProtocolError, XenpvError } from '../src/errors.js';

const HEADER = '/usr/include/xen/io/xs_wire.h';

function cValues(): Record<string, number | string> {
  if (!existsSync(HEADER)) throw new Error(`${HEADER} missing: apt-get install libxen-dev`);
  const names = Object.keys(XsOp).filter((k) => Number.isNaN(Number(k)));
  const dir = mkdtempSync(join(tmpdir(), 'xswire-'));
  const src = `#include <stdio.h>
#include <stdint.h>
#include <errno.h>
#include <xen/io/xs_wire.h>
int main(void) {
${names.map((n) => `  printf("${n}=%d\\n", (int)${n});`).join('\n')}
  printf("XS_DEBUG=%d\\n", (int)XS_DEBUG);
  printf("XS_TYPE_COUNT=%d\\n", (int)XS_TYPE_COUNT);
  printf("XENSTORE_PAYLOAD_MAX=%d\\n", XENSTORE_PAYLOAD_MAX);
  printf("XENSTORE_ABS_PATH_MAX=%d\\n", XENSTORE_ABS_PATH_MAX);
  printf("XENSTORE_REL_PATH_MAX=%d\\n", XENSTORE_REL_PATH_MAX);
  printf("SOCKMSG=%d\\n", (int)sizeof(struct xsd_sockmsg));
  for (unsigned i = 0; i < sizeof(xsd_errors)/sizeof(xsd_errors[0]); i++) printf("ERR%u=%s\\n", i, xsd_errors[i].errstring);
  return 0;
}`;
  writeFileSync(join(dir, 'x.c'), src);
  execFileSync('gcc', ['-o', join(dir, 'x'), join(dir, 'x.c')]);
  const out = execFileSync(join(dir, 'x'), { encoding: 'utf8' });
  const r: Record<string, number | string> = {};
  for (const line of out.trim().split('\n')) {
    const [k, v] = line.split('=');
    r[k!] = /^\d+$/.test(v!) ? Number(v) : v!;
  }
  return r;
}

/** Independent builder: header by hand with Buffer.writeUInt32LE. */
function frame(type: number, reqId: number, txId: number, payload: string | Buffer): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const h = Buffer.alloc(16);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(reqId, 4);
  h.writeUInt32LE(txId, 8);
  h.writeUInt32LE(p.length, 12);
  return Buffer.concat([h, p]);
}

describe('xenstore wire constants match xen/io/xs_wire.h', () => {
  const c = cValues();
  it('every XsOp has the header value', () => {
    for (const [name, v] of Object.entries(XsOp)) if (typeof v === 'number') expect([name, v]).toEqual([name, c[name]]);
    expect(XS_DEBUG).toBe(c['XS_DEBUG']);
    expect(Object.values(XsOp).filter((v) => typeof v === 'number')).toHaveLength((c['XS_TYPE_COUNT'] as number) - 1); // 20 is gone
  });
  it('limits and header size', () => {
    expect(XENSTORE_PAYLOAD_MAX).toBe(c['XENSTORE_PAYLOAD_MAX']);
    expect(XENSTORE_ABS_PATH_MAX).toBe(c['XENSTORE_ABS_PATH_MAX']);
    expect(XENSTORE_REL_PATH_MAX).toBe(c['XENSTORE_REL_PATH_MAX']);
    expect(XSD_SOCKMSG_BYTES).toBe(c['SOCKMSG']);
  });
  it('errno names include every xsd_errors[] entry', () => {
    const names = Object.entries(c).filter(([k]) => k.startsWith('ERR')).map(([, v]) => v);
    expect(names.length).toBeGreaterThan(10);
    for (const n of names) expect(XSD_ERRORS).toContain(n);
  });
});

describe('xenstore wire codec', () => {
  it('encodes the header as four little-endian u32s', () => {
    const got = Buffer.from(encodeMessage(XsOp.XS_WRITE, 0x01020304, 7, Buffer.from('/a\0xyz')));
    expect(got.equals(frame(11, 0x01020304, 7, '/a\0xyz'))).toBe(true);
  });

  it('refuses to encode a payload over 4096 bytes (E2BIG) and accepts exactly 4096', () => {
    expect(() => encodeMessage(XsOp.XS_WRITE, 1, 0, new Uint8Array(4097))).toThrow(XenstoreError);
    try { encodeMessage(XsOp.XS_WRITE, 1, 0, new Uint8Array(4097)); } catch (e) {
      expect((e as XenstoreError).errno).toBe('E2BIG');
      expect((e as XenpvError).code).toBe('xenstore');
    }
    expect(encodeMessage(XsOp.XS_WRITE, 1, 0, new Uint8Array(4096)).length).toBe(4112);
  });

  it('parses a stream split at every byte boundary, and byte by byte', () => {
    const msgs = [
      frame(2, 1, 0, '/local/domain/0/name\0'),
      frame(15, 0, 0, '/a/b\0tok\0'),
      frame(16, 9, 3, 'ENOENT\0'),
      frame(6, 2, 0, ''),
      frame(11, 0xffffffff, 0xfffffffe, Buffer.alloc(4096, 0x61)),
    ];
    const stream = Buffer.concat(msgs);
    const expected = msgs.map((m) => ({
      type: m.readUInt32LE(0), reqId: m.readUInt32LE(4), txId: m.readUInt32LE(8), payload: [...m.subarray(16)],
    }));
    const norm = (xs: { type: number; reqId: number; txId: number; payload: Uint8Array }[]) =>
      xs.map((m) => ({ type: m.type, reqId: m.reqId, txId: m.txId, payload: [...m.payload] }));
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new XsParser();
      const got = [...p.push(stream.subarray(0, cut)), ...p.push(stream.subarray(cut))];
      if (cut % 97 === 0 || cut < 64) expect(norm(got)).toEqual(expected);
      else expect(got.length).toBe(5);
      expect(p.buffered).toBe(0);
    }
    const p = new XsParser();
    const got = [];
    for (const b of stream) got.push(...p.push(Uint8Array.of(b)));
    expect(norm(got)).toEqual(expected);
  });

  it('fails the stream with ProtocolError when a header announces more than 4096 bytes', () => {
    const p = new XsParser();
    const bad = frame(2, 1, 0, '');
    bad.writeUInt32LE(4097, 12);
    expect(() => p.push(bad.subarray(0, 10))).not.toThrow();
    expect(() => p.push(bad.subarray(10))).toThrow(ProtocolError);
    expect(() => p.push(frame(2, 1, 0, 'x\0'))).toThrow(ProtocolError); // stays failed
  });

  it('an oversized header arriving whole after whole messages fails the stream, carrying the messages before it', () => {
    const p = new XsParser();
    const bad = frame(2, 7, 0, '');
    bad.writeUInt32LE(4097, 12);
    const chunk = Buffer.concat([frame(2, 1, 0, '/a\0'), frame(11, 2, 5, '/b\0v'), bad, frame(2, 3, 0, '/c\0')]);
    let err: unknown;
    try { p.push(chunk); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(XsFramingError);
    expect((err as XsFramingError).parsed.map((m) => [m.type, m.reqId, m.txId, Buffer.from(m.payload).toString('latin1')])).toEqual([
      [2, 1, 0, '/a\0'], [11, 2, 5, '/b\0v'],
    ]);
    expect(() => p.push(frame(2, 1, 0, 'x\0'))).toThrow(ProtocolError); // stays failed
  });

  it('splits NUL-terminated strings and rejects a missing final NUL with EINVAL', () => {
    expect(splitNulTerminated(Buffer.from('a\0bc\0'))).toEqual(['a', 'bc']);
    expect(splitNulTerminated(new Uint8Array(0))).toEqual([]);
    expect(() => splitNulTerminated(Buffer.from('a\0bc'))).toThrow(/EINVAL/);
  });
});
