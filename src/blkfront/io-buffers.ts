/**
 * Zero-copy I/O buffers: caller memory that is itself granted to the backend.
 *
 * `allocate(bytes)` grants whole pages to the backend once (read-write, for
 * the buffer's life) and hands the caller a Uint8Array view of them in the
 * shared page pool. A ring request whose bytes lie, page by page, in such
 * buffers carries the buffers' own grefs (`borrow`): the backend reads or
 * writes the caller's memory directly, and blkfront copies nothing, the way
 * Linux blkfront grants the bio's own pages when persistent grants are off.
 * Anything else (plain buffers, views at an odd offset, buffers granted to a
 * backend domain that is gone) takes the copy path through the page supply.
 *
 * ```
 *  caller stream   | buf A (pool, 3 pages)      | buf B (plain)  |
 *  pages of A      [ gref 9 ][ gref 10 ][ gref 11]
 *  request 1 (pages 0..2)  -> segments name grefs 9, 10, 11: no copy
 *  request 2 (page 3..)    -> leased persistent pages + copy
 * ```
 *
 * Lifetime: `release(buf)` or the device's disconnect ends a buffer; its
 * grants end at once, or (the backend still maps them, as it keeps
 * persistent grants until the ring goes) when the backend lets go
 * (DeferredUngrant). The view object handed out is then refused by every
 * device (`invalid-argument`): its pages may already hold someone else's
 * data. (A subarray of it cannot be told from fresh memory: like any freed
 * memory, do not keep one past release.)
 */
import { XEN_PAGE_SIZE } from '../blkif/constants.js';
import { InvalidArgumentError } from '../errors.js';
import type { DomId, GrantTable, GrantedPages } from '../platform/types.js';
import type { DeferredUngrant, PageLease } from './page-supply.js';
import type { ByteStream } from './split.js';

interface BufferRecord {
  readonly group: GrantedPages;
  /** First byte of the buffer in the shared memory. */
  readonly address: number;
  /**
   * Plain copies of the group's (frozen) grefs and addresses: slicing a
   * frozen array cost ~20 µs per 256 entries here, 35x a plain one, and was
   * 17 % of the front's thread on 1 MiB reads.
   */
  readonly grefs: number[];
  readonly addresses: number[];
  live: boolean;
}

/**
 * Every view ever handed out, in any device, to its record: a released one
 * is refused by whichever device it is given to.
 */
const handedOut = new WeakMap<Uint8Array, BufferRecord>();

/** Largest buffer one call may ask for (the grant table caps it sooner). */
export const MAX_IO_BUFFER_BYTES = 1 << 30;

