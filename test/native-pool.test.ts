import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSharedLayout, frameAddress, PAGE_SIZE } from '../src/memory/layout.js';
import { attachPoolFile, createPoolFile } from '../src/native/pool-file.js';
import { buildPeers, PEERS_BIN } from './peers/build-peers.js';
import { wasmProbe } from './peers/wasm-probe.js';

const run = promisify(execFile);
const POKE = join(PEERS_BIN, 'pool-poke');

/** pool-poke in a child process: checks the u32 at frame/offset, then writes another. */
async function poke(path: string, pages: number, frame: number, offset: number, expectHex: number, writeHex: number) {
  try {
    const { stdout } = await run(POKE, [path, String(pages), String(frame), String(offset),
      expectHex.toString(16), writeHex.toString(16)]);
    return { ok: true, out: stdout };
  } catch (e) {
    return { ok: false, out: (e as { stdout?: string }).stdout ?? String(e) };
  }
}

describe('pool file shared with another process', () => {
  beforeAll(() => buildPeers());

  it('another process sees our Wasm and JS stores at the same page index, and we see its writes', async () => {
    const layout = createSharedLayout({ scratchBytes: 65536, poolPages: 64 });
    const pool = createPoolFile(layout);
    try {
      expect(pool.path).toBe(`/proc/${process.pid}/fd/${pool.fd}`);
      expect(pool.size).toBe(64 * PAGE_SIZE);
      const probe = wasmProbe(layout.memory);
      probe.store(frameAddress(layout, 37) + 12, 0x1234abcd);
      const r1 = await poke(pool.path, 64, 37, 12, 0x1234abcd, 0xfeedf00d);
      expect(r1.out).toContain('saw 1234abcd');
      expect(r1.ok).toBe(true);
      // the child's store, seen by Wasm and by JS
      expect(probe.load(frameAddress(layout, 37) + 12)).toBe(0xfeedf00d);
      const dv = new DataView(layout.memory.buffer);
      dv.setUint32(frameAddress(layout, 63) + 4092, 0x0badcafe, true);
      const r2 = await poke(pool.path, 64, 63, 4092, 0x0badcafe, 0x1);
      expect(r2.ok).toBe(true);
      expect(dv.getUint32(frameAddress(layout, 63) + 4092, true)).toBe(1);
      // scratch is not shared: frame 0 of the file is poolBase, not address 0
      dv.setUint32(0, 0x77777777, true);
      expect((await poke(pool.path, 64, 0, 0, 0, 0)).ok).toBe(true);
    } finally {
      pool.close();
    }
  });

  it('keeps what the pool held before it was turned into a file, and after close', async () => {
    const layout = createSharedLayout({ scratchBytes: 65536, poolPages: 8 });
    const dv = new DataView(layout.memory.buffer);
    dv.setUint32(frameAddress(layout, 2), 0xa5a5a5a5, true);
    const pool = createPoolFile(layout);
    expect((await poke(pool.path, 8, 2, 0, 0xa5a5a5a5, 0x5a5a5a5a)).ok).toBe(true);
    pool.close();
    expect(dv.getUint32(frameAddress(layout, 2), true)).toBe(0x5a5a5a5a);
    dv.setUint32(frameAddress(layout, 2), 7, true); // private again: no crash, no file
    pool.close(); // idempotent
  });

  it('close({ keepContents: false }) leaves zero pages', () => {
    const layout = createSharedLayout({ scratchBytes: 65536, poolPages: 4 });
    const pool = createPoolFile(layout);
    new Uint8Array(layout.memory.buffer).fill(9, layout.poolBase, layout.poolBase + 4 * PAGE_SIZE);
    pool.close({ keepContents: false });
    const pages = new Uint8Array(layout.memory.buffer, layout.poolBase, 4 * PAGE_SIZE);
    expect(pages.every((b) => b === 0)).toBe(true);
  });

  it('a /dev/shm pool file works the same and is unlinked on close', async () => {
    const shmPath = `/dev/shm/xenpv-test-${process.pid}-${Date.now()}`;
    const layout = createSharedLayout({ scratchBytes: 65536, poolPages: 16 });
    const pool = createPoolFile(layout, { shmPath });
    try {
      expect(pool.path).toBe(shmPath);
      new DataView(layout.memory.buffer).setUint32(frameAddress(layout, 15), 0xc0ffee, true);
      expect((await poke(shmPath, 16, 15, 0, 0xc0ffee, 0xbeef)).ok).toBe(true);
      expect(new DataView(layout.memory.buffer).getUint32(frameAddress(layout, 15), true)).toBe(0xbeef);
    } finally {
      pool.close();
    }
    expect(existsSync(shmPath)).toBe(false);
  });

  it('attachPoolFile maps the same file into a second memory at the same page indices', () => {
    const a = createSharedLayout({ scratchBytes: 65536, poolPages: 32 });
    const b = createSharedLayout({ scratchBytes: 2 * 65536, poolPages: 32 }); // different poolBase
    const pool = createPoolFile(a);
    const peer = attachPoolFile(b, pool.path);
    try {
      new DataView(a.memory.buffer).setUint32(frameAddress(a, 9) + 40, 0x01020304, true);
      expect(new DataView(b.memory.buffer).getUint32(frameAddress(b, 9) + 40, true)).toBe(0x01020304);
      wasmProbe(b.memory).store(frameAddress(b, 31), 0x55aa55aa);
      expect(wasmProbe(a.memory).load(frameAddress(a, 31))).toBe(0x55aa55aa);
    } finally {
      peer.close();
      pool.close();
    }
  });

  it('attachPoolFile refuses a missing file and a file smaller than the pool', () => {
    const small = createSharedLayout({ scratchBytes: 65536, poolPages: 4 });
    const big = createSharedLayout({ scratchBytes: 65536, poolPages: 8 });
    expect(() => attachPoolFile(big, '/nonexistent/xenpv-pool')).toThrow(expect.objectContaining({ code: 'invalid-argument', field: 'path' }));
    const pool = createPoolFile(small);
    try {
      expect(() => attachPoolFile(big, pool.path)).toThrow(expect.objectContaining({ code: 'invalid-argument', field: 'length' }));
    } finally {
      pool.close();
    }
  });
});
