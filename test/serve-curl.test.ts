/**
 * The website served from a disk image, driven by real curl: a site image
 * built by mkfs.fat + mcopy (and one by mkfs.ext4 -d), on every device
 * flavour; on `xen` the whole chain is HTTP → FAT/ext4 → blkfront → ring →
 * blkback → image file. One test body per behaviour, rerun per flavour.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { makeExt4Image, makeFatImage, requireTools, type Tree } from './support/fs-tools.js';
import { curlIn, rawExchange, serveImage, type Reply } from './support/http.js';

const enc = (s: string) => new TextEncoder().encode(s);

const SITE: Tree = {
  '/index.html': enc('<!doctype html><title>site</title><link rel="stylesheet" href="style.css"><p>served from a disk image</p>\n'),
  '/style.css': enc('body { font-family: sans-serif }\n'),
  '/app.js': enc('console.log("hi");\n'),
  '/big.bin': pattern(1_000_003, 5),
  '/docs/guide.txt': enc('the guide\n'),
  '/docs/a b&c.html': enc('<p>odd name</p>\n'),
};

let scratch: string;
const curl = (target: string, ...args: string[]): Promise<Reply> => curlIn(scratch, target, ...args);

beforeAll(() => {
  requireTools('curl', 'mkfs.fat', 'mcopy', 'mmd', 'mkfs.ext4');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-serve-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const IMAGES = [
  { name: 'FAT site built by mtools', build: (img: string) => makeFatImage(img, 16384, 16, SITE, scratch) },
  { name: 'ext4 site built by mkfs.ext4 -d', build: (img: string) => makeExt4Image(img, 8192, SITE, scratch) },
] as const;

describe.each(FLAVOURS)('$name device', (flavour) => {
  describe.each(IMAGES)('$name', (image) => {
    let site: Awaited<ReturnType<typeof serveImage>> | undefined;
    let url: string;
    beforeAll(async () => {
      const img = join(scratch, `${flavour.name}-${image.name.split(' ')[0]}.img`);
      image.build(img);
      site = await serveImage(flavour, img, { port: 0 });
      url = site.address;
    });
    afterAll(async () => {
      await site?.close();
    });

    it('binds 127.0.0.1 and serves index.html for / with its content type', async () => {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const r = await curl(`${url}/`);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.body.equals(Buffer.from(SITE['/index.html']!))).toBe(true);
    });

    it('serves every file byte for byte with a content type by extension', async () => {
      const types: Record<string, string> = { '/style.css': 'text/css; charset=utf-8', '/app.js': 'text/javascript; charset=utf-8', '/big.bin': 'application/octet-stream', '/docs/guide.txt': 'text/plain; charset=utf-8' };
      for (const [path, type] of Object.entries(types)) {
        const r = await curl(`${url}${path}`);
        expect(r.status, path).toBe(200);
        expect(r.headers['content-type'], path).toBe(type);
        expect(r.headers['content-length'], path).toBe(String(SITE[path]!.byteLength));
        expect(Buffer.compare(r.body, Buffer.from(SITE[path]!)), path).toBe(0);
      }
      const odd = await curl(`${url}/docs/a%20b%26c.html`);
      expect(odd.body.toString()).toBe('<p>odd name</p>\n');
    });

    it('answers HEAD with the headers of GET and no body', async () => {
      const r = await curl(`${url}/big.bin`, '-I');
      const get = await curl(`${url}/big.bin`);
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe('1000003');
      expect(r.headers['accept-ranges']).toBe('bytes');
      expect(r.headers['etag']).toMatch(/^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
      expect(r.headers['etag']).toBe(get.headers['etag']);
      // On the wire (not through curl, which never reads a HEAD body):
      // everything after the blank line that ends the headers is nothing.
      const raw = await rawExchange(url, 'HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(raw.endsWith('\r\n\r\n')).toBe(true);
    });

    it('answers If-None-Match with the current ETag with 304, and a stale one with 200', async () => {
      const first = await curl(`${url}/style.css`);
      const etag = first.headers['etag']!;
      const again = await curl(`${url}/style.css`, '-H', `If-None-Match: ${etag}`);
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
      const stale = await curl(`${url}/style.css`, '-H', 'If-None-Match: "0-0-0"');
      expect(stale.status).toBe(200);
    });

    it('serves byte ranges as 206 with Content-Range, and a range past the end as 416', async () => {
      const big = Buffer.from(SITE['/big.bin']!);
      const mid = await curl(`${url}/big.bin`, '-r', '1000-65535');
      expect(mid.status).toBe(206);
      expect(mid.headers['content-range']).toBe('bytes 1000-65535/1000003');
      expect(mid.body.equals(big.subarray(1000, 65536))).toBe(true);
      const suffix = await curl(`${url}/big.bin`, '-r', '-10');
      expect(suffix.status).toBe(206);
      expect(suffix.body.equals(big.subarray(big.length - 10))).toBe(true);
      const open = await curl(`${url}/big.bin`, '-r', '999990-');
      expect(open.body.equals(big.subarray(999990))).toBe(true);
      const past = await curl(`${url}/big.bin`, '-r', '2000000-');
      expect(past.status).toBe(416);
      expect(past.headers['content-range']).toBe('bytes */1000003');
    });

    it('redirects a directory to its slash and lists one without index.html', async () => {
      const redirect = await curl(`${url}/docs`);
      expect(redirect.status).toBe(301);
      expect(redirect.headers['location']).toBe('/docs/');
      const list = await curl(`${url}/docs/`);
      expect(list.status).toBe(200);
      expect(list.headers['content-type']).toBe('text/html; charset=utf-8');
      const html = list.body.toString().toLowerCase();
      expect(html).toContain('href="/docs/guide.txt"');
      expect(html).toContain('href="/docs/a%20b%26c.html"');
      expect(html).toContain('a b&#38;c.html');
    });

    it('gives 404 for what is not there and 405 (with Allow) for other methods', async () => {
      expect((await curl(`${url}/nope.html`)).status).toBe(404);
      expect((await curl(`${url}/style.css/x`)).status).toBe(404);
      expect((await curl(`${url}/style.css/`)).status).toBe(404);
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const r = await curl(`${url}/index.html`, '-X', method, '-d', 'x');
        expect(r.status, method).toBe(405);
        expect(r.headers['allow']).toBe('GET, HEAD');
      }
    });

    it('refuses paths that try to leave the file system: .., encoded slashes, NUL, backslashes', async () => {
      for (const path of ['/../etc/passwd', '/docs/../../x', '/%2e%2e/x', '/docs%2Fguide.txt', '/docs%2fguide.txt', '/a%00b', '/docs%5C..%5Cindex.html', '/%ZZ']) {
        expect((await curl(`${url}${path}`)).status, path).toBe(400);
      }
    });
  });
});

describe('a unix socket', () => {
  it('serves the same site to curl --unix-socket', async () => {
    const img = join(scratch, 'sock.img');
    makeFatImage(img, 2048, 12, SITE, scratch);
    const socket = join(scratch, 'site.sock');
    const site = await serveImage(FLAVOURS.find((f) => f.name === 'file')!, img, { socket });
    try {
      expect(site.address).toBe(socket);
      const r = await curl('http://localhost/docs/guide.txt', '--unix-socket', socket);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('the guide\n');
    } finally {
      await site.close();
    }
  });
});