export class IoBufferPool {
  /** Page address -> the live buffer holding that page. */
  private readonly pages = new Map<number, BufferRecord>();
  private readonly records = new Set<BufferRecord>();

  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly grants: GrantTable,
    private readonly deferred: DeferredUngrant,
  ) {}

  /** Live buffers' pages (tests, stats). */
  get pagesInUse(): number {
    return this.pages.size;
  }

  /** A view of `bytes` bytes over fresh pages granted (read-write) to `backend`. */
  allocate(bytes: number, backend: DomId): Uint8Array {
    if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_IO_BUFFER_BYTES) {
      throw new InvalidArgumentError('bytes', `must be an integer in 1..${MAX_IO_BUFFER_BYTES}, got ${String(bytes)}`);
    }
    const n = Math.ceil(bytes / XEN_PAGE_SIZE);
    // One call: the pages come as one run of memory (a view must be contiguous).
    const group = this.grants.grantPages(backend, n, false);
    const address = group.addresses[0]!;
    if (!group.addresses.every((a, i) => a === address + i * XEN_PAGE_SIZE)) {
      this.deferred.ungrant(group);
      throw new InvalidArgumentError('bytes', `the platform gave ${n} pages that are not contiguous in memory`);
    }
    const rec: BufferRecord = { group, address, grefs: [...group.grefs], addresses: [...group.addresses], live: true };
    this.records.add(rec);
    for (let i = 0; i < n; i++) this.pages.set(address + i * XEN_PAGE_SIZE, rec);
    const view = new Uint8Array(this.memory.buffer, address, bytes);
    handedOut.set(view, rec);
    return view;
  }

  /** End a buffer of this pool; anything else is an `invalid-argument`. */
  release(view: Uint8Array): void {
    const rec = handedOut.get(view);
    if (!rec || !this.records.has(rec)) {
      throw new InvalidArgumentError('buffer', rec ? 'was already released (or belongs to another device)' : 'is not an I/O buffer of this device (use the view allocateBuffer returned)');
    }
    this.end(rec);
  }

  private end(rec: BufferRecord): void {
    rec.live = false;
    this.records.delete(rec);
    for (const a of rec.group.addresses) this.pages.delete(a);
    // Pages still mapped by the backend (persistent) are ended when it lets go.
    this.deferred.ungrant(rec.group);
  }

  /** Disconnect: end every buffer. */
  teardown(): void {
    for (const rec of [...this.records]) this.end(rec);
  }

  /** Rejects buffer objects that were released (here or in any device): their memory is not the caller's any more. */
  static checkNotReleased(buffers: readonly Uint8Array[]): void {
    for (let i = 0; i < buffers.length; i++) {
      const rec = handedOut.get(buffers[i]!);
      if (rec && !rec.live) {
        throw new InvalidArgumentError(`buffers[${i}]`, 'is an I/O buffer that was released (or whose device disconnected): allocate a new one');
      }
    }
  }

  /**
   * Stream offsets where a call's bytes pass between I/O-buffer pages and
   * other memory (or where an I/O buffer ends inside a page): ring requests
   * are cut there, so each one either borrows all its pages or copies all
   * of them, and a call mixing both kinds copies only the plain bytes.
   */
  cuts(buffers: readonly Uint8Array[]): number[] {
    const out: number[] = [];
    if (this.pages.size === 0) return out;
    const shared = this.memory.buffer;
    let at = 0;
    let prevPool = false;
    let prevPartial = false;
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i]!;
      const pool = b.buffer === shared && b.byteOffset % XEN_PAGE_SIZE === 0 && this.pages.has(b.byteOffset);
      if (i > 0 && (pool !== prevPool || (prevPool && prevPartial))) out.push(at);
      prevPool = pool;
      prevPartial = b.byteLength % XEN_PAGE_SIZE !== 0;
      at += b.byteLength;
    }
    return out;
  }

  /**
   * The grefs of stream bytes [off, off + len) when every page of that range
   * lies at the start of a page of a live buffer granted to `backend`
   * (the last page may be partial); undefined otherwise (copy path).
   */
  borrow(stream: ByteStream, off: number, len: number, backend: DomId): PageLease | undefined {
    if (this.pages.size === 0) return undefined;
    const shared = this.memory.buffer;
    let grefs: number[] | undefined;
    let addresses: number[] | undefined;
    // One look-up per run of the range that lies in one caller buffer, not per page.
    for (let at = 0; at < len; ) {
      const run = stream.runAt(off + at, len - at);
      const a = run.buffer.buffer === shared ? run.buffer.byteOffset + run.inBuffer : -1;
      if (a < 0 || a % XEN_PAGE_SIZE !== 0) return undefined;
      // A run ending inside a page is only allowed at the very end of the range.
      if (at + run.bytes < len && run.bytes % XEN_PAGE_SIZE !== 0) return undefined;
      const rec = this.pages.get(a);
      if (!rec || rec.group.domid !== backend) return undefined;
      const first = (a - rec.address) / XEN_PAGE_SIZE;
      const n = Math.ceil(run.bytes / XEN_PAGE_SIZE);
      if (first + n > rec.grefs.length) return undefined; // the view reaches past its buffer's pages
      const g = rec.grefs.slice(first, first + n);
      const ad = rec.addresses.slice(first, first + n);
      grefs = grefs ? grefs.concat(g) : g;
      addresses = addresses ? addresses.concat(ad) : ad;
      at += run.bytes;
    }
    return grefs && addresses ? { grefs, addresses, borrowed: true } : undefined;
  }
}
