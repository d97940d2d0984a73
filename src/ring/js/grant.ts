/**
 * Grants, TypeScript twin of assembly/grant.ts: v1 grant entries
 * (xen/include/public/grant_table.h), a gref free list, and packing page
 * lists into blkif segments and indirect pages.
 *
 * Grant entry v1 (struct grant_entry_v1), 8 bytes, in the shared grant table:
 *
 * ```
 *  0           2           4              8
 *  +-----------+-----------+--------------+
 *  | flags u16 | domid u16 | frame u32    |
 *  +-----------+-----------+--------------+
 * ```
 *
 * Gref free list (private), all u32:
 *
 * ```
 *  0      4         8          12          16
 *  +------+---------+----------+-----------+------------------------------+
 *  | head | free    | capacity | first     | next[capacity]               |
 *  |      | count   |          | gref      | index of the next free entry |
 *  +------+---------+----------+-----------+------------------------------+
 * ```
 * `head` and `next[i]` are indices (gref = first + index); 0xffffffff ends
 * the list; an allocated entry's next is 0xfffffffe (GREF_IN_USE), which is
 * how a double free is caught. Alloc pops from the head, free pushes on it.
 */
import { BlkifStatus } from '../status.js';
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_SEGMENTS_PER_INDIRECT_PAGE, GTF_reading, GTF_writing,
  SECTORS_PER_PAGE, XEN_PAGE_SIZE,
} from '../../blkif/constants.js';
import type { Views } from './views.js';

export const GREF_LIST_END = 0xffffffff;
export const GREF_IN_USE = 0xfffffffe;
const LIST_HEAD = 0;
const LIST_FREE = 1;
const LIST_CAPACITY = 2;
const LIST_FIRST = 3;
const LIST_NEXT = 4;
const BLKIF_MAX_INDIRECT_SEGMENTS = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGMENTS_PER_INDIRECT_PAGE;

/** gnttab_grant_foreign_access_ref: domid and frame first, then flags. */
export function grantEntryWrite(v: Views, table: number, gref: number, domid: number, frame: number, flags: number): void {
  const entry = table + (gref >>> 0) * 8;
  v.u16[(entry >>> 1) + 1] = domid;
  v.u32[(entry >>> 2) + 1] = frame;
  // Seq-cst store last: the hypervisor sees domid and frame /before/ the
  // flags that make the entry valid.
  Atomics.store(v.u16, entry >>> 1, flags & 0xffff);
}

/**
 * gnttab_end_foreign_access_ref (v1): clear flags with a u16 compare-exchange
 * unless the peer has the grant mapped (GTF_reading | GTF_writing), retrying
 * if the flags change under us. OK or GRANT_BUSY (entry unchanged).
 */
export function grantEntryEndAccess(v: Views, table: number, gref: number): number {
  const u16 = v.u16;
  const at = (table + (gref >>> 0) * 8) >>> 1;
  let flags = Atomics.load(u16, at);
  for (;;) {
    if ((flags & (GTF_reading | GTF_writing)) !== 0) return BlkifStatus.GRANT_BUSY;
    // Atomic: the hypervisor may set GTF_reading/writing concurrently.
    const seen = Atomics.compareExchange(u16, at, flags, 0);
    if (seen === flags) return BlkifStatus.OK;
    flags = seen;
  }
}

// ---------------------------------------------------------------- free list

/** Initialise a free list of `capacity` grefs first..first+capacity−1, all free, in order. */
export function grefFreeListInit(v: Views, list: number, firstGref: number, capacity: number): void {
  const u32 = v.u32;
  const l = list >>> 2;
  capacity >>>= 0;
  u32[l + LIST_HEAD] = capacity === 0 ? GREF_LIST_END : 0;
  u32[l + LIST_FREE] = capacity;
  u32[l + LIST_CAPACITY] = capacity;
  u32[l + LIST_FIRST] = firstGref;
  const next = l + LIST_NEXT;
  for (let i = 0; i < capacity; i++) u32[next + i] = i + 1 === capacity ? GREF_LIST_END : i + 1;
}

