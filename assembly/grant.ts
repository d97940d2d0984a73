/**
 * Grants: v1 grant entries (xen/include/public/grant_table.h), a free list of
 * grant references, and packing page lists into blkif segments and indirect
 * pages.
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
 * the list. An allocated entry's next is 0xfffffffe (GREF_IN_USE), which is
 * how a double free is caught. Alloc pops from the head; free pushes on the
 * head (LIFO, the most recently used gref is reused first).
 */
import {
  BLKIF_MAX_INDIRECT_SEGMENTS, BLKIF_SEGMENT_BYTES, BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  GRANT_ENTRY_V1_BYTES, GTF_reading, GTF_writing, SECTORS_PER_PAGE, XEN_PAGE_SIZE,
} from './constants';
import { BAD_INDIRECT_NR_SEGMENTS, BAD_SECTOR_RANGE, GRANT_BUSY, GREF_ALREADY_FREE, GREF_NOT_OURS, OK } from './status';

@inline const GNT_FLAGS: u32 = 0;
@inline const GNT_DOMID: u32 = 2;
@inline const GNT_FRAME: u32 = 4;

@inline const LIST_HEAD: u32 = 0;
@inline const LIST_FREE: u32 = 4;
@inline const LIST_CAPACITY: u32 = 8;
@inline const LIST_FIRST: u32 = 12;
@inline const LIST_NEXT: u32 = 16;
@inline export const GREF_LIST_END: u32 = 0xffffffff;
@inline export const GREF_IN_USE: u32 = 0xfffffffe;

/** gnttab_grant_foreign_access_ref: domid and frame first, then flags. */
export function grantEntryWrite(table: usize, gref: u32, domid: u32, frame: u32, flags: u32): void {
  const entry = table + <usize>gref * GRANT_ENTRY_V1_BYTES;
  store<u16>(entry + GNT_DOMID, <u16>domid);
  store<u32>(entry + GNT_FRAME, frame);
  // Seq-cst store last: the hypervisor sees domid and frame before the flags
  // that make the entry valid.
  atomic.store<u16>(entry + GNT_FLAGS, <u16>flags);
}

/**
 * gnttab_end_foreign_access_ref (v1): clear flags with a u16 compare-exchange
 * unless the peer has the grant mapped (GTF_reading | GTF_writing), retrying
 * if the flags change under us. Returns OK or GRANT_BUSY (entry unchanged).
 */
export function grantEntryEndAccess(table: usize, gref: u32): i32 {
  const ptr = table + <usize>gref * GRANT_ENTRY_V1_BYTES + GNT_FLAGS;
  let flags = atomic.load<u16>(ptr);
  while (true) {
    if ((flags & (GTF_reading | GTF_writing)) != 0) return GRANT_BUSY;
    // Atomic: the hypervisor may set GTF_reading/writing concurrently.
    const seen = atomic.cmpxchg<u16>(ptr, flags, 0);
    if (seen == flags) return OK;
    flags = seen;
  }
  return OK; // unreachable
}

// ---------------------------------------------------------------- free list

@inline function nextAt(list: usize, i: u32): usize { return list + LIST_NEXT + (<usize>i << 2); }

/** Initialise a free list of `capacity` grefs first..first+capacity−1, all free, in order. */
export function grefFreeListInit(list: usize, firstGref: u32, capacity: u32): void {
  store<u32>(list + LIST_HEAD, capacity == 0 ? GREF_LIST_END : 0);
  store<u32>(list + LIST_FREE, capacity);
  store<u32>(list + LIST_CAPACITY, capacity);
  store<u32>(list + LIST_FIRST, firstGref);
  for (let i: u32 = 0; i < capacity; i++) {
    store<u32>(nextAt(list, i), i + 1 == capacity ? GREF_LIST_END : i + 1);
  }
}

/** Take up to `n` grefs into the u32 array at `out`; returns how many (0 when empty). */
export function grefAlloc(list: usize, n: u32, out: usize): u32 {
  const first = load<u32>(list + LIST_FIRST);
  let head = load<u32>(list + LIST_HEAD);
  let free = load<u32>(list + LIST_FREE);
  let k: u32 = 0;
  while (k < n && head != GREF_LIST_END) {
    const link = nextAt(list, head);
    store<u32>(out + (<usize>k << 2), first + head);
    head = load<u32>(link);
    store<u32>(link, GREF_IN_USE);
    free--;
    k++;
  }
  store<u32>(list + LIST_HEAD, head);
  store<u32>(list + LIST_FREE, free);
  return k;
}

