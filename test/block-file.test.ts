import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FileBlockDevice, FileKind } from '../src/block/file.js';
import { IOV_BATCH, decodeDevT } from '../src/block/file-io.js';
import type { BlockInfo } from '../src/block/types.js';
import { describeBlockContract, expectBytes, oddBuffers, pattern, rejectsWith } from './block-contract.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xenpv-block-file-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const freshPath = (): string => join(dir, `disk-${process.pid}-${seq++}.img`);

describeBlockContract('file', async ({ sizeBytes, sectorSize, readOnly, content }) => {
  const path = freshPath();
  writeFileSync(path, content ?? new Uint8Array(sizeBytes));
  const dev = await FileBlockDevice.open(path, { sectorSize, readOnly });
  return {
    dev,
    backing: async () => new Uint8Array(readFileSync(path)),
    cleanup: async () => {
      await dev.disconnect();
      rmSync(path, { force: true });
    },
  };
});

/** How many of this process's descriptors refer to `path` (Linux /proc). */
function openFds(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // the descriptor used to list the directory is gone by now
    }
  }
  return n;
}

/** The FileHandle prototype, to spy on what the device calls. */
async function fileHandleProto(): Promise<Record<string, unknown>> {
  const h = await open(__filename, 'r');
  await h.close();
  return Object.getPrototypeOf(h) as Record<string, unknown>;
}

