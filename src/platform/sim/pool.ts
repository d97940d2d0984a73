/**
 * Bookkeeping of the simulated hypervisor, kept in the shared page pool so
 * every thread (and, later, every process mapping the pool file) sees the
 * same bytes. Nothing here lives in JS heap state that another thread needs.
 *
 * Pool frame 0 is the directory. Each domain slot owns a fixed, disjoint set
 * of frames, laid out once by `formatPool` (main thread) and never moved:
 *
 * ```
 *  frame 0        directory (below)
 *  per slot s:    evtchn page | grant entries (grantFrames) | active pins
 *                 (grantFrames/2) | allocation bitmap | data pages (pageCount)
 *
 *  Directory page
 *  0        4          8            12          16                 64
 *  +--------+----------+------------+-----------+------ ... -------+---------------+
 *  | magic  | version  | maxDomains | nextDomid | (reserved)       | slot[0] ...   |
 *  | 'XSIM' | u32 = 1  | u32        | u32       |                  | 64 bytes each |
 *  +--------+----------+------------+-----------+------ ... -------+---------------+
 *
 *  Slot (64 bytes)
 *  0       4       8            12          16            20           24          28         32          36
 *  +-------+-------+------------+-----------+-------------+------------+-----------+----------+-----------+---- pad
 *  | domid | state | evtchn     | grant     | grant       | active     | alloc     | pageBase | pageCount |
 *  | u32   | u32   | Frame u32  | Frame u32 | Entries u32 | Frame u32  | Frame u32 | u32      | u32       |
 *  +-------+-------+------------+-----------+-------------+------------+-----------+----------+-----------+----
 * ```
 * `domid` and `state` change over a slot's life; the frame fields never do.
 */
import { PAGE_SIZE, frameAddress, type SharedLayout } from '../../memory/layout.js';
import { InvalidArgumentError } from '../../errors.js';
import type { DomId } from '../types.js';

export const DIRECTORY_FRAME = 0;
export const POOL_MAGIC = 0x4d495358; // 'XSIM' little-endian
export const POOL_VERSION = 1;

const DIR_MAGIC = 0;
const DIR_VERSION = 4;
const DIR_MAX_DOMAINS = 8;
const DIR_NEXT_DOMID = 12;
const DIR_SLOTS = 64;
const SLOT_BYTES = 64;
export const MAX_SLOTS = (PAGE_SIZE - DIR_SLOTS) / SLOT_BYTES; // 63

const SLOT_DOMID = 0;
const SLOT_STATE = 4;
const SLOT_EVTCHN_FRAME = 8;
const SLOT_GRANT_FRAME = 12;
const SLOT_GRANT_ENTRIES = 16;
const SLOT_ACTIVE_FRAME = 20;
const SLOT_ALLOC_FRAME = 24;
const SLOT_PAGE_BASE = 28;
const SLOT_PAGE_COUNT = 32;

/** Life of a domain slot, as stored in the directory. */
export enum SlotState {
  Free = 0,
  Running = 1,
  /** Destroyed, but pages it granted are still mapped by others (a Xen zombie). */
  Dying = 2,
}

export const GRANT_ENTRY_BYTES = 8;
export const ENTRIES_PER_FRAME = PAGE_SIZE / GRANT_ENTRY_BYTES; // 512
/** Bits in one allocation-bitmap page: the most data pages a slot can have. */
const MAX_SLOT_PAGES = PAGE_SIZE * 8;

export interface SlotInfo {
  readonly slot: number;
  readonly evtchnFrame: number;
  readonly grantFrame: number;
  readonly grantEntries: number;
  readonly activeFrame: number;
  readonly allocFrame: number;
  readonly pageBase: number;
  readonly pageCount: number;
}

export interface PoolPlan {
  maxDomains?: number;
  /** Grant-table frames per domain (512 entries each). Default 4. */
  grantFrames?: number;
}

/**
 * Typed views over the shared memory plus directory look-ups. One per thread;
 * the views are never stale because the memory never grows.
 */
export class PoolView {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  private readonly dir: number; // byte address of the directory page
  private readonly slotCache = new Map<DomId, number>();

  constructor(readonly layout: SharedLayout) {
    const buf = layout.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.u32 = new Uint32Array(buf);
    this.i32 = new Int32Array(buf);
    this.dir = frameAddress(layout, DIRECTORY_FRAME);
  }

  /** Byte address of pool frame `frame`. */
  addr(frame: number): number {
    return this.layout.poolBase + frame * PAGE_SIZE;
  }

  /** Pool frame containing byte address `address`, or -1 outside the pool. */
  frameOf(address: number): number {
    const off = address - this.layout.poolBase;
    if (off < 0 || off >= this.layout.poolPages * PAGE_SIZE) return -1;
    return Math.floor(off / PAGE_SIZE);
  }

