/**
 * Multi-range requests (RFC 9110 14.2, 14.6): curl asks (`-r 0-9,20-29`),
 * Python's `email` package parses the multipart/byteranges body (a MIME
 * parser nobody here wrote), and every part is compared byte for byte with
 * the file put into the image by mtools. Over file:, memory: and xen: on
 * the simulation (HTTP → FAT → blkfront → ring → blkback → image file).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RANGES, parseRange } from '../src/serve/range.js';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { makeFatImage, mcat, requireTools, type Tree } from './support/fs-tools.js';
import { curlIn, rawExchange, serveImage, type Reply } from './support/http.js';

const run = promisify(execFile);
const enc = (s: string) => new TextEncoder().encode(s);
const BIG = pattern(300_007, 9);
const SITE: Tree = {
  '/big.bin': BIG,
  '/page.html': enc('<!doctype html><title>ranges</title><p>0123456789abcdefghijklmnopqrstuvwxyz</p>\n'),
};

let scratch: string;
let mpN = 0;
const curl = (target: string, ...args: string[]): Promise<Reply> => curlIn(scratch, target, ...args);

interface Part {
  type: string;
  range: string;
  data: Buffer;
}

/** Parses a multipart body with Python's email package; fails on any MIME defect. */
async function parseMultipart(contentType: string, body: Buffer): Promise<Part[]> {
  const file = join(scratch, `mp${mpN++}`);
  writeFileSync(file, body);
  const script = [
    'import sys, json, email',
    "raw = b'Content-Type: ' + sys.argv[1].encode() + b'\\r\\n\\r\\n' + open(sys.argv[2], 'rb').read()",
    'msg = email.message_from_bytes(raw)  # compat32: headers as sent',
    "assert msg.is_multipart(), 'not multipart'",
    'defects = [type(d).__name__ for d in msg.defects]',
    'parts = []',
    'for p in msg.get_payload():',
    '    defects += [type(d).__name__ for d in p.defects]',
    "    parts.append({'type': p['Content-Type'], 'range': p['Content-Range'], 'hex': p.get_payload(decode=True).hex(), 'keys': list(p.keys())})",
    "print(json.dumps({'defects': defects, 'parts': parts}))",
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script, contentType, file], { maxBuffer: 1 << 26 });
  const out = JSON.parse(stdout) as { defects: string[]; parts: { type: string; range: string; hex: string; keys: string[] }[] };
  expect(out.defects).toEqual([]);
  for (const p of out.parts) expect(p.keys).toEqual(['Content-Type', 'Content-Range']);
  return out.parts.map((p) => ({ type: p.type, range: p.range, data: Buffer.from(p.hex, 'hex') }));
}

