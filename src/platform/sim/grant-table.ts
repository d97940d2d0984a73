/**
 * Simulated grant table (Xen v1 entries) in the shared pool. The granting
 * domain writes its own entries (as a guest does); mapping, unmapping and
 * copying run the hypervisor's checks (library code, same atomics) against
 * the granter's entries from the mapping domain's thread.
 *
 * ```
 *  Grant entry v1 (8 bytes, xen/include/public/grant_table.h grant_entry_v1)
 *  0         2         4                   8
 *  +---------+---------+-------------------+
 *  | flags   | domid   | frame             |   frame = pool page index
 *  | u16     | u16     | u32               |
 *  +---------+---------+-------------------+
 *  flags: GTF_permit_access 1, GTF_readonly 4, GTF_reading 8, GTF_writing 16
 *
 *  Active pin word (u32 per entry, in the slot's active frames; Xen keeps
 *  this hypervisor-private in its active grant table)
 *  31              16 15               0
 *  +-----------------+-----------------+
 *  | writable maps   | read-only maps  |
 *  +-----------------+-----------------+
 * ```
 * Every mapping of a gref belongs to the one domain its entry names, so the
 * pins need no owner field.
 */
import { PAGE_SIZE } from '../../memory/layout.js';
import type { DomId, ForeignMapping, GrantTable, GrantedPages } from '../types.js';
import { GrantError } from './errors.js';
import { GRANT_ENTRY_BYTES, PageAllocator, type PoolView, type SlotInfo } from './pool.js';

export const GTF_permit_access = 1;
export const GTF_readonly = 4;
export const GTF_reading = 8;
export const GTF_writing = 16;
/** grefs 0..7 are reserved (xenstore, console), as in Linux's grant table. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
const READ_PIN = 1;
const WRITE_PIN = 1 << 16;

/** Access a mapper or copier asks for. */
export enum GrantAccess {
  Read,
  Write,
}

/** One side of a grant copy: a foreign granted page, or local memory. */
export type CopyPtr =
  | { readonly domid: DomId; readonly gref: number; readonly offset: number }
  | { readonly address: number }
  | { readonly buffer: Uint8Array; readonly offset?: number };

export interface CopyOp {
  readonly source: CopyPtr;
  readonly dest: CopyPtr;
  readonly len: number;
}

/** u16/u32 indices of entry `gref` of a slot's table. */
export function entryIndex(view: PoolView, info: SlotInfo, gref: number): { flags: number; frame: number; combined: number; pin: number } {
  const a = view.addr(info.grantFrame) + gref * GRANT_ENTRY_BYTES;
  return { flags: a >>> 1, combined: a >>> 2, frame: (a + 4) >>> 2, pin: (view.addr(info.activeFrame) >>> 2) + gref };
}

/**
 * Hypervisor side of a map or copy: check the entry and set its busy bits
 * (one compare-exchange on flags+domid, as Xen's _set_status_v1), then pin.
 * Returns the frame.
 */
export function acquireGrant(view: PoolView, info: SlotInfo, gref: number, mapper: DomId, access: GrantAccess): number {
  if (!Number.isInteger(gref) || gref < 0 || gref >= info.grantEntries) {
    throw new GrantError('bad-gref', `gref ${gref} out of range`);
  }
  const e = entryIndex(view, info, gref);
  for (;;) {
    const c = Atomics.load(view.u32, e.combined);
    const flags = c & 0xffff;
    const domid = c >>> 16;
    if ((flags & GTF_permit_access) === 0) throw new GrantError('not-granted', `gref ${gref} does not permit access`);
    if (domid !== mapper) throw new GrantError('wrong-domain', `gref ${gref} is granted to domain ${domid}, not ${mapper}`);
    if (access === GrantAccess.Write && (flags & GTF_readonly) !== 0) {
      throw new GrantError('read-only', `gref ${gref} is granted read-only`);
    }
    const busy = GTF_reading | (access === GrantAccess.Write ? GTF_writing : 0);
    // flags and domid change together or not at all: the granter's end
    // access (cmpxchg flags -> 0) and this cannot both succeed.
    if (Atomics.compareExchange(view.u32, e.combined, c, (c | busy) >>> 0) === c) break;
  }
  Atomics.add(view.u32, e.pin, access === GrantAccess.Write ? WRITE_PIN : READ_PIN);
  // The frame is read after the busy bits are set: the granter cannot end
  // access or rewrite the entry from here until the pin is dropped.
  const frame = Atomics.load(view.u32, e.frame);
  if (frame < info.pageBase || frame >= info.pageBase + info.pageCount) {
    releaseGrant(view, info, gref, access);
    throw new GrantError('bad-frame', `gref ${gref} names frame ${frame}, not a page of its granter`);
  }
  return frame;
}