  get maxDomains(): number {
    return this.u32[(this.dir + DIR_MAX_DOMAINS) >>> 2];
  }

  isFormatted(): boolean {
    return this.u32[(this.dir + DIR_MAGIC) >>> 2] === POOL_MAGIC;
  }

  private slotWord(slot: number, field: number): number {
    return (this.dir + DIR_SLOTS + slot * SLOT_BYTES + field) >>> 2;
  }

  slotState(slot: number): SlotState {
    return Atomics.load(this.u32, this.slotWord(slot, SLOT_STATE)) as SlotState;
  }

  slotDomid(slot: number): DomId {
    return Atomics.load(this.u32, this.slotWord(slot, SLOT_DOMID));
  }

  /** The slot holding `domid` in state Running (or Dying if `includeDying`), else -1. */
  slotOf(domid: DomId, includeDying = false): number {
    const ok = (s: number): boolean => {
      const st = this.slotState(s);
      return this.slotDomid(s) === domid && (st === SlotState.Running || (includeDying && st === SlotState.Dying));
    };
    const cached = this.slotCache.get(domid);
    if (cached !== undefined && ok(cached)) return cached;
    for (let s = 0; s < this.maxDomains; s++) {
      if (ok(s)) {
        this.slotCache.set(domid, s);
        return s;
      }
    }
    return -1;
  }

  slotInfo(slot: number): SlotInfo {
    const w = (f: number): number => this.u32[this.slotWord(slot, f)];
    return {
      slot,
      evtchnFrame: w(SLOT_EVTCHN_FRAME),
      grantFrame: w(SLOT_GRANT_FRAME),
      grantEntries: w(SLOT_GRANT_ENTRIES),
      activeFrame: w(SLOT_ACTIVE_FRAME),
      allocFrame: w(SLOT_ALLOC_FRAME),
      pageBase: w(SLOT_PAGE_BASE),
      pageCount: w(SLOT_PAGE_COUNT),
    };
  }

  /** Main thread only: claim a free slot for `domid` (or -1 when full). */
  claimSlot(domid: DomId): number {
    for (let s = 0; s < this.maxDomains; s++) {
      if (this.slotState(s) !== SlotState.Free) continue;
      Atomics.store(this.u32, this.slotWord(s, SLOT_DOMID), domid);
      // Publishes domid before Running: a reader that sees Running sees the domid.
      Atomics.store(this.u32, this.slotWord(s, SLOT_STATE), SlotState.Running);
      return s;
    }
    return -1;
  }

  setSlotState(slot: number, state: SlotState): void {
    Atomics.store(this.u32, this.slotWord(slot, SLOT_STATE), state);
  }

  /** Main thread only: hand out the next domain id. */
  nextDomid(): DomId {
    return Atomics.add(this.u32, (this.dir + DIR_NEXT_DOMID) >>> 2, 1);
  }

  reserveDomid(domid: DomId): void {
    const i = (this.dir + DIR_NEXT_DOMID) >>> 2;
    if (Atomics.load(this.u32, i) <= domid) Atomics.store(this.u32, i, domid + 1);
  }

  /** Zero `frames` pool frames starting at `frame`. */
  zeroFrames(frame: number, frames = 1): void {
    const a = this.addr(frame);
    // Word fills: a byte fill over shared memory is 3-4x slower (V8 takes a slow path).
    this.u32.fill(0, a >>> 2, (a + frames * PAGE_SIZE) >>> 2);
  }

  /** Zero bytes [from, to) of the memory (any alignment). */
  zeroBytes(from: number, to: number): void {
    const a = Math.min((from + 3) & ~3, to);
    const b = Math.max(to & ~3, a);
    this.u8.fill(0, from, a);
    this.u32.fill(0, a >>> 2, b >>> 2);
    this.u8.fill(0, b, to);
  }
}

/**
 * Main thread, once: write the directory and carve the pool into slots.
 * Returns the number of data pages each slot gets.
 */
