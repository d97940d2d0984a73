/**
 * The simulation's storage rules end to end (blkfront → blkback in a
 * worker domain → file flavour → host): a flush failed by the host (a real
 * EIO: loop device over a full tmpfs) reaches the frontend and stays; a
 * host block device serves as a disk; one path is served once; attached
 * devices are forgotten on disconnect; concurrent restarts are serialised.
 * Oracles: the host (EIO, the backing file's bytes read with fs).
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Simulation } from '../src/sim/simulation.js';
import { attachLoop, disposeHostStorage, mountTmpfs, sparse } from './support/host-storage.js';

const MiB = 1 << 20;
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xenpv-sim-storage-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const fresh = (): string => join(dir, `img-${seq++}`);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  disposeHostStorage();
});

async function sim(): Promise<Simulation> {
  const s = await Simulation.start({ poolPages: 8192 });
  cleanups.push(() => s.stop());
  return s;
}

describe('simulation: a failed flush is never forgotten', () => {
  it('an EIO from the backend\'s fdatasync fails the flush as io, and every later call; a new frontend on the disk gets io too', async () => {
    const fs = mountTmpfs(4 * MiB);
    cleanups.push(() => fs.dispose());
    sparse(join(fs.dir, 'img'), 16 * MiB);
    const loop = attachLoop(join(fs.dir, 'img'));
    cleanups.push(() => loop.dispose());
    const s = await sim();
    const disk = await s.createDisk({ path: loop.device });
    const dev = await s.attach(disk, { disconnectTimeoutMs: 500 });
    const data = new Uint8Array(MiB).fill(0x5a);
    for (let i = 0n; i < 8n; i++) await dev.write(i * 2048n, [data]);
    const first = await dev.flush().catch((e: unknown) => e);
    expect(first).toMatchObject({ code: 'io' });
    await expect(dev.flush()).rejects.toMatchObject({ code: 'io' });
    await expect(dev.read(0n, [new Uint8Array(512)])).rejects.toMatchObject({ code: 'io' });
    await dev.disconnect();
    // The backend remembers: a fresh frontend cannot flush (or read) its way past the loss.
    const again = await s.attach(disk, { disconnectTimeoutMs: 500 });
    await expect(again.flush()).rejects.toMatchObject({ code: 'io' });
    await again.disconnect();
  });
});

describe('simulation: backing stores', () => {
  it('serves a host block device (a loop device), sized from the device, data landing in its backing file', async () => {
    const backing = fresh();
    sparse(backing, 8 * MiB);
    const loop = attachLoop(backing);
    cleanups.push(() => loop.dispose());
    const s = await sim();
    // Before the fix: raw EINVAL from ftruncate.
    await expect(s.createDisk({ path: loop.device, sizeBytes: 4 * MiB })).rejects.toMatchObject({ code: 'invalid-argument', field: 'sizeBytes' });
    const disk = await s.createDisk({ path: loop.device });
    const dev = await s.attach(disk);
    expect(dev.info().sizeSectors).toBe(BigInt((8 * MiB) / 512));
    const data = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
    await dev.write(100n, [data]);
    await dev.flush();
    await dev.disconnect();
    expect(Buffer.from(readFileSync(backing).subarray(100 * 512, 100 * 512 + data.length)).equals(Buffer.from(data))).toBe(true);
  });

  it('refuses to serve one path twice (locked, naming the file), also through another name', async () => {
    const s = await sim();
    const path = fresh();
    await s.createDisk({ sizeBytes: MiB, path });
    // Before the fix: a second read-write backend on the same file.
    const err = await s.createDisk({ sizeBytes: MiB, path }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'locked', path });
    const alias = `${path}.alias`;
    symlinkSync(path, alias);
    await expect(s.createDisk({ sizeBytes: MiB, path: alias })).rejects.toMatchObject({ code: 'locked' });
  });

  it('lets read-only disks share a path (shared locks), but never next to a writer', async () => {
    const s = await sim();
    const path = fresh();
    sparse(path, MiB);
    const a = await s.createDisk({ path, readOnly: true });
    const b = await s.createDisk({ path, readOnly: true });
    const [da, db] = [await s.attach(a), await s.attach(b)];
    expect(da.info().readWrite).toBe(false);
    await db.read(0n, [new Uint8Array(512)]);
    await expect(s.createDisk({ path })).rejects.toMatchObject({ code: 'locked', path });
  });
});

describe('simulation: lifecycle', () => {
  it('forgets each device once disconnected: 40 attach/disconnect cycles leave nothing tracked', async () => {
    const s = await sim();
    const disk = await s.createDisk({ sizeBytes: MiB });
    for (let i = 0; i < 40; i++) {
      const dev = await s.attach(disk);
      expect(s.attachedCount(disk)).toBe(1);
      await dev.write(0n, [new Uint8Array(512).fill(i)]);
      await dev.disconnect();
      // Before the fix the simulation kept every device it ever attached until stop().
      expect(s.attachedCount(disk)).toBe(0);
    }
    expect(s.attachedCount()).toBe(0);
  });

  it('two restartBackend calls at once both succeed, one after the other, and the device keeps working', async () => {
    const s = await sim();
    const path = fresh();
    const disk = await s.createDisk({ sizeBytes: MiB, path });
    const dev = await s.attach(disk);
    const writes = Array.from({ length: 16 }, (_, i) => dev.write(BigInt(i * 8), [new Uint8Array(4096).fill(i + 1)]));
    // Before the fix: the second rejected with `invalid-argument: domid: domain 1 exists`.
    await Promise.all([s.restartBackend(disk), s.restartBackend(disk)]);
    await Promise.all(writes);
    await dev.flush();
    const bytes = readFileSync(path);
    for (let i = 0; i < 16; i++) expect(bytes[i * 4096]).toBe(i + 1);
    await dev.disconnect();
  });
});
