/**
 * unlink, rename, rmdir and empty files on FAT12/16/32, which are ours
 * (src/fs/fat-ops.ts, not fatfs), over every device flavour (file,
 * memory, xen on the simulation). Oracles: images built by mkfs.fat +
 * mcopy/mmd, changed by mren/mdel/mrd where the test says so; afterwards
 * `mdir -/` must list exactly the expected tree, `mtype`/`mcopy` the
 * expected bytes, and `fsck.fat -n` must have nothing to say.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileSystem } from '../src/fs/open.js';
import type { FileSystem } from '../src/fs/types.js';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { makeFatImage, mcat, requireTools, type Tree } from './support/fs-tools.js';
import { fsckFatClean, mtool, mtree, mtype } from './support/fat-tools.js';

const enc = (s: string) => new TextEncoder().encode(s);
const TREE: Tree = {
  '/index.html': enc('<!doctype html><p>index</p>\n'),
  '/a long file name.txt': enc('long names survive\n'),
  '/gone.txt': enc('to be unlinked\n'),
  '/victim.txt': enc('to be replaced by a rename\n'),
  '/sub/old.txt': enc('the old text, moved over victim.txt\n'),
  '/sub/deep/data.bin': pattern(300_001, 7),
  '/sub/deep/x/empty-me.txt': enc('x'),
};

const FAT_KINDS = [
  { name: 'fat12', kib: 2048, bits: 12 },
  { name: 'fat16', kib: 16384, bits: 16 },
  { name: 'fat32', kib: 40960, bits: 32 },
] as const;

let scratch: string;
beforeAll(() => {
  requireTools('mkfs.fat', 'mcopy', 'mmd', 'mdir', 'mtype', 'mren', 'mdel', 'mrd', 'fsck.fat');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-fatops-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let serial = 0;
function image(kind: (typeof FAT_KINDS)[number], tree: Tree = TREE): string {
  const img = join(scratch, `${kind.name}-${serial++}.img`);
  makeFatImage(img, kind.kib, kind.bits, tree, scratch);
  return img;
}

async function expectMissing(fs: FileSystem, path: string): Promise<void> {
  await expect(fs.stat(path)).rejects.toMatchObject({ code: 'fs', reason: 'not-found' });
}

describe.each(FLAVOURS)('$name device', (flavour) => {
  describe.each(FAT_KINDS)('$name', (kind) => {
    it('unlinks, renames (same directory, across directories, over a file), removes empty directories; mdir, mtype and fsck.fat agree', async () => {
      const img = image(kind);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      const many = Array.from({ length: 30 }, (_, i) => `many long-named file number ${i}.txt`);
      try {
        await fs.unlink('/gone.txt');
        await expectMissing(fs, '/gone.txt');
        await fs.rename('/a long file name.txt', '/Renamed With A Longer Name.txt');
        await fs.rename('/index.html', '/Index.HTML'); // the same entry, only the case changes
        await fs.rename('/sub/deep/data.bin', '/moved data.bin');
        await fs.rename('/sub/old.txt', '/victim.txt'); // replaces the file there
        await fs.unlink('/sub/deep/x/empty-me.txt');
        await fs.rmdir('/sub/deep/x');
        await fs.rename('/sub/deep', '/top-deep'); // a directory changing parent: its '..' follows
        await fs.mkdir('/made');
        await fs.mkdir('/made/inner');
        await fs.mkdir('/top-deep/inner');
        await fs.rename('/made/inner', '/top-deep/inner'); // replaces an empty directory; '..' to a non-root parent
        // Thirty long names moved into /made make it grow by clusters.
        for (const n of many) await fs.writeFile(`/${n}`, n);
        for (const n of many) await fs.rename(`/${n}`, `/made/${n}`);
        expect(await fs.readdir('/made')).toEqual([...many].sort());
        expect((await fs.readFile('/victim.txt')).toString()).toBe('the old text, moved over victim.txt\n');
        expect(Buffer.compare(await fs.readFile('/moved data.bin'), Buffer.from(TREE['/sub/deep/data.bin']!))).toBe(0);
        await expectMissing(fs, '/sub/old.txt');
        expect(await fs.readdir('/sub')).toEqual([]);
      } finally {
        await fs.close();
      }
      const out = await finish();
      expect(mtree(out)).toEqual(
        [
          '/Renamed With A Longer Name.txt',
          '/Index.HTML',
          '/made/',
          ...many.map((n) => `/made/${n}`),
          '/moved data.bin',
          '/sub/',
          '/top-deep/',
          '/top-deep/inner/',
          '/victim.txt',
        ].sort(),
      );
      expect(mtype(out, '/Renamed With A Longer Name.txt').toString()).toBe('long names survive\n');
      expect(mtype(out, '/victim.txt').toString()).toBe('the old text, moved over victim.txt\n');
      expect(mtype(out, `/made/${many[29]}`).toString()).toBe(many[29]);
      expect(Buffer.compare(mcat(out, '/moved data.bin'), Buffer.from(TREE['/sub/deep/data.bin']!))).toBe(0);
      const verdict = fsckFatClean(out);
      expect(verdict.clean, verdict.output).toBe(true);
    });

    it('creates, reads back and truncates empty files with first cluster 0, and writes into them afterwards', async () => {
      const img = image(kind);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      try {
        await fs.writeFile('/empty file.txt', '');
        await fs.writeFile('/sub/also-empty', new Uint8Array(0));
        await fs.writeFile('/index.html', ''); // truncate an existing file to zero
        await fs.writeFile('/later.txt', '');
        await fs.writeFile('/later.txt', 'now with bytes\n'); // bytes into a file that had no cluster
        for (const p of ['/empty file.txt', '/sub/also-empty', '/index.html']) {
          const st = await fs.stat(p);
          expect(st.isFile() && st.size === 0, p).toBe(true);
          expect((await fs.readFile(p)).length, p).toBe(0);
          const chunks: Buffer[] = [];
          for await (const c of fs.createReadStream(p)) chunks.push(c as Buffer);
          expect(Buffer.concat(chunks).length).toBe(0);
        }
        expect((await fs.readFile('/later.txt')).toString()).toBe('now with bytes\n');
        await expect(fs.writeFile('/sub', '')).rejects.toMatchObject({ code: 'fs', reason: 'is-a-directory' });
      } finally {
        await fs.close();
      }
      const out = await finish();
      expect(mtree(out)).toEqual(
        ['/a long file name.txt', '/empty file.txt', '/gone.txt', '/index.html', '/later.txt', '/sub/', '/sub/also-empty', '/sub/deep/', '/sub/deep/data.bin', '/sub/deep/x/', '/sub/deep/x/empty-me.txt', '/sub/old.txt', '/victim.txt'].sort(),
      );
      expect(mtype(out, '/empty file.txt').length).toBe(0);
      expect(mtype(out, '/index.html').length).toBe(0);
      expect(mtype(out, '/later.txt').toString()).toBe('now with bytes\n');
      const verdict = fsckFatClean(out);
      expect(verdict.clean, verdict.output).toBe(true);
    });

    it('reads an image after mtools did mren, mdel and mrd, and works on it (deleted slots in the middle)', async () => {
      const img = image(kind);
      mtool('mren', img, '::/a long file name.txt', '::/renamed by mtools.txt');
      mtool('mdel', img, '::/gone.txt');
      mtool('mdel', img, '::/sub/deep/x/empty-me.txt');
      mtool('mrd', img, '::/sub/deep/x');
      mtool('mren', img, '::/sub/old.txt', '::/sub/Older Name.TXT');
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      try {
        expect((await fs.readdir('/')).map((n) => n.toLowerCase()).sort()).toEqual(['index.html', 'renamed by mtools.txt', 'sub', 'victim.txt']);
        expect((await fs.readFile('/renamed by mtools.txt')).toString()).toBe('long names survive\n');
        expect((await fs.readFile('/sub/Older Name.TXT')).toString()).toBe('the old text, moved over victim.txt\n');
        await expectMissing(fs, '/gone.txt');
        await expectMissing(fs, '/sub/deep/x');
        expect((await fs.readdir('/sub/deep')).map((n) => n.toLowerCase())).toEqual(['data.bin']);
        // Ours on top of mtools' deleted slots.
        await fs.rename('/renamed by mtools.txt', '/sub/deep/and by us.txt');
        await fs.unlink('/victim.txt');
        await fs.writeFile('/in a reused slot.txt', '');
      } finally {
        await fs.close();
      }
      const out = await finish();
      expect(mtree(out)).toEqual(['/in a reused slot.txt', '/index.html', '/sub/', '/sub/Older Name.TXT', '/sub/deep/', '/sub/deep/and by us.txt', '/sub/deep/data.bin'].sort());
      expect(mtype(out, '/sub/deep/and by us.txt').toString()).toBe('long names survive\n');
      const verdict = fsckFatClean(out);
      expect(verdict.clean, verdict.output).toBe(true);
    });
  });
});