/**
 * Return `n` grefs, in order, each pushed on the head. Stops at the first
 * gref not from this list (GREF_NOT_OURS) or already free
 * (GREF_ALREADY_FREE); the grefs before it stay freed.
 */
export function grefFree(list: usize, grefs: usize, n: u32): i32 {
  const first = load<u32>(list + LIST_FIRST);
  const capacity = load<u32>(list + LIST_CAPACITY);
  let head = load<u32>(list + LIST_HEAD);
  let free = load<u32>(list + LIST_FREE);
  let status = OK;
  for (let k: u32 = 0; k < n; k++) {
    const index = load<u32>(grefs + (<usize>k << 2)) - first;
    if (index >= capacity) { status = GREF_NOT_OURS; break; }
    const link = nextAt(list, index);
    if (load<u32>(link) != GREF_IN_USE) { status = GREF_ALREADY_FREE; break; }
    store<u32>(link, head);
    head = index;
    free++;
  }
  store<u32>(list + LIST_HEAD, head);
  store<u32>(list + LIST_FREE, free);
  return status;
}

// ---------------------------------------------------------------- packing

/**
 * Fill `nPages` wire segments at `out` from the u32 grefs at `grefs`, covering
 * `nSectors512` sectors from offset 0 of each page: every page full (0..7)
 * but the last, which ends at sector (nSectors512 − 1) % 8. Pads are zero.
 * Returns nPages, or BAD_SECTOR_RANGE (nothing written) unless
 * (nPages − 1)·8 < nSectors512 ≤ nPages·8 (nPages = 0 needs nSectors512 = 0).
 */
export function packSegments(grefs: usize, nPages: u32, nSectors512: u32, out: usize): i32 {
  if (<u64>nSectors512 > <u64>nPages * SECTORS_PER_PAGE) return BAD_SECTOR_RANGE;
  if (nPages != 0 && <u64>nSectors512 <= (<u64>nPages - 1) * SECTORS_PER_PAGE) return BAD_SECTOR_RANGE;
  let left = nSectors512;
  for (let i: u32 = 0; i < nPages; i++) {
    const n = left < SECTORS_PER_PAGE ? left : SECTORS_PER_PAGE;
    const seg = out + <usize>i * BLKIF_SEGMENT_BYTES;
    store<u32>(seg, load<u32>(grefs + (<usize>i << 2)));
    // first_sect 0, last_sect n − 1, pad 0
    store<u32>(seg, (n - 1) << 8, 4);
    left -= n;
  }
  return <i32>nPages;
}

/**
 * Copy `nSegs` wire segments (pads cleared) into indirect pages (u32 page
 * addresses at `pages`), 512 per page, zeroing the rest of the last page.
 * Returns the number of pages used, or BAD_INDIRECT_NR_SEGMENTS (nothing
 * written) for nSegs 0 or > 4096.
 */
export function packIndirectPages(segs: usize, nSegs: u32, pages: usize): i32 {
  if (nSegs == 0 || nSegs > BLKIF_MAX_INDIRECT_SEGMENTS) return BAD_INDIRECT_NR_SEGMENTS;
  const used = (nSegs + BLKIF_SEGMENTS_PER_INDIRECT_PAGE - 1) / BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
  for (let i: u32 = 0; i < nSegs; i++) {
    const page = <usize>load<u32>(pages + (<usize>(i / BLKIF_SEGMENTS_PER_INDIRECT_PAGE) << 2));
    const at = page + (<usize>(i % BLKIF_SEGMENTS_PER_INDIRECT_PAGE) << 3);
    store<u64>(at, load<u64>(segs + (<usize>i << 3)) & 0x0000_ffff_ffff_ffff);
  }
  const tail = nSegs % BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
  if (tail != 0) {
    const last = <usize>load<u32>(pages + (<usize>(used - 1) << 2));
    memory.fill(last + (<usize>tail << 3), 0, XEN_PAGE_SIZE - (tail << 3));
  }
  return <i32>used;
}
