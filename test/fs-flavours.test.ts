/**
 * FAT and ext4 over every BlockDevice flavour (file, memory, xen on the
 * simulation), one test body per behaviour rerun under each (flavour,
 * file system) pair. Oracles: images built by mkfs.fat + mcopy and by
 * mkfs.ext4 -d; what we write is read back by mcopy / debugfs and checked
 * by fsck.fat -n / e2fsck -fn.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileSystem } from '../src/fs/open.js';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { debugfsCat, debugfsLs, fsck, makeExt4Image, makeFatImage, mcat, mls, requireTools, type Tree } from './support/fs-tools.js';

interface Kind {
  readonly name: string;
  readonly fs: 'fat' | 'ext4';
  build(img: string, tree: Tree, scratch: string): void;
  cat(img: string, path: string): Buffer;
  ls(img: string, path: string): string[];
}

const KINDS: readonly Kind[] = [
  { name: 'fat12', fs: 'fat', build: (i, t, s) => makeFatImage(i, 2048, 12, t, s), cat: mcat, ls: mls },
  { name: 'fat16', fs: 'fat', build: (i, t, s) => makeFatImage(i, 16384, 16, t, s), cat: mcat, ls: mls },
  { name: 'fat32', fs: 'fat', build: (i, t, s) => makeFatImage(i, 40960, 32, t, s), cat: mcat, ls: mls },
  { name: 'ext4', fs: 'ext4', build: (i, t, s) => makeExt4Image(i, 8192, t, s), cat: debugfsCat, ls: debugfsLs },
];

const TREE: Tree = {
  '/index.html': new TextEncoder().encode('<!doctype html><title>xenpv</title><p>hello from a disk image</p>\n'),
  '/a long file name.txt': new TextEncoder().encode('long names survive\n'),
  '/sub/deep/data.bin': pattern(300_001, 7),
};

let scratch: string;
beforeAll(() => {
  requireTools('mkfs.fat', 'mcopy', 'mmd', 'mdir', 'fsck.fat', 'mkfs.ext4', 'debugfs', 'e2fsck');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-fs-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let serial = 0;
function image(kind: Kind): string {
  const img = join(scratch, `${kind.name}-${serial++}.img`);
  kind.build(img, TREE, scratch);
  return img;
}

/** Lower-cases for FAT, whose 8.3 names fatfs reports as stored (upper case). */
const names = (kind: Kind, list: string[]) => (kind.fs === 'fat' ? list.map((n) => n.toLowerCase()) : list).sort();

describe.each(FLAVOURS)('$name device', (flavour) => {
  describe.each(KINDS)('$name', (kind) => {
    it('reads the directories and files the Debian tools wrote, byte for byte', async () => {
      const img = image(kind);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      try {
        expect(fs.kind).toBe(kind.fs);
        expect(names(kind, await fs.readdir('/'))).toEqual(names(kind, kind.ls(img, '/')));
        expect(await fs.readdir('/sub/deep')).toEqual(['data.bin'.toUpperCase() === 'DATA.BIN' && kind.fs === 'fat' ? 'DATA.BIN' : 'data.bin']);
        for (const [path, data] of Object.entries(TREE)) {
          expect(Buffer.compare(await fs.readFile(path), Buffer.from(data)), path).toBe(0);
          const st = await fs.stat(path);
          expect(st.isFile() && !st.isDirectory()).toBe(true);
          expect(st.size).toBe(data.byteLength);
        }
        expect((await fs.stat('/sub')).isDirectory()).toBe(true);
        // A range through the stream equals the same bytes of the file (end inclusive).
        const big = TREE['/sub/deep/data.bin']!;
        const chunks: Buffer[] = [];
        for await (const c of fs.createReadStream('/sub/deep/data.bin', { start: 1000, end: 200_000 })) chunks.push(c as Buffer);
        expect(Buffer.compare(Buffer.concat(chunks), Buffer.from(big.subarray(1000, 200_001)))).toBe(0);
        expect(await text(fs.createReadStream('/index.html'))).toBe(new TextDecoder().decode(TREE['/index.html']));
        await expect(fs.readFile('/missing.txt')).rejects.toMatchObject({ code: 'fs', reason: 'not-found' });
        await expect(fs.readdir('/index.html')).rejects.toMatchObject({ code: 'fs', reason: 'not-a-directory' });
      } finally {
        await fs.close();
        await finish();
      }
    });

    it('writes files that the tools read back byte for byte, and the checker finds the file system clean', async () => {
      const img = image(kind);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      const fresh = pattern(200_003, 11);
      const replaced = new TextEncoder().encode('<p>replaced, and longer than before: ' + 'x'.repeat(5000) + '</p>\n');
      try {
        await fs.mkdir('/made');
        await fs.writeFile('/made/fresh.bin', fresh);
        await fs.writeFile('/made/note.txt', 'a note\n');
        await fs.writeFile('/index.html', replaced);
        expect(Buffer.compare(await fs.readFile('/made/fresh.bin'), Buffer.from(fresh))).toBe(0);
        await expect(fs.mkdir('/made')).rejects.toMatchObject({ code: 'fs', reason: 'exists' });
      } finally {
        await fs.close();
      }
      const out = await finish();
      expect(Buffer.compare(kind.cat(out, '/made/fresh.bin'), Buffer.from(fresh))).toBe(0);
      expect(kind.cat(out, '/made/note.txt').toString()).toBe('a note\n');
      expect(Buffer.compare(kind.cat(out, '/index.html'), Buffer.from(replaced))).toBe(0);
      expect(Buffer.compare(kind.cat(out, '/sub/deep/data.bin'), Buffer.from(TREE['/sub/deep/data.bin']!))).toBe(0);
      expect(kind.ls(out, '/made')).toEqual(['fresh.bin', 'note.txt']);
      const verdict = fsck(out, kind.fs);
      expect(verdict.clean, verdict.output).toBe(true);
    });

    it('unlinks, renames and removes directories as the tools then see it, and the checker finds it clean', async () => {
      const img = image(kind);
      const { dev, finish } = await flavour.open(img, `${img}.work`);
      const fs = await openFileSystem(dev);
      try {
        await fs.unlink('/a long file name.txt');
        await fs.rename('/sub/deep/data.bin', '/moved.bin');
        await expect(fs.unlink('/sub')).rejects.toMatchObject({ code: 'fs', reason: 'is-a-directory' });
        await expect(fs.unlink('/gone')).rejects.toMatchObject({ code: 'fs', reason: 'not-found' });
        await expect(fs.rmdir('/sub')).rejects.toMatchObject({ code: 'fs', reason: 'not-empty' });
        expect(await fs.readdir('/sub/deep')).toEqual([]);
        await fs.rmdir('/sub/deep');
        expect(await fs.readdir('/sub')).toEqual([]);
      } finally {
        await fs.close();
      }
      const out = await finish();
      expect(names(kind, kind.ls(out, '/'))).toEqual(names(kind, ['index.html', ...(kind.fs === 'ext4' ? ['lost+found'] : []), 'moved.bin', 'sub']));
      expect(kind.ls(out, '/sub')).toEqual([]);
      expect(Buffer.compare(kind.cat(out, '/moved.bin'), Buffer.from(TREE['/sub/deep/data.bin']!))).toBe(0);
      const verdict = fsck(out, kind.fs);
      expect(verdict.clean, verdict.output).toBe(true);
    });
  });
});
