/**
 * mkfs on every device flavour: the image comes from mkfs.fat / mkfs.ext4
 * and is copied onto the device; we then write a file on it, and the Debian
 * tools read it back and find the file system clean.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkfs } from '../src/fs/mkfs.js';
import { openFileSystem } from '../src/fs/open.js';
import { pattern } from './block-contract.js';
import { FLAVOURS } from './support/fs-flavours.js';
import { debugfsCat, fsck, mcat, requireTools } from './support/fs-tools.js';

let scratch: string;
beforeAll(() => {
  requireTools('mkfs.fat', 'mkfs.ext4', 'mcopy', 'debugfs', 'fsck.fat', 'e2fsck');
  scratch = mkdtempSync(join(tmpdir(), 'xenpv-mkfs-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.each(FLAVOURS)('$name device', (flavour) => {
  it.each(['fat', 'ext4'] as const)('mkfs %s gives a clean file system that takes our files', async (kind) => {
    const blank = join(scratch, `${flavour.name}-${kind}.img`);
    // Not zeros: mkfs must leave nothing of what was there before.
    writeFileSync(blank, Buffer.from(pattern(16 << 20, 1)));
    const { dev, finish } = await flavour.open(blank, `${blank}.work`);
    await mkfs(dev, kind, { label: 'XENPV' });
    const fs = await openFileSystem(dev);
    expect(fs.kind).toBe(kind);
    expect(await fs.readdir('/')).toEqual(kind === 'ext4' ? ['lost+found'] : []);
    const data = pattern(123_457, 2);
    await fs.writeFile('/made.bin', data);
    await fs.close();
    const out = await finish();
    const back = kind === 'fat' ? mcat(out, '/made.bin') : debugfsCat(out, '/made.bin');
    expect(Buffer.compare(back, Buffer.from(data))).toBe(0);
    const verdict = fsck(out, kind);
    expect(verdict.clean, verdict.output).toBe(true);
  });
});