beforeAll(() => {
  requireTools('curl', 'python3', 'mkfs.fat', 'mcopy');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-ranges-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.each(FLAVOURS)('$name device, FAT site built by mtools', (flavour) => {
  let site: Awaited<ReturnType<typeof serveImage>> | undefined;
  let url: string;
  let onDisk: Buffer;
  beforeAll(async () => {
    const img = join(scratch, `${flavour.name}.img`);
    makeFatImage(img, 4096, 12, SITE, scratch);
    onDisk = mcat(img, '/big.bin'); // the file as mtools reads it back from the image
    expect(onDisk.equals(Buffer.from(BIG))).toBe(true);
    site = await serveImage(flavour, img, { port: 0 });
    url = site.address;
  });
  afterAll(async () => {
    await site?.close();
  });

  it('answers two ranges with 206 multipart/byteranges, each part typed, ranged and byte-exact', async () => {
    const r = await curl(`${url}/big.bin`, '-r', '0-9,20-29');
    expect(r.status).toBe(206);
    expect(r.headers['content-type']).toMatch(/^multipart\/byteranges; boundary=[0-9a-f]{24}$/);
    expect(r.headers['content-range']).toBeUndefined();
    expect(r.headers['content-length']).toBe(String(r.body.length));
    const parts = await parseMultipart(r.headers['content-type']!, r.body);
    expect(parts.map((p) => [p.type, p.range])).toEqual([
      ['application/octet-stream', 'bytes 0-9/300007'],
      ['application/octet-stream', 'bytes 20-29/300007'],
    ]);
    expect(parts[0]!.data.equals(onDisk.subarray(0, 10))).toBe(true);
    expect(parts[1]!.data.equals(onDisk.subarray(20, 30))).toBe(true);
  });

  it('keeps the order asked, takes suffix and open ranges, and clamps the last byte to the file', async () => {
    const r = await curl(`${url}/big.bin`, '-r', '200000-200099,-100,1000-1999');
    expect(r.status).toBe(206);
    const parts = await parseMultipart(r.headers['content-type']!, r.body);
    expect(parts.map((p) => p.range)).toEqual(['bytes 200000-200099/300007', 'bytes 299907-300006/300007', 'bytes 1000-1999/300007']);
    expect(parts[1]!.data.equals(onDisk.subarray(299907))).toBe(true);
    expect(parts[2]!.data.equals(onDisk.subarray(1000, 2000))).toBe(true);
    const clamped = await curl(`${url}/big.bin`, '-r', '290000-999999,0-9,250000-');
    const cparts = await parseMultipart(clamped.headers['content-type']!, clamped.body);
    // 250000- overlaps 290000-: merging sorts them; 0-9 stays apart.
    expect(cparts.map((p) => p.range)).toEqual(['bytes 0-9/300007', 'bytes 250000-300006/300007']);
    expect(cparts[1]!.data.equals(onDisk.subarray(250000))).toBe(true);
  });

  it('types every part of a text file with the file\'s type', async () => {
    const page = Buffer.from(SITE['/page.html']!);
    const r = await curl(`${url}/page.html`, '-r', '0-4,-5');
    const parts = await parseMultipart(r.headers['content-type']!, r.body);
    expect(parts.map((p) => p.type)).toEqual(['text/html; charset=utf-8', 'text/html; charset=utf-8']);
    expect(parts[0]!.data.equals(page.subarray(0, 5))).toBe(true);
    expect(parts[1]!.data.equals(page.subarray(page.length - 5))).toBe(true);
  });

  it('coalesces overlapping or adjacent ranges into one, sending no byte twice', async () => {
    const r = await curl(`${url}/big.bin`, '-r', '100-199,0-149,150-160,170-180');
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe('bytes 0-199/300007');
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.body.equals(onDisk.subarray(0, 200))).toBe(true);
    // Many overlapping copies of the whole file cost one copy, not many.
    const amp = await curl(`${url}/big.bin`, '-r', Array.from({ length: 50 }, () => '0-').join(','));
    expect(amp.status).toBe(206);
    expect(amp.body.length).toBe(onDisk.length);
    // Two groups stay two parts, sorted once merging was needed.
    const two = await curl(`${url}/big.bin`, '-r', '5000-5099,10-19,5050-5199,0-9');
    const parts = await parseMultipart(two.headers['content-type']!, two.body);
    expect(parts.map((p) => p.range)).toEqual(['bytes 0-19/300007', 'bytes 5000-5199/300007']);
    expect(parts[1]!.data.equals(onDisk.subarray(5000, 5200))).toBe(true);
  });

  it(`ignores a header with more than ${MAX_RANGES} ranges or an invalid one and sends the whole file`, async () => {
    const many = Array.from({ length: MAX_RANGES + 1 }, (_, i) => `${i * 1000}-${i * 1000 + 1}`).join(',');
    const r = await curl(`${url}/big.bin`, '-r', many);
    expect(r.status).toBe(200);
    expect(r.body.equals(onDisk)).toBe(true);
    const bad = await curl(`${url}/big.bin`, '-r', '0-9,30-20');
    expect(bad.status).toBe(200);
    expect(bad.body.length).toBe(onDisk.length);
  });

  it('drops unsatisfiable ranges when others remain, and answers 416 with bytes */size when none does', async () => {
    const some = await curl(`${url}/big.bin`, '-r', '0-9,400000-400010');
    expect(some.status).toBe(206);
    expect(some.headers['content-range']).toBe('bytes 0-9/300007');
    expect(some.body.equals(onDisk.subarray(0, 10))).toBe(true);
    const none = await curl(`${url}/big.bin`, '-r', '400000-400010,300007-,-0');
    expect(none.status).toBe(416);
    expect(none.headers['content-range']).toBe('bytes */300007');
  });

  it('answers HEAD with the status, type and length GET gives, and no body', async () => {
    const get = await curl(`${url}/big.bin`, '-r', '0-9,20-29,100-');
    const head = await curl(`${url}/big.bin`, '-I', '-r', '0-9,20-29,100-');
    expect(head.status).toBe(206);
    expect(head.headers['content-type']).toMatch(/^multipart\/byteranges; boundary=[0-9a-f]{24}$/);
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    // On the wire (curl -I never reads a body): nothing after the blank line.
    const raw = await rawExchange(url, 'HEAD /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9,20-29,100-\r\nConnection: close\r\n\r\n');
    expect(raw.startsWith('HTTP/1.1 206 ')).toBe(true);
    expect(raw.endsWith('\r\n\r\n')).toBe(true);
  });

  it('honours If-Range: the current ETag gets the parts, a stale one the whole file', async () => {
    const etag = (await curl(`${url}/big.bin`, '-I')).headers['etag']!;
    const fresh = await curl(`${url}/big.bin`, '-r', '0-9,20-29', '-H', `If-Range: ${etag}`);
    expect(fresh.status).toBe(206);
    expect(await parseMultipart(fresh.headers['content-type']!, fresh.body)).toHaveLength(2);
    const stale = await curl(`${url}/big.bin`, '-r', '0-9,20-29', '-H', 'If-Range: "0-0-0"');
    expect(stale.status).toBe(200);
    expect(stale.body.equals(onDisk)).toBe(true);
  });
});

describe('parseRange (RFC 9110 14.1.2 examples)', () => {
  const size = 10000;
  it('reads the RFC examples as the RFC says', () => {
    expect(parseRange('bytes=0-499', size)).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 499 }] });
    expect(parseRange('bytes=500-999', size)).toEqual({ kind: 'ranges', ranges: [{ start: 500, end: 999 }] });
    expect(parseRange('bytes=-500', size)).toEqual({ kind: 'ranges', ranges: [{ start: 9500, end: 9999 }] });
    expect(parseRange('bytes=9500-', size)).toEqual({ kind: 'ranges', ranges: [{ start: 9500, end: 9999 }] });
    expect(parseRange('bytes=0-0,-1', size)).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 0 }, { start: 9999, end: 9999 }] });
    // "bytes=500-600,601-999" and "bytes=500-700,601-999" both mean 500-999.
    expect(parseRange('bytes=500-600,601-999', size)).toEqual({ kind: 'ranges', ranges: [{ start: 500, end: 999 }] });
    expect(parseRange('bytes=500-700,601-999', size)).toEqual({ kind: 'ranges', ranges: [{ start: 500, end: 999 }] });
  });

  it('accepts optional whitespace and empty list elements, and a case-insensitive unit', () => {
    expect(parseRange('Bytes = 0-1 , ,  500-600', size)).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 1 }, { start: 500, end: 600 }] });
  });

  it('ignores other units and bad syntax', () => {
    for (const h of ['items=0-1', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=1-2-3', 'bytes=0-1;2-3']) expect(parseRange(h, size), h).toEqual({ kind: 'none' });
  });
});