export function formatPool(view: PoolView, plan: PoolPlan = {}): number {
  const maxDomains = plan.maxDomains ?? 4;
  const grantFrames = plan.grantFrames ?? 4;
  if (!Number.isInteger(maxDomains) || maxDomains < 1 || maxDomains > MAX_SLOTS) {
    throw new InvalidArgumentError('maxDomains', `must be 1..${MAX_SLOTS}, got ${maxDomains}`);
  }
  if (!Number.isInteger(grantFrames) || grantFrames < 1 || grantFrames > 64) {
    throw new InvalidArgumentError('grantFrames', `must be 1..64, got ${grantFrames}`);
  }
  const activeFrames = Math.ceil(grantFrames / 2); // 4-byte pin word per 8-byte entry
  const fixed = 1 + grantFrames + activeFrames + 1;
  const poolPages = view.layout.poolPages;
  const pageCount = Math.min(MAX_SLOT_PAGES, Math.floor((poolPages - 1) / maxDomains) - fixed);
  if (pageCount < 1) {
    throw new InvalidArgumentError('poolPages', `${poolPages} pages cannot hold ${maxDomains} domains`);
  }
  view.zeroFrames(DIRECTORY_FRAME);
  const d = view.addr(DIRECTORY_FRAME) >>> 2;
  view.u32[d + DIR_MAGIC / 4] = POOL_MAGIC;
  view.u32[d + DIR_VERSION / 4] = POOL_VERSION;
  view.u32[d + DIR_MAX_DOMAINS / 4] = maxDomains;
  view.u32[d + DIR_NEXT_DOMID / 4] = 0;
  let frame = 1;
  for (let s = 0; s < maxDomains; s++) {
    const w = (d + (DIR_SLOTS + s * SLOT_BYTES) / 4) | 0;
    view.u32[w + SLOT_STATE / 4] = SlotState.Free;
    view.u32[w + SLOT_EVTCHN_FRAME / 4] = frame;
    view.u32[w + SLOT_GRANT_FRAME / 4] = frame + 1;
    view.u32[w + SLOT_GRANT_ENTRIES / 4] = grantFrames * ENTRIES_PER_FRAME;
    view.u32[w + SLOT_ACTIVE_FRAME / 4] = frame + 1 + grantFrames;
    view.u32[w + SLOT_ALLOC_FRAME / 4] = frame + 1 + grantFrames + activeFrames;
    view.u32[w + SLOT_PAGE_BASE / 4] = frame + fixed;
    view.u32[w + SLOT_PAGE_COUNT / 4] = pageCount;
    view.zeroFrames(frame, fixed);
    frame += fixed + pageCount;
  }
  return pageCount;
}

/**
 * A domain's page allocator over its own range of pool frames. The free set
 * is a bitmap in the slot's allocation page (bit i = frame pageBase+i in
 * use), changed with compare-exchange, so the owner allocating and the
 * hypervisor reclaiming after a destroy never tear a word.
 */
export class PageAllocator {
  private hint = 0;
  private readonly bitmap: number; // u32 index of the bitmap's first word

  constructor(private readonly view: PoolView, private readonly info: SlotInfo) {
    this.bitmap = view.addr(info.allocFrame) >>> 2;
  }

  /** A zeroed frame, or -1 when the domain's range is exhausted. */
  alloc(): number {
    return this.allocRun(1);
  }

  /**
   * `count` zeroed, contiguous frames (a multi-page ring is one block of
   * memory); returns the first, or -1 when no run that long is free.
   */
  allocRun(count: number): number {
    const { pageCount, pageBase } = this.info;
    const u32 = this.view.u32;
    const isSet = (i: number): boolean => (Atomics.load(u32, this.bitmap + (i >>> 5)) & (1 << (i & 31))) !== 0;
    for (let pass = 0; pass < 2; pass++) {
      let run = 0;
      const from = pass === 0 ? this.hint : 0;
      const to = pass === 0 ? pageCount : Math.min(pageCount, this.hint + count);
      for (let i = from; i < to; i++) {
        if (isSet(i)) {
          run = 0;
          continue;
        }
        if (++run < count) continue;
        const first = i - count + 1;
        if (this.claim(first, count)) {
          this.hint = first + count;
          this.view.zeroFrames(pageBase + first, count); // pages come zeroed
          return pageBase + first;
        }
        run = 0; // lost a race for one of the bits: keep looking past it
      }
    }
    return -1;
  }

  /** Set bits [first, first+count) atomically each; undo all if any was taken. */
  private claim(first: number, count: number): boolean {
    for (let i = first; i < first + count; i++) {
      const bit = 1 << (i & 31);
      if ((Atomics.or(this.view.u32, this.bitmap + (i >>> 5), bit) & bit) !== 0) {
        for (let j = first; j < i; j++) Atomics.and(this.view.u32, this.bitmap + (j >>> 5), ~(1 << (j & 31)));
        return false;
      }
    }
    return true;
  }

  /** Return `frame` to the free set. False if it is not an allocated frame of this domain. */
  free(frame: number): boolean {
    const idx = frame - this.info.pageBase;
    if (idx < 0 || idx >= this.info.pageCount) return false;
    const bit = 1 << (idx & 31);
    const old = Atomics.and(this.view.u32, this.bitmap + (idx >>> 5), ~bit);
    return (old & bit) !== 0;
  }

  owns(frame: number): boolean {
    const idx = frame - this.info.pageBase;
    return idx >= 0 && idx < this.info.pageCount;
  }

  /** Frames currently allocated (leak checks). */
  inUse(): number {
    let n = 0;
    const words = Math.ceil(this.info.pageCount / 32);
    for (let w = 0; w < words; w++) {
      let v = Atomics.load(this.view.u32, this.bitmap + w);
      while (v !== 0) {
        v &= v - 1;
        n++;
      }
    }
    return n;
  }
}
