/**
 * `xenpv serve` and `xenpv serve bench` as a user runs them (bin/xenpv.js
 * in a child process): the site answers curl, SIGTERM stops it with exit
 * 0, and the command-line conventions hold (exit 2 for usage, 1 for a
 * failure, --help without doing any work).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFatImage, requireTools, type Tree } from './support/fs-tools.js';

const run = promisify(execFile);
const XENPV = join(fileURLToPath(new URL('..', import.meta.url)), 'bin/xenpv.js');
const SITE: Tree = { '/index.html': new TextEncoder().encode('<p>cli</p>\n'), '/a.txt': new TextEncoder().encode('0123456789abcdefghij') };

let scratch: string;
let img: string;
beforeAll(() => {
  requireTools('curl', 'mkfs.fat', 'mcopy', 'wrk', 'mkfs.ext4');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-serve-cli-'));
  img = join(scratch, 'site.img');
  makeFatImage(img, 2048, 12, SITE, scratch);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const xenpv = (...args: string[]) => run(process.execPath, [XENPV, ...args], { timeout: 120_000 }).then((r) => ({ code: 0, ...r }), (e) => e);

describe('xenpv serve (command line)', () => {
  it('serves the image on a free 127.0.0.1 port (multi-range too) until SIGTERM, then exits 0', async () => {
    const child = spawn(process.execPath, [XENPV, 'serve', `file:${img}`, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => {
          out += c;
          const m = /serving fat from file:\S+ on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      const { stdout } = await run('curl', ['-s', `${url}/a.txt`]);
      expect(stdout).toBe('0123456789abcdefghij');
      const { stdout: multi } = await run('curl', ['-s', '-i', '-r', '0-1,5-6', `${url}/a.txt`]);
      expect(multi).toMatch(/^HTTP\/1\.1 206 /);
      expect(multi).toContain('Content-Range: bytes 5-6/20');
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(stderr).toContain('xenpv serve: interrupted by SIGTERM, stopped');
  });

  it('exits 2 with a hint for usage errors, and 1 when the device cannot be served', async () => {
    for (const args of [
      ['serve'],
      ['serve', `file:${img}`, '--port', '1', '--socket', join(scratch, 's')],
      ['serve', `file:${img}`, '--port', '70000'],
      ['serve', `file:${img}`, '--type', 'ntfs'],
      ['serve', 'memory:1MiB', '--via-sim'],
      ['serve', `file:${img}`, '--bogus'],
      ['serve', 'nonsense'],
    ]) {
      const r = await xenpv(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain("run 'xenpv serve --help' for usage");
    }
    for (const args of [['serve', 'memory:1MiB', '--port', '0'], ['serve', `file:${join(scratch, 'missing.img')}`, '--via-sim']]) {
      const r = await xenpv(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/^xenpv serve: /);
      expect(r.stderr, args.join(' ')).not.toContain('internal error');
    }
  });

  it('--help for serve and serve bench prints the options and exits 0', async () => {
    const serve = await xenpv('serve', '--help');
    expect(serve.code).toBe(0);
    for (const flag of ['usage: xenpv serve <device>', '--port N', '--socket PATH', '--host ADDR', '--type T', '--via-sim', 'serve bench']) expect(serve.stdout).toContain(flag);
    const bench = await xenpv('serve', 'bench', '--help');
    expect(bench.code).toBe(0);
    for (const flag of ['usage: xenpv serve bench', '--duration S', '--connections N', '--large MiB', '--out DIR', '--json']) expect(bench.stdout).toContain(flag);
    expect((await xenpv('serve', 'bench', '--duration', '0')).code).toBe(2);
  });
});

describe('xenpv serve bench (command line)', () => {
  it('measures every server against the host baseline and writes JSON and SVG', async () => {
    const out = join(scratch, 'bench');
    const r = await xenpv('serve', 'bench', '--duration', '1', '--connections', '2', '--large', '1', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const { results } = JSON.parse(r.stdout) as { results: { server: string; file: string; requestsPerSec: number; errors: number }[] };
    expect(results.map((x) => `${x.server} ${x.file}`)).toEqual(
      ['host fs (node:http)', 'fat on file:', 'ext4 on file:', 'fat on xen: (sim)'].flatMap((s) => [`${s} small.html`, `${s} large.bin`]),
    );
    for (const x of results) {
      expect(x.requestsPerSec).toBeGreaterThan(0);
      expect(x.errors).toBe(0);
    }
    expect(JSON.parse(readFileSync(join(out, 'serve-bench.json'), 'utf8')).results).toEqual(results);
    expect(readFileSync(join(out, 'serve-bench.svg'), 'utf8')).toMatch(/^<svg/);
  }, 180_000);
});
