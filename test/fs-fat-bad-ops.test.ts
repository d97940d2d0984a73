/**
 * What FAT unlink, rename, rmdir and empty writes refuse, on every device
 * flavour: each a FileSystemError with the POSIX-like reason, and the
 * device's bytes exactly as mkfs.fat + mcopy left them (SHA-256 of the
 * whole image). A chain that loops (damage written by the test from the
 * boot sector and `mshowfat`, not by our code) is refused before any
 * cluster is freed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenpvError } from '../src/errors.js';
import { FileSystemError } from '../src/fs/errors.js';
import { openFileSystem } from '../src/fs/open.js';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { makeFatImage, requireTools, type Tree } from './support/fs-tools.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { fsckFatClean, mtool, mtree } from './support/fat-tools.js';

const enc = (s: string) => new TextEncoder().encode(s);
const TREE: Tree = {
  '/index.html': enc('<p>x</p>\n'),
  '/sub/deep/blob.bin': pattern(70_000, 3),
  '/sub/note.txt': enc('note\n'),
};
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

let scratch: string;
let base16: string;
let base32: string;
beforeAll(() => {
  requireTools('mkfs.fat', 'mcopy', 'mmd', 'mshowfat', 'fsck.fat');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-fatbad-'));
  base16 = join(scratch, 'fat16.img');
  base32 = join(scratch, 'fat32.img');
  makeFatImage(base16, 16384, 16, TREE, scratch);
  makeFatImage(base32, 40960, 32, TREE, scratch);
  mtool('mmd', base16, '::/empty');
  mtool('mmd', base32, '::/empty');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let serial = 0;
function copy(src: string): string {
  const out = join(scratch, `c${serial++}.img`);
  writeFileSync(out, readFileSync(src));
  return out;
}

const REFUSED: readonly { what: string; reason: string; run: (fs: Awaited<ReturnType<typeof openFileSystem>>) => Promise<unknown> }[] = [
  { what: 'rename of a missing file', reason: 'not-found', run: (fs) => fs.rename('/missing.txt', '/x.txt') },
  { what: 'rename into a missing directory', reason: 'not-found', run: (fs) => fs.rename('/index.html', '/nodir/x.txt') },
  { what: 'rename under a file', reason: 'not-a-directory', run: (fs) => fs.rename('/index.html', '/sub/note.txt/x') },
  { what: 'rename of a directory over a file', reason: 'not-a-directory', run: (fs) => fs.rename('/empty', '/index.html') },
  { what: 'rename of a file over a directory', reason: 'is-a-directory', run: (fs) => fs.rename('/index.html', '/empty') },
  { what: 'rename of a directory over a non-empty one', reason: 'not-empty', run: (fs) => fs.rename('/empty', '/sub') },
  { what: 'rename of a directory into itself', reason: 'invalid-path', run: (fs) => fs.rename('/sub', '/sub/deep/inside') },
  { what: 'rename to a name FAT cannot hold', reason: 'invalid-path', run: (fs) => fs.rename('/index.html', '/a:b?.txt') },
  { what: 'rename of the root', reason: 'invalid-path', run: (fs) => fs.rename('/', '/root') },
  { what: 'rmdir of a non-empty directory', reason: 'not-empty', run: (fs) => fs.rmdir('/sub') },
  { what: 'rmdir of a file', reason: 'not-a-directory', run: (fs) => fs.rmdir('/index.html') },
  { what: 'rmdir of a missing directory', reason: 'not-found', run: (fs) => fs.rmdir('/missing') },
  { what: 'rmdir of the root', reason: 'invalid-path', run: (fs) => fs.rmdir('/') },
  { what: 'unlink of a directory', reason: 'is-a-directory', run: (fs) => fs.unlink('/empty') },
  { what: 'unlink of a missing file', reason: 'not-found', run: (fs) => fs.unlink('/sub/missing') },
  { what: 'unlink under a file', reason: 'not-a-directory', run: (fs) => fs.unlink('/index.html/x') },
  { what: 'an empty write over a directory', reason: 'is-a-directory', run: (fs) => fs.writeFile('/sub', '') },
  { what: 'an empty write into a missing directory', reason: 'not-found', run: (fs) => fs.writeFile('/nodir/e.txt', '') },
  { what: 'an empty file with a name FAT cannot hold', reason: 'invalid-path', run: (fs) => fs.writeFile('/what?.txt', '') },
];

/** Overwrites FAT entry `n` (16-bit) in every FAT copy, from the boot sector's own fields. */
function setFat16(img: string, n: number, value: number): void {
  const b = readFileSync(img);
  const bps = b.readUInt16LE(11);
  const rsvd = b.readUInt16LE(14);
  const fats = b[16]!;
  const fatSz = b.readUInt16LE(22);
  for (let k = 0; k < fats; k++) b.writeUInt16LE(value, (rsvd + k * fatSz) * bps + n * 2);
  writeFileSync(img, b);
}