describe('FileBlockDevice', () => {
  it('flush calls fdatasync on the file', async () => {
    const path = freshPath();
    writeFileSync(path, new Uint8Array(4096));
    const dev = await FileBlockDevice.open(path);
    const proto = await fileHandleProto();
    const spy = vi.spyOn(proto as { datasync: () => Promise<void> }, 'datasync');
    try {
      await dev.flush();
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
      await dev.disconnect();
    }
  });

  it('a failing fdatasync is an io error carrying the cause', async () => {
    const path = freshPath();
    writeFileSync(path, new Uint8Array(4096));
    const dev = await FileBlockDevice.open(path);
    const proto = await fileHandleProto();
    const eio = Object.assign(new Error('i/o error'), { code: 'EIO' });
    const spy = vi.spyOn(proto as { datasync: () => Promise<void> }, 'datasync').mockRejectedValue(eio);
    try {
      const err = await dev.flush().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'io' });
      expect((err as Error).cause).toBe(eio);
      expect((err as Error).message).toMatch(/EIO/);
    } finally {
      spy.mockRestore();
      await dev.disconnect();
    }
  });

  it('create makes a sparse file of the given size, and never truncates an existing one', async () => {
    const path = freshPath();
    const dev = await FileBlockDevice.open(path, { create: { sizeBytes: 1n << 20n } });
    expect(statSync(path).size).toBe(1 << 20);
    expect(dev.info().sizeSectors).toBe(2048n);
    await dev.write(3n, [new Uint8Array(512).fill(5)]);
    await dev.disconnect();
    const again = await FileBlockDevice.open(path, { create: { sizeBytes: 4096 } });
    expect(again.info().sizeSectors).toBe(2048n);
    expect(readFileSync(path)[3 * 512]).toBe(5);
    await again.disconnect();
  });

  it('create with readOnly creates the file, then opens it read-only', async () => {
    const path = freshPath();
    const dev = await FileBlockDevice.open(path, { create: { sizeBytes: 8192 }, readOnly: true });
    expect(dev.info()).toMatchObject({ readWrite: false, sizeSectors: 16n });
    await rejectsWith(dev.write(0n, [new Uint8Array(512)]), 'read-only');
    await dev.disconnect();
  });

  it('refuses bad open arguments, naming the field', async () => {
    await rejectsWith(FileBlockDevice.open(''), 'invalid-argument', 'path');
    await rejectsWith(FileBlockDevice.open(freshPath(), { sectorSize: 100 }), 'invalid-argument', 'sectorSize');
    await rejectsWith(FileBlockDevice.open(freshPath(), { create: { sizeBytes: 1000 } }), 'invalid-argument', 'create.sizeBytes');
    await rejectsWith(FileBlockDevice.open(dir, { readOnly: true }), 'invalid-argument', 'path');
    await rejectsWith(FileBlockDevice.open('/dev/null', { readOnly: true }), 'invalid-argument', 'path');
  });

  it('a missing file is an io error naming ENOENT', async () => {
    const err = await FileBlockDevice.open(join(dir, 'absent.img')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'io' });
    expect((err as Error).message).toMatch(/ENOENT/);
  });

  it('a read-only open leaves the file untouched even when asked to write', async () => {
    const path = freshPath();
    const content = pattern(8192, 21);
    writeFileSync(path, content);
    const dev = await FileBlockDevice.open(path, { readOnly: true });
    await rejectsWith(dev.write(0n, [new Uint8Array(512)]), 'read-only');
    await rejectsWith(dev.discard(0n, 16n), 'read-only');
    await rejectsWith(dev.resize(32n), 'read-only');
    expectBytes(new Uint8Array(readFileSync(path)), content);
    await dev.disconnect();
  });

  it('ignores a trailing partial sector', async () => {
    const path = freshPath();
    writeFileSync(path, new Uint8Array(4096 + 100));
    const dev = await FileBlockDevice.open(path);
    expect(dev.kind).toBe(FileKind.Regular);
    expect(dev.info().sizeSectors).toBe(8n);
    await dev.disconnect();
  });

  it(`transfers more buffers than one readv/writev takes (${IOV_BATCH}) in one call`, async () => {
    const path = freshPath();
    const n = IOV_BATCH + 300;
    writeFileSync(path, new Uint8Array(n * 512));
    const dev = await FileBlockDevice.open(path);
    const bufs = oddBuffers(new Array<number>(n).fill(1), 512);
    const data = pattern(n * 512, 22);
    bufs.forEach((b, i) => b.set(data.subarray(i * 512, (i + 1) * 512)));
    await dev.write(0n, bufs);
    expectBytes(new Uint8Array(readFileSync(path)), data);
    const back = oddBuffers(new Array<number>(n).fill(1), 512);
    await dev.read(0n, back);
    back.forEach((b, i) => expectBytes(b, data.subarray(i * 512, (i + 1) * 512)));
    await dev.disconnect();
  });

  it('discard zero-fills ranges larger than its zero chunk', async () => {
    const path = freshPath();
    const size = 3 << 20;
    const content = pattern(size, 23);
    writeFileSync(path, content);
    const dev = await FileBlockDevice.open(path);
    await dev.discard(1n, BigInt(size / 512 - 2));
    const disk = new Uint8Array(readFileSync(path));
    expectBytes(disk.subarray(0, 512), content.subarray(0, 512));
    expect(disk.subarray(512, size - 512).every((x) => x === 0)).toBe(true);
    expectBytes(disk.subarray(size - 512), content.subarray(size - 512));
    expect(statSync(path).size).toBe(size);
    await dev.disconnect();
  });

  it('refreshSize notices the file grew and emits the resize event', async () => {
    const path = freshPath();
    writeFileSync(path, new Uint8Array(4096));
    const dev = await FileBlockDevice.open(path);
    const seen: BlockInfo[] = [];
    dev.onResize((info) => seen.push(info));
    await dev.refreshSize();
    expect(seen).toHaveLength(0); // unchanged: no event
    truncateSync(path, 16384);
    const info = await dev.refreshSize();
    expect(info.sizeSectors).toBe(32n);
    expect(seen.map((i) => i.sizeSectors)).toEqual([32n]);
    await dev.write(31n, [new Uint8Array(512).fill(1)]);
    await dev.disconnect();
    await rejectsWith(dev.refreshSize(), 'disconnected');
  });

  it('a file that shrank behind our back gives an io error, not zeros', async () => {
    const path = freshPath();
    writeFileSync(path, new Uint8Array(8192));
    const dev = await FileBlockDevice.open(path);
    truncateSync(path, 4096);
    const err = await dev.read(12n, [new Uint8Array(1024)]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'io' });
    expect((err as Error).message).toMatch(/end of file/);
    await dev.disconnect();
  });

  it('resize truncates or extends the file and emits the event', async () => {
    const path = freshPath();
    writeFileSync(path, pattern(8192, 24));
    const dev = await FileBlockDevice.open(path);
    const sizes: bigint[] = [];
    dev.onResize((info) => sizes.push(info.sizeSectors));
    await dev.resize(32n);
    expect(statSync(path).size).toBe(16384);
    await dev.resize(4n);
    expect(statSync(path).size).toBe(2048);
    expect(sizes).toEqual([32n, 4n]);
    await rejectsWith(dev.resize(0n), 'invalid-argument', 'newSizeSectors');
    await dev.disconnect();
  });

  it('disconnect closes the file descriptor, after in-flight calls', async () => {
    const path = freshPath();
    writeFileSync(path, new Uint8Array(1 << 20));
    const dev = await FileBlockDevice.open(path);
    expect(openFds(path)).toBe(1);
    const writes = Array.from({ length: 16 }, (_, i) => dev.write(BigInt(i * 128), [pattern(128 * 512, 30 + i)]));
    await dev.disconnect();
    expect(openFds(path)).toBe(0);
    await Promise.all(writes);
    const disk = new Uint8Array(readFileSync(path));
    for (let i = 0; i < 16; i++) expectBytes(disk.subarray(i * 65536, (i + 1) * 65536), pattern(65536, 30 + i));
  });
});

describe('decodeDevT', () => {
  // Golden values: glibc makedev() from <sys/sysmacros.h>, compiled with gcc.
  it.each([
    [2049n, 8, 1],
    [66304n, 259, 0],
    [1050624n, 8, 256],
    [4294967295n, 4095, 1048575],
    [17596481011712n, 4096, 1048576],
  ])('dev_t %d is %d:%d', (dev, major, minor) => {
    expect(decodeDevT(dev)).toEqual({ major, minor });
  });
});
