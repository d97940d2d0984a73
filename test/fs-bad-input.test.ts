/**
 * Bad input to the file-system adapters, on every device flavour: a
 * corrupt or truncated image, a device too small for anything, a
 * read-only device, and images with random metadata damage. Always a typed
 * XenpvError (or success), never a crash; the device's bytes are as they
 * were (compared with the tool-built image, byte for byte).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { XenpvError } from '../src/errors.js';
import { openFileSystem } from '../src/fs/open.js';
import { openExt4 } from '../src/fs/ext4.js';
import { openFat } from '../src/fs/fat.js';
import type { FileSystem } from '../src/fs/types.js';
import { pattern, rng } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { makeExt4Image, makeFatImage, requireTools, type Tree } from './support/fs-tools.js';

const TREE: Tree = { '/index.html': new TextEncoder().encode('<p>x</p>\n'), '/d/blob.bin': pattern(70_000, 3) };
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

let scratch: string;
let fatImg: string;
let extImg: string;
beforeAll(() => {
  requireTools('mkfs.fat', 'mcopy', 'mmd', 'mkfs.ext4');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-fsbad-'));
  fatImg = join(scratch, 'fat.img');
  extImg = join(scratch, 'ext.img');
  makeFatImage(fatImg, 4096, 12, TREE, scratch);
  makeExt4Image(extImg, 4096, TREE, scratch);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let serial = 0;
/** A copy of `src` with `damage` applied. */
function variant(src: string, damage: (bytes: Buffer) => Buffer | void): string {
  const out = join(scratch, `v${serial++}.img`);
  const bytes = readFileSync(src);
  writeFileSync(out, damage(bytes) ?? bytes);
  return out;
}

/** Opens, reads everything it can; returns the error if one was thrown. */
async function exercise(fs: FileSystem, dir = '/'): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const path = (dir === '/' ? '' : dir) + '/' + name;
    const st = await fs.stat(path);
    if (st.isDirectory()) await exercise(fs, path);
    else await fs.readFile(path);
  }
}

describe.each(FLAVOURS)('$name device', (flavour) => {
  const cases = [
    { name: 'a FAT image with its boot signature wiped', kind: 'fat', damage: (b: Buffer) => void b.fill(0, 510, 512), reason: 'corrupt' },
    { name: 'a FAT image whose BytsPerSec is 0 (exFAT-like)', kind: 'fat', damage: (b: Buffer) => void b.writeUInt16LE(0, 11), reason: 'corrupt' },
    { name: 'a FAT image cut to half its size', kind: 'fat', damage: (b: Buffer) => b.subarray(0, b.length / 2), reason: 'too-small' },
    { name: 'an ext4 image with its superblock magic wiped', kind: 'ext4', damage: (b: Buffer) => void b.fill(0, 1080, 1082), reason: 'corrupt' },
    { name: 'an ext4 image cut to half its size', kind: 'ext4', damage: (b: Buffer) => b.subarray(0, b.length / 2), reason: 'too-small' },
    { name: 'an ext4 image whose group descriptors are garbage', kind: 'ext4', damage: (b: Buffer) => void b.set(pattern(1024, 9), 2048), reason: 'corrupt' },
  ] as const;

  it.each(cases)('refuses $name with fs/$reason and leaves the device as it was', async (c) => {
    const img = variant(c.kind === 'fat' ? fatImg : extImg, c.damage);
    const before = sha(img);
    const { dev, finish } = await flavour.open(img, `${img}.work`);
    const err = await (c.kind === 'fat' ? openFat(dev) : openExt4(dev)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(XenpvError);
    expect(err).toMatchObject({ code: 'fs', reason: c.reason });
    await expect(openFileSystem(dev)).rejects.toBeInstanceOf(XenpvError);
    expect(sha(await finish())).toBe(before);
  });

  it.each(['fat', 'ext4'] as const)('on a read-only device, %s reads work, writes are read-only errors, and not a byte changes', async (kind) => {
    const img = variant(kind === 'fat' ? fatImg : extImg, () => undefined);
    const before = sha(img);
    const { dev, finish } = await flavour.open(img, `${img}.work`, { readOnly: true });
    const fs = await openFileSystem(dev);
    try {
      expect(fs.writable).toBe(false);
      await exercise(fs);
      expect((await fs.readFile('/d/blob.bin')).equals(Buffer.from(TREE['/d/blob.bin']!))).toBe(true);
      await expect(fs.writeFile('/new.txt', 'x')).rejects.toMatchObject({ code: 'read-only' });
      await expect(fs.mkdir('/newdir')).rejects.toMatchObject({ code: 'read-only' });
      await expect(fs.unlink('/index.html')).rejects.toMatchObject({ code: 'read-only' });
      await expect(fs.rename('/index.html', '/x')).rejects.toMatchObject({ code: 'read-only' });
      await expect(fs.rmdir('/d')).rejects.toMatchObject({ code: 'read-only' });
      await expect(fs.writeFile('/index.html', '')).rejects.toMatchObject({ code: 'read-only' });
      await expect(fs.writeFile('/empty.txt', new Uint8Array(0))).rejects.toMatchObject({ code: 'read-only' });
    } finally {
      await fs.close();
    }
    expect(sha(await finish())).toBe(before);
  });
});

describe('devices too small to hold a file system', () => {
  it.each([512, 1024, 4096, 65536])('a %d-byte device is refused with a typed error by both adapters', async (size) => {
    const dev = new MemoryBlockDevice({ sizeBytes: size });
    await expect(openFileSystem(dev)).rejects.toMatchObject({ code: 'fs', reason: 'corrupt' });
    await expect(openFat(dev)).rejects.toBeInstanceOf(XenpvError);
    await expect(openExt4(dev)).rejects.toBeInstanceOf(XenpvError);
    expect(dev.bytes.every((b) => b === 0)).toBe(true);
  });
});

describe('random metadata damage', () => {
  // Bytes flipped in the first 64 KiB (boot sector, FATs, root directory;
  // superblock, group descriptors, bitmaps, inode table): opening and
  // reading everything either works or fails with a typed error.
  it.each(['fat', 'ext4'] as const)('%s: 40 damaged images give success or a XenpvError, never anything else', async (kind) => {
    const src = kind === 'fat' ? fatImg : extImg;
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed * 7919);
      const img = variant(src, (b) => {
        for (let k = 0; k < 24; k++) b[Math.floor(r() * 65536)] = Math.floor(r() * 256);
      });
      const dev = new MemoryBlockDevice({ sizeBytes: readFileSync(img).length });
      dev.bytes.set(readFileSync(img));
      const copy = dev.bytes.slice();
      try {
        const fs = await openFileSystem(dev, { type: kind });
        try {
          await exercise(fs);
        } finally {
          await fs.close().catch((e: unknown) => expect(e, `seed ${seed} close`).toBeInstanceOf(XenpvError));
        }
      } catch (err) {
        expect(err, `seed ${seed}: ${String(err)}`).toBeInstanceOf(XenpvError);
      }
      // Reading never writes FAT (noatime); ext4 reads may write atime on a writable device.
      if (kind === 'fat') expect(Buffer.compare(Buffer.from(dev.bytes), Buffer.from(copy)), `seed ${seed}`).toBe(0);
    }
  });
});

