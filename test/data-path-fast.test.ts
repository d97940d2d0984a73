/**
 * The data-path shortcuts taken for throughput keep their meaning:
 * - file-io's coalesce() merges only views that really are adjacent in the same memory;
 * - ByteStream.copy over runs of contiguous pages moves the same bytes as a
 *   byte-by-byte model written here;
 * - blkback's GrantCache keeps grants mapped up to its cap and maps the
 *   rest per request.
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GrantCache } from '../src/blkback/grant-cache.js';
import { mergeAdjacent } from '../src/blkback/merge.js';
import { ByteStream, planChunksCut } from '../src/blkfront/split.js';
import { FileBlockDevice } from '../src/block/file.js';
import { coalesce } from '../src/block/file-io.js';
import type { ForeignMapping, GrantTable } from '../src/platform/types.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xenpv-data-path-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

describe('coalesce', () => {
  it('merges adjacent views of one buffer into one view over the same bytes', () => {
    const ab = new ArrayBuffer(4 * 4096);
    const views = [0, 1, 2, 3].map((i) => new Uint8Array(ab, i * 4096, 4096));
    const out = coalesce(views);
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(ab);
    expect([out[0]!.byteOffset, out[0]!.byteLength]).toEqual([0, 4 * 4096]);
  });

  it('keeps views apart across a gap, a different buffer, or out of order', () => {
    const ab = new ArrayBuffer(8 * 512);
    const other = new ArrayBuffer(512);
    const list = [
      new Uint8Array(ab, 0, 512),
      new Uint8Array(ab, 512, 512), // merges with the first
      new Uint8Array(ab, 2048, 512), // gap
      new Uint8Array(other, 0, 512), // other buffer
      new Uint8Array(ab, 1024, 512), // before the previous view of ab
      new Uint8Array(ab, 1536, 512), // merges with the previous
    ];
    const out = coalesce(list);
    expect(out.map((v) => [v.buffer === ab ? 'ab' : 'other', v.byteOffset, v.byteLength])).toEqual([
      ['ab', 0, 1024],
      ['ab', 2048, 512],
      ['other', 0, 512],
      ['ab', 1024, 1024],
    ]);
  });

  it('returns the list itself when nothing merges', () => {
    const list = [new Uint8Array(512), new Uint8Array(512)];
    expect(coalesce(list)).toBe(list);
  });

  it('a file device writes and reads contiguous and scattered views correctly', async () => {
    const path = join(dir, 'coalesce.img');
    writeFileSync(path, new Uint8Array(64 * 1024));
    const dev = await FileBlockDevice.open(path);
    const ab = new ArrayBuffer(32 * 1024);
    const src = new Uint8Array(ab);
    const rnd = prng(5);
    for (let i = 0; i < src.length; i++) src[i] = rnd(256);
    // Pages 0-3 adjacent, then page 6, then pages 4-5 (adjacent to each other only).
    const order = [0, 1, 2, 3, 6, 4, 5];
    const views = order.map((p) => new Uint8Array(ab, p * 4096, 4096));
    await dev.write(2n, views);
    const file = new Uint8Array(readFileSync(path));
    order.forEach((p, i) => expect(Buffer.compare(file.subarray(1024 + i * 4096, 1024 + (i + 1) * 4096), src.subarray(p * 4096, (p + 1) * 4096))).toBe(0));
    const back = new ArrayBuffer(32 * 1024);
    const backViews = order.map((p) => new Uint8Array(back, p * 4096, 4096));
    await dev.read(2n, backViews);
    expect(Buffer.compare(new Uint8Array(back, 0, 7 * 4096), src.subarray(0, 7 * 4096))).toBe(0);
    await dev.disconnect();
  });
});

/** Byte-by-byte model of ByteStream.copy: stream byte k of [off, off+len) ↔ page k>>12, offset k&4095. */
function modelCopy(bufs: Uint8Array[], mem: Uint8Array, pages: number[], off: number, len: number, toPages: boolean): void {
  let b = 0;
  let inBuf = off;
  while (inBuf >= bufs[b]!.length) inBuf -= bufs[b++]!.length;
  for (let k = 0; k < len; k++, inBuf++) {
    if (inBuf === bufs[b]!.length) {
      b++;
      inBuf = 0;
    }
    const at = pages[k >>> 12]! + (k & 4095);
    if (toPages) mem[at] = bufs[b]![inBuf]!;
    else bufs[b]![inBuf] = mem[at]!;
  }
}

