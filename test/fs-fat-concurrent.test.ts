/**
 * fatfs caches FAT sectors, directory sectors and entries by path; our own
 * FAT writes (unlink, rename, rmdir, empty files) must never leave it
 * answering from those caches. Each test first warms every fatfs cache,
 * then changes the volume with our operations, and checks that the next
 * answers are the new ones; then runs reads, streams and writes at once.
 * Oracle for the end state: mdir -/, mtype and fsck.fat -n.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileSystem } from '../src/fs/open.js';
import type { FileSystem } from '../src/fs/types.js';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { makeFatImage, requireTools, type Tree } from './support/fs-tools.js';
import { fsckFatClean, mtree, mtype } from './support/fat-tools.js';

const enc = (s: string) => new TextEncoder().encode(s);
const BIG = pattern(300_001, 5);
const TREE: Tree = {
  '/index.html': enc('<p>index</p>\n'),
  '/victim.txt': enc('soon gone\n'),
  '/sub/keep.txt': enc('kept\n'),
  '/sub/deep/big.bin': BIG,
};

let scratch: string;
beforeAll(() => {
  requireTools('mkfs.fat', 'mcopy', 'mmd', 'mdir', 'mtype', 'fsck.fat');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-fatconc-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let serial = 0;
function image(kib: number, bits: 12 | 16 | 32): string {
  const img = join(scratch, `c${serial++}.img`);
  makeFatImage(img, kib, bits, TREE, scratch);
  return img;
}

async function collect(fs: FileSystem, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of fs.createReadStream(path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const KINDS = [
  { name: 'fat16', kib: 16384, bits: 16 },
  { name: 'fat32', kib: 40960, bits: 32 },
] as const;

describe.each(FLAVOURS)('$name device', (flavour) => {
  describe.each(KINDS)('$name', (kind) => {
    it('after our unlink, rename, rmdir and empty writes, fatfs answers from the device, not from its warm caches', async () => {
      const img = image(kind.kib, kind.bits);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      try {
        // Warm fatfs: entries by path, the root's sectors, /sub's cluster list, the FAT.
        expect((await fs.readFile('/victim.txt')).toString()).toBe('soon gone\n');
        expect((await fs.readdir('/')).map((n) => n.toLowerCase()).sort()).toEqual(['index.html', 'sub', 'victim.txt']);
        expect((await fs.stat('/sub/keep.txt')).size).toBe(5);
        await fs.writeFile('/sub/made.txt', 'made by fatfs\n');

        await fs.unlink('/victim.txt');
        await expect(fs.stat('/victim.txt')).rejects.toMatchObject({ reason: 'not-found' });
        await expect(fs.readFile('/victim.txt')).rejects.toMatchObject({ reason: 'not-found' });
        expect((await fs.readdir('/')).map((n) => n.toLowerCase()).sort()).toEqual(['index.html', 'sub']);

        // The freed clusters are taken by the next fatfs write: it must see them free, and nothing else may read them.
        const fresh = pattern(50_000, 9);
        await fs.writeFile('/fresh.bin', fresh);
        expect(Buffer.compare(await fs.readFile('/fresh.bin'), Buffer.from(fresh))).toBe(0);

        await fs.rename('/sub/keep.txt', '/kept at the top.txt');
        await expect(fs.stat('/sub/keep.txt')).rejects.toMatchObject({ reason: 'not-found' });
        expect((await fs.readFile('/kept at the top.txt')).toString()).toBe('kept\n');
        expect(await fs.readdir('/sub')).toEqual(['DEEP', 'made.txt']); // fatfs lists mtools' 8.3 'deep' as stored

        await fs.writeFile('/sub/made.txt', ''); // cut to zero by us, after fatfs wrote it
        expect((await fs.stat('/sub/made.txt')).size).toBe(0);
        await fs.writeFile('/sub/made.txt', 'again, by fatfs\n');
        expect((await fs.readFile('/sub/made.txt')).toString()).toBe('again, by fatfs\n');

        await fs.mkdir('/gone-dir');
        expect((await fs.stat('/gone-dir')).isDirectory()).toBe(true);
        await fs.rmdir('/gone-dir');
        await expect(fs.readdir('/gone-dir')).rejects.toMatchObject({ reason: 'not-found' });
        await fs.mkdir('/gone-dir'); // fatfs must not find the old entry
        await fs.writeFile('/gone-dir/in.txt', 'in\n');
      } finally {
        await fs.close();
      }
      const out = await finish();
      expect(mtree(out).map((p) => p.toLowerCase())).toEqual(
        ['/fresh.bin', '/gone-dir/', '/gone-dir/in.txt', '/index.html', '/kept at the top.txt', '/sub/', '/sub/deep/', '/sub/deep/big.bin', '/sub/made.txt'].sort(),
      );
      expect(mtype(out, '/sub/made.txt').toString()).toBe('again, by fatfs\n');
      const verdict = fsckFatClean(out);
      expect(verdict.clean, verdict.output).toBe(true);
    });

    it('a stream whose file is unlinked mid-way fails with not-found instead of reading freed clusters', async () => {
      const img = image(kind.kib, kind.bits);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      try {
        const it = fs.createReadStream('/sub/deep/big.bin')[Symbol.asyncIterator]();
        const first = (await it.next()).value as Buffer;
        expect(Buffer.compare(first, Buffer.from(BIG.subarray(0, first.length)))).toBe(0);
        await fs.unlink('/sub/deep/big.bin'); // 300 KB: more 64 KiB chunks are still to come
        await fs.writeFile('/taker.bin', pattern(300_001, 77)); // takes the freed clusters
        const drain = async () => {
          for (let r = await it.next(); !r.done; r = await it.next()) {
            const c = r.value as Buffer;
            expect(c.length).toBeGreaterThan(0);
          }
        };
        await expect(drain()).rejects.toMatchObject({ code: 'fs', reason: 'not-found' });
      } finally {
        await fs.close();
      }
      const verdict = fsckFatClean(await finish());
      expect(verdict.clean, verdict.output).toBe(true);
    });

    it('streams, reads and fatfs writes running alongside our unlinks and renames all see consistent bytes', async () => {
      const img = image(kind.kib, kind.bits);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      const rounds = 8;
      try {
        const streams = Array.from({ length: 3 }, () => collect(fs, '/sub/deep/big.bin'));
        const churn = Array.from({ length: rounds }, async (_, i) => {
          const data = pattern(20_000 + i * 997, 100 + i);
          await fs.writeFile(`/churn ${i}.bin`, data);
          expect(Buffer.compare(await fs.readFile(`/churn ${i}.bin`), Buffer.from(data)), `round ${i}`).toBe(0);
          await fs.rename(`/churn ${i}.bin`, `/sub/moved ${i}.bin`);
          expect(Buffer.compare(await collect(fs, `/sub/moved ${i}.bin`), Buffer.from(data)), `round ${i}`).toBe(0);
          if (i % 2 === 0) await fs.unlink(`/sub/moved ${i}.bin`);
          else await fs.writeFile(`/sub/moved ${i}.bin`, '');
        });
        const listings = Array.from({ length: rounds }, () => fs.readdir('/sub'));
        const [bigs] = await Promise.all([Promise.all(streams), Promise.all(churn), Promise.all(listings)]);
        for (const b of bigs) expect(Buffer.compare(b, Buffer.from(BIG))).toBe(0);
        const left = (await fs.readdir('/sub')).filter((n) => n.startsWith('moved')).sort();
        expect(left).toEqual(Array.from({ length: rounds / 2 }, (_, k) => `moved ${2 * k + 1}.bin`).sort());
      } finally {
        await fs.close();
      }
      const out = await finish();
      const tree = mtree(out);
      for (let i = 0; i < rounds; i++) expect(tree.includes(`/sub/moved ${i}.bin`), `moved ${i}`).toBe(i % 2 === 1);
      expect(mtype(out, '/sub/moved 1.bin').length).toBe(0);
      const verdict = fsckFatClean(out);
      expect(verdict.clean, verdict.output).toBe(true);
    });
  });
});