describe.each(FLAVOURS)('$name device', (flavour) => {
  it.each([
    ['fat16', () => base16],
    ['fat32', () => base32],
  ] as const)('%s: every refused operation is a typed error and the image keeps every byte', async (_name, base) => {
    const img = copy(base());
    const before = sha(img);
    const { dev, finish } = await flavour.open(img, `${img}.work`);
    const fs = await openFileSystem(dev);
    try {
      for (const c of REFUSED) {
        const err = await c.run(fs).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, c.what).toBeInstanceOf(FileSystemError);
        expect(err, c.what).toMatchObject({ code: 'fs', reason: c.reason });
      }
      // Still usable afterwards: the reads give what mcopy wrote.
      expect((await fs.readFile('/sub/note.txt')).toString()).toBe('note\n');
    } finally {
      await fs.close();
    }
    expect(sha(await finish())).toBe(before);
  });

  it('a file whose cluster chain loops is refused as corrupt by unlink, and nothing is freed', async () => {
    const img = copy(base16);
    // mshowfat prints the chain as <first-last>; the last cluster is made to point back at the first.
    const shown = execFileSync('mshowfat', ['-i', img, '::/sub/deep/blob.bin'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
    const m = /<(\d+)-(\d+)>/.exec(shown);
    expect(m, shown).not.toBeNull();
    setFat16(img, Number(m![2]), Number(m![1]));
    const before = sha(img);
    const { dev, finish } = await flavour.open(img, `${img}.work`);
    const fs = await openFileSystem(dev);
    try {
      await expect(fs.unlink('/sub/deep/blob.bin')).rejects.toMatchObject({ code: 'fs', reason: 'corrupt' });
      await expect(fs.writeFile('/sub/deep/blob.bin', '')).rejects.toBeInstanceOf(XenpvError);
    } finally {
      await fs.close();
    }
    expect(sha(await finish())).toBe(before);
    expect(fsckFatClean(img).clean).toBe(false); // the oracle agrees the image is damaged
  });
});

describe('a full FAT16 root directory (mkfs.fat -r 16, which rounds up)', () => {
  it('refuses one more name with no-space, writes nothing for it, and the volume stays clean', async () => {
    const img = join(scratch, 'small-root.img');
    execFileSync('mkfs.fat', ['-C', '-F', '16', '-r', '16', '-n', 'XENPV', img, '16384'], { stdio: 'pipe' });
    const boot = readFileSync(img);
    const rootEntries = boot.readUInt16LE(17); // RootEntCnt, as mkfs.fat chose it
    const dev = MemoryBlockDevice.fromBytes(new Uint8Array(boot));
    const fs = await openFileSystem(dev);
    // The label takes one slot; each name below takes 3 (2 long entries + the 8.3 entry).
    const names = Array.from({ length: Math.floor((rootEntries - 1) / 3) }, (_, i) => `a name of twenty ${String(i).padStart(3, '0')}`);
    let before: Uint8Array;
    try {
      for (const n of names) await fs.writeFile(`/${n}`, '');
      before = dev.bytes.slice();
      await expect(fs.writeFile('/one too many.txt', '')).rejects.toMatchObject({ code: 'fs', reason: 'no-space' });
      await expect(fs.rename(`/${names[0]}`, '/renamed, needing three slots')).rejects.toMatchObject({ code: 'fs', reason: 'no-space' });
      expect(Buffer.compare(Buffer.from(dev.bytes), Buffer.from(before))).toBe(0);
      await fs.unlink(`/${names[names.length - 1]}`);
      await fs.writeFile('/now it fits', ''); // into the freed slots
    } finally {
      await fs.close();
    }
    writeFileSync(img, dev.bytes);
    expect(mtree(img)).toEqual([...names.slice(0, -1), 'now it fits'].map((n) => `/${n}`).sort());
    const verdict = fsckFatClean(img);
    expect(verdict.clean, verdict.output).toBe(true);
  });
});