/** What the memory holds before each copy (made once: filling 256 KiB per case made this test take a minute under load). */
const MEM_TEMPLATE = new Uint8Array(64 * 4096).map((_, i) => (i * 7) & 255);

describe('ByteStream.copy over page runs', () => {
  it('moves the same bytes as the byte-by-byte model, pages contiguous or not', () => {
    const rnd = prng(11);
    for (let iter = 0; iter < 300; iter++) {
      const bufs: Uint8Array[] = [];
      let total = 0;
      for (let i = 0, n = 1 + rnd(5); i < n; i++) {
        const len = 512 * (1 + rnd(20));
        bufs.push(new Uint8Array(new ArrayBuffer(len + 16), 8, len));
        total += len;
      }
      const off = 512 * rnd(total / 512);
      const len = 512 * (1 + rnd((total - off) / 512));
      const pages: number[] = [];
      for (let i = 0, p = rnd(4); i < Math.ceil(len / 4096); i++, p += rnd(3) === 0 ? 2 + rnd(3) : 1) pages.push(p * 4096);
      for (const toPages of [true, false]) {
        for (const b of bufs) for (let i = 0; i < b.length; i++) b[i] = rnd(256);
        const mem = MEM_TEMPLATE.slice();
        const memModel = mem.slice();
        const bufsModel = bufs.map((b) => b.slice());
        new ByteStream(bufs).copy(mem, pages, off, len, toPages);
        modelCopy(bufsModel, memModel, pages, off, len, toPages);
        expect(Buffer.compare(mem, memModel)).toBe(0);
        bufs.forEach((b, i) => expect(Buffer.compare(b, bufsModel[i]!)).toBe(0));
      }
    }
  });
});

describe('planChunksCut (ring requests never span an I/O-buffer boundary)', () => {
  it('covers the call exactly, in order, each chunk within maxPages and inside one stretch between cuts', () => {
    const rnd = prng(21);
    for (let iter = 0; iter < 500; iter++) {
      const total = 512 * (1 + rnd(4000));
      const cuts = [...new Set(Array.from({ length: rnd(6) }, () => 512 * (1 + rnd(total / 512 - 1))))].filter((c) => c < total).sort((a, b) => a - b);
      const maxPages = [1, 11, 256][rnd(3)]!;
      const chunks = planChunksCut(1000n, total, maxPages, cuts);
      // Plain checks, one expect per case: an expect per chunk made this slow under load.
      const bad: string[] = [];
      let at = 0;
      for (const c of chunks) {
        if (c.byteOffset !== at) bad.push(`chunk at ${c.byteOffset}, expected ${at}`);
        if (c.wireSector !== 1000n + BigInt(at / 512)) bad.push(`chunk at ${at}: sector ${c.wireSector}`);
        if (c.nPages !== Math.ceil(c.byteLength / 4096) || c.nPages > maxPages) bad.push(`chunk at ${at}: ${c.nPages} pages`);
        if (cuts.some((x) => x > c.byteOffset && x < c.byteOffset + c.byteLength)) bad.push(`chunk ${c.byteOffset}+${c.byteLength} spans a cut`);
        at += c.byteLength;
      }
      if (at !== total) bad.push(`covered ${at} of ${total}`);
      for (const x of cuts) if (!chunks.some((c) => c.byteOffset === x)) bad.push(`cut ${x} is not a chunk boundary`);
      expect(bad, `total ${total}, cuts ${cuts}, maxPages ${maxPages}`).toEqual([]);
    }
  });
});

