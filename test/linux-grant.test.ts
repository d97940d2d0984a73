/**
 * LinuxGrantTable with the kernel devices replaced by memfds, mapped over
 * the pool by the real native mapper: what gntalloc/gntdev would hand out is
 * a file region here, so the test sees that Wasm memory and the "peer's"
 * pages are the same pages, that runs are contiguous, and that every failure
 * leaves nothing held.
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { createSharedLayout, PAGE_SIZE, type SharedLayout } from '../src/memory/layout.js';
import { mapPages, memfdCreate, NativeError, unmapPages } from '../src/native/index.js';
import { mapPagesReadOnly } from '../src/native/xen-dev.js';
import type { GrantDevices } from '../src/platform/linux/grant-devices.js';
import { LinuxGrantTable } from '../src/platform/linux/grant-table.js';
import { GrantError } from '../src/platform/sim/errors.js';

const POOL_PAGES = 8;
const FILE_PAGES = 64;

/** gntalloc stand-in: index = a fresh offset in `allocFd`; gntdev stand-in: gref g is page g of `peerFd`. */
class MemfdDevices implements GrantDevices {
  readonly allocFd = memfdCreate('xenpv-gntalloc', FILE_PAGES * PAGE_SIZE);
  readonly peerFd = memfdCreate('xenpv-peer', FILE_PAGES * PAGE_SIZE);
  private nextIndex = 0;
  private nextGref = 8;
  failNext: NativeError | undefined;
  readonly deallocated: [number, number][] = [];
  readonly unmapped: [number, number][] = [];
  constructor(private readonly layout: SharedLayout) {}

  private maybeFail(): void {
    const e = this.failNext;
    this.failNext = undefined;
    if (e) throw e;
  }
  allocAndMap(address: number, _domid: number, count: number) {
    this.maybeFail();
    const index = this.nextIndex;
    this.nextIndex += count * PAGE_SIZE;
    mapPages(this.layout.memory, this.layout, address, this.allocFd, index, count * PAGE_SIZE);
    const grefs = Array.from({ length: count }, () => this.nextGref++);
    return { index, grefs };
  }
  unmapAndDealloc(address: number, index: number, count: number): void {
    unmapPages(this.layout.memory, this.layout, address, count * PAGE_SIZE);
    this.deallocated.push([index, count]);
  }
  mapForeign(address: number, _domid: number, grefs: readonly number[], readOnly: boolean) {
    this.maybeFail();
    grefs.forEach((g, i) => { if (g !== grefs[0]! + i) throw new Error('stand-in maps consecutive grefs only'); });
    const index = grefs[0]! * PAGE_SIZE;
    const map = readOnly ? mapPagesReadOnly : mapPages;
    map(this.layout.memory, this.layout, address, this.peerFd, index, grefs.length * PAGE_SIZE);
    return { index };
  }
  unmapForeign(address: number, index: number, count: number): void {
    unmapPages(this.layout.memory, this.layout, address, count * PAGE_SIZE);
    this.unmapped.push([index, count]);
  }
  close(): void {
    closeSync(this.allocFd);
    closeSync(this.peerFd);
  }
}

const fileByte = (fd: number, at: number): number => {
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  return b[0]!;
};

