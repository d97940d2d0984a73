/**
 * Blkback serving a `file` device through its synchronous entry points
 * (syncIo: readSync/writeSync, src/blkback/sync-io.ts), against the raw-ring
 * frontend of tools/fuzz/peers (written from blkif.h):
 *  - reads return the backing file's bytes and writes land in it; the
 *    device's async read/write are never called for small calls, and are
 *    for a merged call above SYNC_MAX_BYTES;
 *  - a failing backing (the file shrunk behind the device) answers
 *    BLKIF_RSP_ERROR for the requests it fails, OKAY for the rest;
 *  - a ring full of slow synchronous reads still lets the frontend's
 *    Closing through before the batch is done (time slices), and every
 *    grant comes back.
 * Oracle: the backing file read and written with node:fs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Blkback } from '../src/blkback/blkback.js';
import { SYNC_MAX_BYTES } from '../src/blkback/sync-io.js';
import { FileBlockDevice } from '../src/block/file.js';
import { DisconnectedError, InvalidArgumentError, IoError } from '../src/errors.js';
import { createEngine } from '../src/ring/index.js';
import { OP_FLUSH_DISKCACHE, OP_READ, OP_WRITE, RSP_ERROR, RSP_OKAY, Xb } from '../tools/fuzz/peers/blkif-wire.js';
import { HostileFrontend } from '../tools/fuzz/peers/hostile-frontend.js';
import { createWorld, type World } from '../tools/fuzz/peers/world.js';

const SIZE = 4 << 20;
let world: World | undefined;
let back: Blkback | undefined;
let device: FileBlockDevice | undefined;
let dir: string | undefined;
afterEach(async () => {
  await back?.stop().catch(() => undefined);
  await device?.disconnect().catch(() => undefined);
  await world?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  back = world = device = dir = undefined;
});

async function rig(pages = 1): Promise<{ fe: HostileFrontend; dev: FileBlockDevice; path: string; image: Buffer }> {
  dir = mkdtempSync(join(tmpdir(), 'xenpv-sync-io-'));
  const path = join(dir, 'disk.img');
  const image = randomBytes(SIZE);
  writeFileSync(path, image);
  world = await createWorld();
  const w = world;
  device = await FileBlockDevice.open(path);
  back = await Blkback.start(w.peer, { backend: w.paths.backend, device, engine: createEngine('wasm', w.peer.memory), syncIo: true });
  const fe = new HostileFrontend(w.dom0, { backendId: w.peer.domid, frontend: w.paths.frontend, backend: w.paths.backend });
  await fe.connect({ pages });
  return { fe, dev: device, path, image };
}

/** A page-sized 4 KiB sector offset (in 512-byte units) per request, none adjacent (nothing merges). */
const sectorOf = (i: number): bigint => BigInt(((i * 37) % 500) * 16);