describe('blkback mergeAdjacent (one device call per run of requests adjacent on disk)', () => {
  it('keeps the batch order, merges only same-direction requests that follow on disk, at most maxGroup, and leaves no mergeable neighbours apart', () => {
    const rnd = prng(33);
    for (let iter = 0; iter < 500; iter++) {
      let at = BigInt(rnd(1000));
      const batch = Array.from({ length: 1 + rnd(40) }, (_, id) => {
        const total512 = 8 * (1 + rnd(4));
        if (rnd(4) === 0) at = BigInt(rnd(100000)); // a jump
        const r = { id, write: rnd(5) === 0, sector512: at, total512 };
        at += BigInt(total512);
        return r;
      });
      const max = 1 + rnd(6);
      const groups = mergeAdjacent(batch, max);
      const bad: string[] = [];
      if (groups.flat().map((r) => r.id).join() !== batch.map((r) => r.id).join()) bad.push('order or membership changed');
      groups.forEach((g, gi) => {
        if (g.length > max) bad.push(`group ${gi} has ${g.length} > ${max}`);
        for (let k = 1; k < g.length; k++) {
          if (g[k]!.write !== g[0]!.write) bad.push(`group ${gi} mixes directions`);
          if (g[k]!.sector512 !== g[k - 1]!.sector512 + BigInt(g[k - 1]!.total512)) bad.push(`group ${gi} is not contiguous at ${k}`);
        }
        const next = groups[gi + 1];
        const last = g[g.length - 1]!;
        if (next && g.length < max && next[0]!.write === last.write && next[0]!.sector512 === last.sector512 + BigInt(last.total512)) {
          bad.push(`groups ${gi} and ${gi + 1} could have been one`);
        }
      });
      expect(bad).toEqual([]);
    }
  });
});

describe('GrantCache persistent cap', () => {
  /** A grant table that only counts the grefs mapped and unmapped, and the calls. */
  function countingTable(): GrantTable & { mapped: number; unmapped: number; calls: number } {
    const t = {
      mapped: 0,
      unmapped: 0,
      calls: 0,
      mapForeign(domid: number, grefs: readonly number[], readOnly: boolean): ForeignMapping {
        t.calls++;
        t.mapped += grefs.length;
        return { domid, grefs, addresses: grefs.map((g) => g * 4096), readOnly };
      },
      unmapForeign(m: ForeignMapping): void {
        t.unmapped += m.grefs.length;
      },
    };
    return t as unknown as GrantTable & { mapped: number; unmapped: number; calls: number };
  }

  it('maps each gref once up to the cap (a request\'s new grefs in one call), then maps and unmaps per request', () => {
    const table = countingTable();
    const cache = new GrantCache(table, 1, true, 4);
    for (let round = 0; round < 3; round++) {
      const m = cache.map([10, 11, 12, 13], false)!;
      expect(m.addresses).toEqual([10, 11, 12, 13].map((g) => g * 4096));
      cache.release(m);
    }
    expect([table.mapped, table.unmapped, table.calls]).toEqual([4, 0, 1]);
    const over = cache.map([20, 21], false)!; // 4 cached + 2 new > 4: transient
    expect(over.addresses).toEqual([20 * 4096, 21 * 4096]);
    cache.release(over);
    expect([table.mapped, table.unmapped]).toEqual([6, 2]);
    const again = cache.map([13, 12], false)!; // cached ones still served from the full cache
    expect(again.addresses).toEqual([13 * 4096, 12 * 4096]);
    expect(table.mapped).toBe(6);
    cache.clear();
    expect(table.unmapped).toBe(6);
  });

  it('maps a gref listed twice in one request once', () => {
    const table = countingTable();
    const cache = new GrantCache(table, 1, true, 8);
    const m = cache.map([5, 5, 6], false)!;
    expect(m.addresses).toEqual([5 * 4096, 5 * 4096, 6 * 4096]);
    expect(table.mapped).toBe(2);
    cache.clear();
    expect(table.unmapped).toBe(2);
  });
});
