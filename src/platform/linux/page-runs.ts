/**
 * This process's allocator of pool pages: which 4096-byte pages of the
 * shared memory's pool are free to have gntalloc or gntdev pages mapped over
 * them. Runs are contiguous (a multi-page ring is one block of memory);
 * first fit from a rotating hint, one byte per page.
 *
 * ```
 *  pool:  page 0   page 1   page 2   ...   page poolPages-1
 *  used:  [ 1 ]    [ 1 ]    [ 0 ]    ...   [ 0 ]        1 = mapped over
 * ```
 */
import { PAGE_SIZE } from '../../memory/layout.js';

export interface PoolPages {
  readonly poolBase: number;
  readonly poolPages: number;
}

export class PageRuns {
  private readonly used: Uint8Array;
  private hint = 0;
  private inUse = 0;

  constructor(private readonly pool: PoolPages) {
    this.used = new Uint8Array(pool.poolPages);
  }

  /** Byte address of the first page of a free run of `count` pages, or -1 if none is that long. */
  alloc(count: number): number {
    const n = this.used.length;
    if (!Number.isInteger(count) || count < 1 || count > n) return -1;
    for (const [from, to] of [[this.hint, n], [0, Math.min(n, this.hint + count - 1)]] as const) {
      let run = 0;
      for (let i = from; i < to; i++) {
        run = this.used[i] === 0 ? run + 1 : 0;
        if (run < count) continue;
        const first = i - count + 1;
        this.used.fill(1, first, i + 1);
        this.inUse += count;
        this.hint = (i + 1) % n;
        return this.pool.poolBase + first * PAGE_SIZE;
      }
    }
    return -1;
  }

  /** Give back `count` pages at `address` (from alloc). */
  free(address: number, count: number): void {
    const first = (address - this.pool.poolBase) / PAGE_SIZE;
    if (!Number.isInteger(first) || first < 0 || first + count > this.used.length) {
      throw new RangeError(`free(${address}, ${count}) is not a run of this pool`);
    }
    for (let i = first; i < first + count; i++) {
      if (this.used[i] === 0) throw new RangeError(`free(${address}, ${count}): page ${i} is not in use`);
    }
    this.used.fill(0, first, first + count);
    this.inUse -= count;
  }

  /** Pages currently allocated. */
  get pagesInUse(): number {
    return this.inUse;
  }
}