/** Drop one pin; clear GTF_writing / GTF_reading when the last such pin goes. */
export function releaseGrant(view: PoolView, info: SlotInfo, gref: number, access: GrantAccess): void {
  const e = entryIndex(view, info, gref);
  const delta = access === GrantAccess.Write ? WRITE_PIN : READ_PIN;
  const pins = (Atomics.sub(view.u32, e.pin, delta) - delta) >>> 0;
  let clear = 0;
  if (pins >>> 16 === 0) clear |= GTF_writing;
  if (pins === 0) clear |= GTF_reading;
  // Pins dropped before the busy bits: the granter's end access succeeds only
  // once no mapping is left.
  if (clear !== 0) Atomics.and(view.u16, e.flags, ~clear & 0xffff);
}

interface MappingRecord {
  readonly slot: number;
  readonly access: GrantAccess;
}

export class SimGrantTable implements GrantTable {
  private readonly info: SlotInfo;
  private readonly pages: PageAllocator;
  private readonly freeGrefs: number[] = [];
  private readonly granted = new Set<number>();
  private readonly mappings = new Map<ForeignMapping, MappingRecord>();

  constructor(private readonly view: PoolView, readonly domid: DomId, includeDying = false) {
    const slot = view.slotOf(domid, includeDying);
    if (slot < 0) throw new GrantError('no-domain', `domain ${domid} does not exist`);
    this.info = view.slotInfo(slot);
    this.pages = new PageAllocator(view, this.info);
    for (let g = this.info.grantEntries - 1; g >= GNTTAB_NR_RESERVED_ENTRIES; g--) this.freeGrefs.push(g);
  }