/** Take up to `n` grefs into the u32 array at `out`; returns how many (0 when empty). */
export function grefAlloc(v: Views, list: number, n: number, out: number): number {
  const u32 = v.u32;
  const l = list >>> 2;
  const next = l + LIST_NEXT;
  const first = u32[l + LIST_FIRST]!;
  let head = u32[l + LIST_HEAD]!;
  let free = u32[l + LIST_FREE]!;
  const o = out >>> 2;
  let k = 0;
  for (; k < n && head !== GREF_LIST_END; k++) {
    u32[o + k] = (first + head) >>> 0;
    const link = next + head;
    head = u32[link]!;
    u32[link] = GREF_IN_USE;
    free = (free - 1) >>> 0;
  }
  u32[l + LIST_HEAD] = head;
  u32[l + LIST_FREE] = free;
  return k;
}

/**
 * Return `n` grefs, in order, each pushed on the head. Stops at the first
 * gref not from this list (GREF_NOT_OURS) or already free
 * (GREF_ALREADY_FREE); the grefs before it stay freed.
 */
export function grefFree(v: Views, list: number, grefs: number, n: number): number {
  const u32 = v.u32;
  const l = list >>> 2;
  const next = l + LIST_NEXT;
  const first = u32[l + LIST_FIRST]!;
  const capacity = u32[l + LIST_CAPACITY]!;
  let head = u32[l + LIST_HEAD]!;
  let free = u32[l + LIST_FREE]!;
  let status: number = BlkifStatus.OK;
  const g = grefs >>> 2;
  for (let k = 0; k < n; k++) {
    const index = (u32[g + k]! - first) >>> 0;
    if (index >= capacity) { status = BlkifStatus.GREF_NOT_OURS; break; }
    if (u32[next + index] !== GREF_IN_USE) { status = BlkifStatus.GREF_ALREADY_FREE; break; }
    u32[next + index] = head;
    head = index;
    free = (free + 1) >>> 0;
  }
  u32[l + LIST_HEAD] = head;
  u32[l + LIST_FREE] = free;
  return status;
}

// ---------------------------------------------------------------- packing

/**
 * Fill `nPages` wire segments at `out` from the u32 grefs at `grefs`,
 * covering `nSectors512` sectors from offset 0 of each page: every page full
 * (0..7) but the last. Returns nPages, or BAD_SECTOR_RANGE (nothing written)
 * unless (nPages − 1)·8 < nSectors512 ≤ nPages·8 (nPages 0 needs 0 sectors).
 */
export function packSegments(v: Views, grefs: number, nPages: number, nSectors512: number, out: number): number {
  nPages >>>= 0;
  nSectors512 >>>= 0;
  if (nSectors512 > nPages * SECTORS_PER_PAGE) return BlkifStatus.BAD_SECTOR_RANGE;
  if (nPages !== 0 && nSectors512 <= (nPages - 1) * SECTORS_PER_PAGE) return BlkifStatus.BAD_SECTOR_RANGE;
  const u32 = v.u32;
  const g = grefs >>> 2;
  let o = out >>> 2;
  let left = nSectors512;
  for (let i = 0; i < nPages; i++) {
    const n = left < SECTORS_PER_PAGE ? left : SECTORS_PER_PAGE;
    u32[o++] = u32[g + i]!;
    u32[o++] = (n - 1) << 8; // first_sect 0, last_sect n − 1, pad 0
    left -= n;
  }
  return nPages;
}

/**
 * Copy `nSegs` wire segments (pads cleared) into indirect pages (u32 page
 * addresses at `pages`), 512 per page, zeroing the rest of the last page.
 * Returns the number of pages used, or BAD_INDIRECT_NR_SEGMENTS (nothing
 * written) for nSegs 0 or > 4096.
 */
export function packIndirectPages(v: Views, segs: number, nSegs: number, pages: number): number {
  nSegs >>>= 0;
  if (nSegs === 0 || nSegs > BLKIF_MAX_INDIRECT_SEGMENTS) return BlkifStatus.BAD_INDIRECT_NR_SEGMENTS;
  const u32 = v.u32;
  const p = pages >>> 2;
  let s = segs >>> 2;
  let page = 0;
  for (let done = 0; done < nSegs; page++) {
    const n = Math.min(BLKIF_SEGMENTS_PER_INDIRECT_PAGE, nSegs - done);
    let o = u32[p + page]! >>> 2;
    for (let i = 0; i < n; i++) {
      u32[o++] = u32[s++]!;
      u32[o++] = u32[s++]! & 0xffff;
    }
    done += n;
    // The last page's tail: zero it so the back never reads stale segments.
    if (n < BLKIF_SEGMENTS_PER_INDIRECT_PAGE) {
      const end = (u32[p + page]! + XEN_PAGE_SIZE) >>> 2;
      while (o < end) u32[o++] = 0;
    }
  }
  return page;
}
