import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSharedLayout, PAGE_SIZE, type SharedLayout } from '../src/memory/layout.js';
import { InvalidArgumentError } from '../src/errors.js';
import { loadAddon, mapPages, memfdCreate, NativeError, packageRoot, unmapPages } from '../src/native/index.js';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { wasmProbe } from './peers/wasm-probe.js';

const FILE_PAGES = 8;
const SENTINEL = 0x5a;
const FILE_BYTE = 0xc3;

function fileByte(fd: number, at: number): number {
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  return b[0]!;
}

describe('mapPages / unmapPages', () => {
  let layout: SharedLayout;
  let fd: number;
  let mem: Uint8Array;

  beforeEach(() => {
    layout = createSharedLayout({ scratchBytes: 65536, poolPages: 16 });
    mem = new Uint8Array(layout.memory.buffer);
    fd = memfdCreate('xenpv-test', FILE_PAGES * PAGE_SIZE);
    writeSync(fd, Buffer.alloc(FILE_PAGES * PAGE_SIZE, FILE_BYTE), 0, FILE_PAGES * PAGE_SIZE, 0);
    mem.fill(SENTINEL, layout.poolBase, layout.poolBase + layout.poolPages * PAGE_SIZE);
  });
  afterEach(() => {
    try { closeSync(fd); } catch { /* closed by the test */ }
  });

  /** Nothing mapped: the pool still holds the sentinel and stores do not reach the file. */
  function expectNothingMapped(): void {
    const pool = mem.subarray(layout.poolBase, layout.poolBase + layout.poolPages * PAGE_SIZE);
    expect(pool.every((b) => b === SENTINEL)).toBe(true);
    mem[layout.poolBase] = 0x11;
    expect(fileByte(fd, 0)).toBe(FILE_BYTE);
    mem[layout.poolBase] = SENTINEL;
  }

  function refused(field: string, f: () => void): void {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).code).toBe('invalid-argument');
    expect((err as InvalidArgumentError).field).toBe(field);
    expectNothingMapped();
  }

  it('refuses an offset below the pool (scratch)', () => {
    refused('offset', () => mapPages(layout.memory, layout, layout.poolBase - PAGE_SIZE, fd, 0, PAGE_SIZE));
  });
  it('refuses an offset at or past the end of the pool', () => {
    const end = layout.poolBase + layout.poolPages * PAGE_SIZE;
    refused('offset', () => mapPages(layout.memory, layout, end, fd, 0, PAGE_SIZE));
    refused('offset', () => mapPages(layout.memory, layout, 0, fd, 0, PAGE_SIZE));
  });
  it('refuses an unaligned offset', () => {
    refused('offset', () => mapPages(layout.memory, layout, layout.poolBase + 512, fd, 0, PAGE_SIZE));
    refused('offset', () => mapPages(layout.memory, layout, layout.poolBase + 0.5, fd, 0, PAGE_SIZE));
  });
  it('refuses an unaligned or negative fileOffset', () => {
    refused('fileOffset', () => mapPages(layout.memory, layout, layout.poolBase, fd, 100, PAGE_SIZE));
    refused('fileOffset', () => mapPages(layout.memory, layout, layout.poolBase, fd, -PAGE_SIZE, PAGE_SIZE));
  });
  it('refuses an unaligned or zero length', () => {
    refused('length', () => mapPages(layout.memory, layout, layout.poolBase, fd, 0, 100));
    refused('length', () => mapPages(layout.memory, layout, layout.poolBase, fd, 0, 0));
  });
  it('refuses a length past the end of the memory', () => {
    const past = layout.memory.buffer.byteLength - layout.poolBase + PAGE_SIZE;
    refused('length', () => mapPages(layout.memory, layout, layout.poolBase, fd, 0, past));
  });
  it('refuses a length past the end of the pool', () => {
    refused('length', () => mapPages(layout.memory, layout, layout.poolBase + 15 * PAGE_SIZE, fd, 0, 2 * PAGE_SIZE));
  });
  it('refuses a mapping past the end of the file (it would SIGBUS)', () => {
    refused('length', () => mapPages(layout.memory, layout, layout.poolBase, fd, 4 * PAGE_SIZE, 5 * PAGE_SIZE));
  });
  it('refuses a bad descriptor', () => {
    const spare = memfdCreate('xenpv-closed', PAGE_SIZE);
    closeSync(spare);
    refused('fd', () => mapPages(layout.memory, layout, layout.poolBase, spare, 0, PAGE_SIZE));
    refused('fd', () => mapPages(layout.memory, layout, layout.poolBase, -1, 0, PAGE_SIZE));
    refused('fd', () => mapPages(layout.memory, layout, layout.poolBase, 1.5, 0, PAGE_SIZE));
  });
  it('refuses a memory that is not shared', () => {
    const priv = new WebAssembly.Memory({ initial: 2, maximum: 2 });
    refused('memory', () => mapPages(priv, layout, layout.poolBase, fd, 0, PAGE_SIZE));
  });
  it('the addon itself refuses unaligned or out-of-bounds regions (defence in depth)', () => {
    const addon = loadAddon();
    const sab = layout.memory.buffer as SharedArrayBuffer;
    expect(() => addon.mapIntoMemory(sab, layout.poolBase + 1, fd, 0, PAGE_SIZE)).toThrow(/offset/);
    expect(() => addon.mapIntoMemory(sab, layout.poolBase, fd, 0, sab.byteLength)).toThrow(/past the end/);
    expect(() => addon.mapIntoMemory(sab, layout.poolBase, fd, 7, PAGE_SIZE)).toThrow(/fileOffset/);
    expectNothingMapped();
  });
  it('a failing mmap is a NativeError with errno (read-only descriptor for a shared writable map)', () => {
    const ro = openSync(`/proc/self/fd/${fd}`, 'r');
    try {
      let err: unknown;
      try { mapPages(layout.memory, layout, layout.poolBase, ro, 0, PAGE_SIZE); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(NativeError);
      expect((err as NativeError).code).toBe('native');
      expect((err as NativeError).errno).toBe(13); // EACCES
      expectNothingMapped();
    } finally {
      closeSync(ro);
    }
  });

  it('maps file pages: JS and Wasm stores reach the file, file writes reach memory', () => {
    const at = layout.poolBase + 2 * PAGE_SIZE;
    mapPages(layout.memory, layout, at, fd, PAGE_SIZE, 2 * PAGE_SIZE);
    expect(mem[at]).toBe(FILE_BYTE);
    expect(mem[layout.poolBase]).toBe(SENTINEL); // neighbours untouched
    expect(mem[at + 2 * PAGE_SIZE]).toBe(SENTINEL);
    mem[at + 10] = 0x77;
    expect(fileByte(fd, PAGE_SIZE + 10)).toBe(0x77);
    const probe = wasmProbe(layout.memory);
    probe.store(at + PAGE_SIZE + 8, 0xdeadbeef);
    const word = Buffer.alloc(4);
    readSync(fd, word, 0, 4, 2 * PAGE_SIZE + 8);
    expect(word.readUInt32LE(0)).toBe(0xdeadbeef);
    writeSync(fd, Buffer.from([1, 2, 3, 4]), 0, 4, PAGE_SIZE + 100);
    expect(probe.load(at + 100)).toBe(0x04030201);
  });

  it('the mapping survives memory.grow(0) and views made afterwards', () => {
    const at = layout.poolBase + 4 * PAGE_SIZE;
    mapPages(layout.memory, layout, at, fd, 0, PAGE_SIZE);
    const pagesBefore = layout.memory.grow(0);
    expect(pagesBefore).toBe(layout.memory.buffer.byteLength / 65536);
    const fresh = new Uint8Array(layout.memory.buffer);
    fresh[at + 1] = 0x42;
    expect(fileByte(fd, 1)).toBe(0x42);
    writeSync(fd, Buffer.from([0x99]), 0, 1, 2);
    expect(new Uint8Array(layout.memory.buffer)[at + 2]).toBe(0x99);
    expect(Atomics.load(new Int32Array(layout.memory.buffer), (at + 4) / 4)).toBe(FILE_BYTE * 0x01010101 | 0);
  });

  it('unmapPages restores private zero pages and detaches from the file', () => {
    const at = layout.poolBase + 3 * PAGE_SIZE;
    mapPages(layout.memory, layout, at, fd, 0, 2 * PAGE_SIZE);
    mem[at] = 0x10;
    unmapPages(layout.memory, layout, at, 2 * PAGE_SIZE);
    expect(mem.subarray(at, at + 2 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    mem[at] = 0x20;
    expect(fileByte(fd, 0)).toBe(0x10); // the file kept what was written while mapped
    expect(mem[at - 1]).toBe(SENTINEL);
    expect(mem[at + 2 * PAGE_SIZE]).toBe(SENTINEL);
  });

  it('unmapPages refuses the same bad regions as mapPages', () => {
    refused('offset', () => unmapPages(layout.memory, layout, layout.poolBase - PAGE_SIZE, PAGE_SIZE));
    refused('length', () => unmapPages(layout.memory, layout, layout.poolBase, 10));
  });

  it('finds the addon from the repository root', () => {
    expect(packageRoot()).toBe(dirname(dirname(fileURLToPath(import.meta.url))));
    expect(typeof loadAddon().pageSize()).toBe('number');
  });

  it('memfdCreate refuses bad arguments', () => {
    expect(() => memfdCreate('', PAGE_SIZE)).toThrow(InvalidArgumentError);
    expect(() => memfdCreate('x', -1)).toThrow(InvalidArgumentError);
  });
});