  grantPages(domid: DomId, count: number, readOnly = false): GrantedPages {
    if (!Number.isInteger(count) || count < 1) throw new GrantError('bad-range', `count must be a positive integer, got ${count}`);
    if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) throw new GrantError('wrong-domain', `bad domid ${domid}`);
    if (count > this.freeGrefs.length) throw new GrantError('exhausted', `${count} grefs asked, ${this.freeGrefs.length} free`);
    const first = this.pages.allocRun(count);
    if (first < 0) throw new GrantError('exhausted', `domain ${this.domid} has no run of ${count} free pool pages`);
    const frames = Array.from({ length: count }, (_, i) => first + i);
    const grefs: number[] = [];
    for (const frame of frames) {
      const gref = this.freeGrefs.pop()!;
      const e = entryIndex(this.view, this.info, gref);
      Atomics.store(this.view.u32, e.frame, frame);
      Atomics.store(this.view.u16, e.flags + 1, domid);
      // domid and frame are written before flags: the hypervisor checks
      // GTF_permit_access first and must then see this grant's domid and frame.
      Atomics.store(this.view.u16, e.flags, GTF_permit_access | (readOnly ? GTF_readonly : 0));
      this.granted.add(gref);
      grefs.push(gref);
    }
    return Object.freeze({
      domid,
      grefs: Object.freeze(grefs),
      addresses: Object.freeze(frames.map((f) => this.view.addr(f))),
      readOnly,
    });
  }

  /** gnttab_end_foreign_access_ref: cmpxchg flags to 0 unless reading/writing. */
  private endAccess(gref: number): boolean {
    const e = entryIndex(this.view, this.info, gref);
    for (;;) {
      const flags = Atomics.load(this.view.u16, e.flags);
      if ((flags & (GTF_reading | GTF_writing)) !== 0) return false;
      if (Atomics.compareExchange(this.view.u16, e.flags, flags, 0) === flags) return true;
    }
  }

  ungrantPages(pages: GrantedPages): void {
    for (const g of pages.grefs) {
      if (!this.granted.has(g)) throw new GrantError('not-granted', `gref ${g} is not granted by domain ${this.domid}`);
    }
    const ended: number[] = [];
    for (const g of pages.grefs) {
      if (this.endAccess(g)) {
        ended.push(g);
        continue;
      }
      // Free nothing: give back access on the grefs already ended.
      for (const r of ended) {
        const e = entryIndex(this.view, this.info, r);
        Atomics.store(this.view.u16, e.flags, GTF_permit_access | (pages.readOnly ? GTF_readonly : 0));
      }
      throw new GrantError('busy', `gref ${g} is still mapped by domain ${pages.domid}`);
    }
    for (const g of ended) {
      const e = entryIndex(this.view, this.info, g);
      this.pages.free(Atomics.load(this.view.u32, e.frame));
      Atomics.store(this.view.u32, e.frame, 0);
      this.granted.delete(g);
      this.freeGrefs.push(g);
    }
  }

  mapForeign(domid: DomId, grefs: readonly number[], readOnly: boolean): ForeignMapping {
    const slot = this.view.slotOf(domid);
    if (slot < 0) throw new GrantError('no-domain', `domain ${domid} does not exist`);
    const info = this.view.slotInfo(slot);
    const access = readOnly ? GrantAccess.Read : GrantAccess.Write;
    const frames: number[] = [];
    try {
      for (const g of grefs) frames.push(acquireGrant(this.view, info, g, this.domid, access));
    } catch (err) {
      grefs.slice(0, frames.length).forEach((g) => releaseGrant(this.view, info, g, access)); // map nothing
      throw err;
    }
    const mapping: ForeignMapping = Object.freeze({
      domid,
      grefs: Object.freeze([...grefs]),
      addresses: Object.freeze(frames.map((f) => this.view.addr(f))),
      readOnly,
    });
    this.mappings.set(mapping, { slot, access });
    return mapping;
  }

  unmapForeign(mapping: ForeignMapping): void {
    const rec = this.mappings.get(mapping);
    if (rec === undefined) throw new GrantError('not-granted', `not a live mapping of domain ${this.domid}`);
    this.mappings.delete(mapping);
    const info = this.view.slotInfo(rec.slot);
    for (const g of mapping.grefs) releaseGrant(this.view, info, g, rec.access);
  }

  /**
   * GNTTABOP_copy: copy `len` bytes between a foreign granted page and local
   * memory (or another foreign page), with the checks of a map: the source
   * needs read access, the destination write access.
   */
  copy(op: CopyOp): void {
    if (!Number.isInteger(op.len) || op.len < 0) throw new GrantError('bad-range', `bad length ${op.len}`);
    const held: Array<() => void> = [];
    try {
      const src = this.resolve(op.source, op.len, GrantAccess.Read, held);
      const dst = this.resolve(op.dest, op.len, GrantAccess.Write, held);
      dst.set(src.subarray(0, op.len));
    } finally {
      for (const release of held) release();
    }
  }

  private resolve(p: CopyPtr, len: number, access: GrantAccess, held: Array<() => void>): Uint8Array {
    if ('buffer' in p) {
      const off = p.offset ?? 0;
      if (off < 0 || off + len > p.buffer.length) throw new GrantError('bad-range', `buffer range ${off}+${len} outside ${p.buffer.length} bytes`);
      return p.buffer.subarray(off, off + len);
    }
    if ('address' in p) {
      if (p.address < 0 || p.address + len > this.view.u8.length) throw new GrantError('bad-range', `address ${p.address}+${len} outside memory`);
      return this.view.u8.subarray(p.address, p.address + len);
    }
    if (!Number.isInteger(p.offset) || p.offset < 0 || p.offset + len > PAGE_SIZE) {
      throw new GrantError('bad-range', `offset ${p.offset}+${len} crosses the page`);
    }
    const slot = this.view.slotOf(p.domid);
    if (slot < 0) throw new GrantError('no-domain', `domain ${p.domid} does not exist`);
    const info = this.view.slotInfo(slot);
    const frame = acquireGrant(this.view, info, p.gref, this.domid, access);
    held.push(() => releaseGrant(this.view, info, p.gref, access));
    const a = this.view.addr(frame) + p.offset;
    return this.view.u8.subarray(a, a + len);
  }

  /** grefs this domain has granted and not ended. */
  activeGrants(): number {
    return this.granted.size;
  }

  /** Foreign grefs this domain has mapped (a gref mapped twice counts twice). */
  activeMappings(): number {
    let n = 0;
    for (const m of this.mappings.keys()) n += m.grefs.length;
    return n;
  }

  /** Pool pages this domain has allocated (leak checks). */
  pagesInUse(): number {
    return this.pages.inUse();
  }
}