describe('LinuxGrantTable', () => {
  let layout: SharedLayout;
  let dev: MemfdDevices;
  let gt: LinuxGrantTable;
  let mem: Uint8Array;

  beforeEach(() => {
    layout = createSharedLayout({ scratchBytes: 65536, poolPages: POOL_PAGES });
    mem = new Uint8Array(layout.memory.buffer);
    dev = new MemfdDevices(layout);
    gt = new LinuxGrantTable(0, layout, dev);
  });
  afterEach(() => gt.dispose());

  it('grants a contiguous run of pool pages that are the gntalloc pages themselves', () => {
    const g = gt.grantPages(5, 3);
    expect(g).toMatchObject({ domid: 5, readOnly: false, grefs: [8, 9, 10] });
    const first = g.addresses[0]!;
    expect(g.addresses).toEqual([first, first + PAGE_SIZE, first + 2 * PAGE_SIZE]);
    expect(first).toBeGreaterThanOrEqual(layout.poolBase);
    expect(first + 3 * PAGE_SIZE).toBeLessThanOrEqual(layout.poolBase + POOL_PAGES * PAGE_SIZE);
    expect(mem.subarray(first, first + 3 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    mem[first + 2 * PAGE_SIZE + 7] = 0xab; // a store through the memory reaches the granted page
    expect(fileByte(dev.allocFd, 2 * PAGE_SIZE + 7)).toBe(0xab);
    expect(gt.activeGrants()).toBe(3);
  });

  it('ungrants: private zero pages return, the index is deallocated, the run is reusable', () => {
    const g = gt.grantPages(5, POOL_PAGES);
    mem[g.addresses[0]!] = 0x11;
    gt.ungrantPages(g);
    expect(mem[g.addresses[0]!]).toBe(0);
    expect(fileByte(dev.allocFd, 0)).toBe(0x11); // the peer's page is untouched by our unmap
    expect(dev.deallocated).toEqual([[0, POOL_PAGES]]);
    expect(gt.activeGrants()).toBe(0);
    expect(gt.grantPages(5, POOL_PAGES).addresses[0]).toBe(g.addresses[0]);
  });

  it('refuses to ungrant twice, or pages it did not grant', () => {
    const g = gt.grantPages(1, 1);
    gt.ungrantPages(g);
    expect(() => gt.ungrantPages(g)).toThrow(GrantError);
    expect(() => gt.ungrantPages({ ...g, addresses: [layout.poolBase + 4096] })).toThrow(/bad-gref/);
  });

  it("is 'exhausted' when no run is long enough, holding nothing more", () => {
    gt.grantPages(1, 6);
    let err: unknown;
    try { gt.grantPages(1, 3); } catch (e) { err = e; }
    expect((err as GrantError).reason).toBe('exhausted');
    expect(gt.activeGrants()).toBe(6);
    expect(gt.grantPages(1, 2).grefs).toHaveLength(2);
  });

  it('turns a device failure into GrantError with the errno as cause, and frees the run', () => {
    dev.failNext = new NativeError('IOCTL_GNTALLOC_ALLOC_GREF', { errno: constants.errno.ENOSPC, syscall: 'ioctl' });
    let err: unknown;
    try { gt.grantPages(2, POOL_PAGES); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GrantError);
    expect((err as GrantError).reason).toBe('exhausted');
    expect(((err as Error).cause as NativeError).errno).toBe(constants.errno.ENOSPC);
    expect(gt.grantPages(2, POOL_PAGES).grefs).toHaveLength(POOL_PAGES);
  });

  it('maps foreign pages read-only over the pool and unmaps them', () => {
    writeSync(dev.peerFd, Buffer.alloc(2 * PAGE_SIZE, 0x77), 0, 2 * PAGE_SIZE, 20 * PAGE_SIZE);
    const m = gt.mapForeign(4, [20, 21], true);
    expect(m.addresses[1]).toBe(m.addresses[0]! + PAGE_SIZE);
    expect(mem.subarray(m.addresses[0]!, m.addresses[0]! + 2 * PAGE_SIZE).every((b) => b === 0x77)).toBe(true);
    expect(gt.activeMappings()).toBe(2);
    gt.unmapForeign(m);
    expect(dev.unmapped).toEqual([[20 * PAGE_SIZE, 2]]);
    expect(mem[m.addresses[0]!]).toBe(0);
    expect(gt.activeMappings()).toBe(0);
    expect(() => gt.unmapForeign(m)).toThrow(/bad-gref/);
  });

  it("reports a refused foreign map as 'not-granted' and holds no pages", () => {
    dev.failNext = new NativeError('mmap', { errno: constants.errno.EINVAL, syscall: 'mmap' });
    expect(() => gt.mapForeign(4, [30], false)).toThrow(/not-granted/);
    expect(gt.activeMappings()).toBe(0);
    expect(gt.grantPages(1, POOL_PAGES).grefs).toHaveLength(POOL_PAGES);
  });

  it('refuses bad domids, counts and grefs as invalid arguments', () => {
    expect(() => gt.grantPages(-1, 1)).toThrow(InvalidArgumentError);
    expect(() => gt.grantPages(1, 0)).toThrow(InvalidArgumentError);
    expect(() => gt.mapForeign(1, [], true)).toThrow(InvalidArgumentError);
    expect(() => gt.mapForeign(1, [-5], true)).toThrow(/bad-gref/);
    expect(gt.activeGrants() + gt.activeMappings()).toBe(0);
  });
});