describe('blkback with synchronous file I/O', () => {
  it('reads the backing file\'s bytes and writes land in it, without the async read/write', async () => {
    const { fe, dev, path, image } = await rig();
    const asyncRead = vi.spyOn(dev, 'read');
    const asyncWrite = vi.spyOn(dev, 'write');
    const readSync = vi.spyOn(dev, 'readSync');
    const g = fe.grant(16);
    fe.push(Array.from({ length: 16 }, (_, i) => ({ op: OP_READ, byte1: 1, id: BigInt(i), sector: sectorOf(i), segs: [{ gref: g.grefs[i]!, first: 0, last: 7 }] })));
    for (let i = 0; i < 16; i++) {
      expect((await fe.response(BigInt(i))).status).toBe(RSP_OKAY);
      const at = Number(sectorOf(i)) * 512;
      expect(Buffer.from(fe.page(g, i)).equals(image.subarray(at, at + 4096))).toBe(true);
    }
    // Writes: fresh bytes in each page, then a flush (still the async, ordered path).
    const w = fe.grant(8, true);
    const data = Array.from({ length: 8 }, () => randomBytes(4096));
    data.forEach((d, i) => fe.page(w, i).set(d));
    fe.push(Array.from({ length: 8 }, (_, i) => ({ op: OP_WRITE, byte1: 1, id: 100n + BigInt(i), sector: sectorOf(i + 20), segs: [{ gref: w.grefs[i]!, first: 0, last: 7 }] })));
    fe.push([{ op: OP_FLUSH_DISKCACHE, byte1: 0, id: 200n, sector: 0n, segs: [] }]);
    for (let i = 0; i < 8; i++) expect((await fe.response(100n + BigInt(i))).status).toBe(RSP_OKAY);
    expect((await fe.response(200n)).status).toBe(RSP_OKAY);
    const onDisk = readFileSync(path);
    for (let i = 0; i < 8; i++) {
      const at = Number(sectorOf(i + 20)) * 512;
      expect(onDisk.subarray(at, at + 4096).equals(data[i]!)).toBe(true);
    }
    expect(readSync).toHaveBeenCalled();
    expect(asyncRead).not.toHaveBeenCalled();
    expect(asyncWrite).not.toHaveBeenCalled();
  });

  it('sends a merged call larger than SYNC_MAX_BYTES through the async read (the pool), with the right bytes', async () => {
    const { fe, dev, image } = await rig();
    const asyncRead = vi.spyOn(dev, 'read');
    const readSync = vi.spyOn(dev, 'readSync');
    // Four adjacent 11-page reads merge into one 176 KiB call (> 128 KiB).
    const g = fe.grant(44);
    fe.push(Array.from({ length: 4 }, (_, r) => ({
      op: OP_READ,
      byte1: 11,
      id: BigInt(r),
      sector: BigInt(r * 88),
      segs: Array.from({ length: 11 }, (_, s) => ({ gref: g.grefs[r * 11 + s]!, first: 0, last: 7 })),
    })));
    for (let r = 0; r < 4; r++) expect((await fe.response(BigInt(r))).status).toBe(RSP_OKAY);
    for (let i = 0; i < 44; i++) expect(Buffer.from(fe.page(g, i)).equals(image.subarray(i * 4096, (i + 1) * 4096))).toBe(true);
    expect(4 * 11 * 4096).toBeGreaterThan(SYNC_MAX_BYTES);
    expect(asyncRead).toHaveBeenCalledTimes(1);
    expect(readSync).not.toHaveBeenCalled();
  });

  it('answers BLKIF_RSP_ERROR for reads a shrunk backing file cannot serve, OKAY for the rest', async () => {
    const { fe, path, image } = await rig();
    // The device still believes it has SIZE bytes; the host now has half.
    truncateSync(path, SIZE / 2);
    const g = fe.grant(2);
    const inside = 16n; // byte 8 KiB
    const beyond = BigInt(SIZE / 512) - 8n; // the last 4 KiB of the old size
    fe.push([
      { op: OP_READ, byte1: 1, id: 1n, sector: beyond, segs: [{ gref: g.grefs[0]!, first: 0, last: 7 }] },
      { op: OP_READ, byte1: 1, id: 2n, sector: inside, segs: [{ gref: g.grefs[1]!, first: 0, last: 7 }] },
    ]);
    expect((await fe.response(1n)).status).toBe(RSP_ERROR);
    expect((await fe.response(2n)).status).toBe(RSP_OKAY);
    expect(Buffer.from(fe.page(g, 1)).equals(image.subarray(8192, 8192 + 4096))).toBe(true);
  });

  it('lets the frontend\'s Closing through while a full ring of slow synchronous reads is served, and returns every grant', async () => {
    const { fe, dev } = await rig(4); // 128 slots
    const n = 128;
    const spinMs = 10; // one read; the whole ring would hold the thread n * spinMs
    const real = dev.readSync.bind(dev);
    let served = 0;
    dev.readSync = (sector, bufs) => {
      const until = performance.now() + spinMs;
      while (performance.now() < until);
      served++;
      real(sector, bufs);
    };
    const g = fe.grant(n);
    fe.push(Array.from({ length: n }, (_, i) => ({ op: OP_READ, byte1: 1, id: BigInt(i), sector: sectorOf(i), segs: [{ gref: g.grefs[i]!, first: 0, last: 7 }] })));
    await vi.waitFor(() => expect(served).toBeGreaterThan(0));
    const t0 = performance.now();
    await fe.setState(Xb.Closing);
    await fe.awaitBackend([Xb.Closing, Xb.Closed], 10_000);
    const ms = performance.now() - t0;
    // Without slices the whole ring is served before the watch fires.
    expect(served).toBeLessThan(n / 2);
    expect(ms).toBeLessThan((n * spinMs) / 2);
    await back!.stop();
    // Throws if the backend still maps a page of the frontend's.
    expect(() => fe.release()).not.toThrow();
  });

  it('FileBlockDevice.readSync/writeSync check like read/write: io on a short file, disconnected after disconnect()', async () => {
    const { dev, path, image } = await rig();
    const buf = new Uint8Array(4096);
    dev.readSync(8n, [buf]);
    expect(Buffer.from(buf).equals(image.subarray(4096, 8192))).toBe(true);
    truncateSync(path, 4096);
    expect(() => dev.readSync(8n, [buf])).toThrow(IoError);
    await back!.stop();
    back = undefined;
    await dev.disconnect();
    expect(() => dev.readSync(0n, [buf])).toThrow(DisconnectedError);
    expect(() => dev.writeSync(0n, [buf])).toThrow(DisconnectedError);
  });

  it('refuses a syncIo option that is not a boolean, naming it', async () => {
    world = await createWorld();
    const w = world;
    const memDevice = { info: () => ({}) } as never;
    await expect(
      Blkback.start(w.peer, { backend: w.paths.backend, device: memDevice, engine: createEngine('wasm', w.peer.memory), syncIo: 'yes' as never }),
    ).rejects.toThrow(InvalidArgumentError);
    await expect(
      Blkback.start(w.peer, { backend: w.paths.backend, device: memDevice, engine: createEngine('wasm', w.peer.memory), syncIo: 'yes' as never }),
    ).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringMatching(/syncIo/) });
  });
});
