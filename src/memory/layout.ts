/**
 * The shared memory every domain of the simulation (and the Wasm module)
 * works in. One `WebAssembly.Memory`, shared, created once with
 * initial == maximum so views never go stale.
 *
 * ```
 *  0                 65536              scratchBase+scratchBytes = poolBase
 *  +-----------------+------------------+--------------------------------------+
 *  | AS static data  | scratch (arenas) | page pool: 4096-byte pages           |
 *  | (memoryBase 1K) | ring state,      | ring pages, data pages, indirect     |
 *  |                 | descriptors,     | pages, grant tables, event-channel   |
 *  |                 | shadows, lists   | words — everything that crosses a    |
 *  |                 |                  | domain boundary                      |
 *  +-----------------+------------------+--------------------------------------+
 * ```
 * Page `i` of the pool is at byte `poolBase + i * 4096`; a grant entry's
 * `frame` is that index. poolBase is 64 KiB aligned, so a native addon can
 * map files over any pool page.
 */
import { InvalidArgumentError } from '../errors.js';

export const PAGE_SIZE = 4096;
export const WASM_PAGE_SIZE = 65536;
/** Where scratch starts: above the AssemblyScript module's static data. */
export const SCRATCH_BASE = WASM_PAGE_SIZE;

export interface MemoryPlan {
  /** Bytes of private scratch (rounded up to 64 KiB). Default 1 MiB. */
  scratchBytes?: number;
  /** 4096-byte pages in the shared pool. Default 4096 (16 MiB). */
  poolPages?: number;
}

export interface SharedLayout {
  readonly memory: WebAssembly.Memory;
  readonly scratchBase: number;
  readonly scratchBytes: number;
  readonly poolBase: number;
  readonly poolPages: number;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Create the shared memory for a plan. */
export function createSharedLayout(plan: MemoryPlan = {}): SharedLayout {
  const scratchBytes = roundUp(plan.scratchBytes ?? 1 << 20, WASM_PAGE_SIZE);
  const poolPages = plan.poolPages ?? 4096;
  if (!Number.isInteger(poolPages) || poolPages <= 0) {
    throw new InvalidArgumentError('poolPages', `must be a positive integer, got ${poolPages}`);
  }
  const poolBase = SCRATCH_BASE + scratchBytes;
  const total = roundUp(poolBase + poolPages * PAGE_SIZE, WASM_PAGE_SIZE);
  const pages = total / WASM_PAGE_SIZE;
  if (pages > 65536) throw new InvalidArgumentError('poolPages', 'memory plan exceeds 4 GiB');
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  return { memory, scratchBase: SCRATCH_BASE, scratchBytes, poolBase, poolPages };
}

/** Adopt a memory created elsewhere (a worker receiving the parent's layout). */
export function layoutOf(memory: WebAssembly.Memory, desc: Omit<SharedLayout, 'memory'>): SharedLayout {
  return { memory, ...desc };
}

/** Byte address of pool page `frame`. */
export function frameAddress(layout: SharedLayout, frame: number): number {
  return layout.poolBase + frame * PAGE_SIZE;
}

/**
 * A small first-fit allocator over a slice of scratch, for private tables
 * (ring state, descriptors, shadows), never shared pages. Allocation happens
 * at connect time, not per request; `free` returns a block so reconnects do
 * not exhaust the arena.
 */
export class Arena {
  /** Free blocks, sorted by address, coalesced. */
  private readonly holes: { at: number; size: number }[];
  private readonly sizes = new Map<number, { start: number; size: number }>();
  /** End of the highest block ever handed out: bytes past it were never used (a reset zeroes only below it). */
  highWater: number;

  constructor(readonly base: number, readonly size: number) {
    this.highWater = base;
    this.holes = [{ at: base, size }];
  }

  /** Reserve `bytes`, aligned to `align` (power of two). Throws when the arena is exhausted. */
  alloc(bytes: number, align = 8): number {
    const need = Math.max(bytes, 1);
    for (let i = 0; i < this.holes.length; i++) {
      const h = this.holes[i]!;
      const at = (h.at + align - 1) & ~(align - 1);
      const end = at + need;
      if (end > h.at + h.size) continue;
      const tail = h.at + h.size - end;
      this.holes.splice(i, 1);
      if (tail > 0) this.holes.splice(i, 0, { at: end, size: tail });
      if (at > h.at) this.holes.splice(i, 0, { at: h.at, size: at - h.at });
      this.sizes.set(at, { start: at, size: need });
      if (end > this.highWater) this.highWater = end;
      return at;
    }
    throw new InvalidArgumentError('arena', `exhausted: need ${bytes} bytes, ${this.free} free in total`);
  }

  /** Give back a block from `alloc`. Unknown addresses are ignored. */
  release(at: number): void {
    const blk = this.sizes.get(at);
    if (!blk) return;
    this.sizes.delete(at);
    let i = 0;
    while (i < this.holes.length && this.holes[i]!.at < blk.start) i++;
    this.holes.splice(i, 0, { at: blk.start, size: blk.size });
    // Coalesce with the neighbours.
    if (i + 1 < this.holes.length && this.holes[i]!.at + this.holes[i]!.size === this.holes[i + 1]!.at) {
      this.holes[i]!.size += this.holes[i + 1]!.size;
      this.holes.splice(i + 1, 1);
    }
    if (i > 0 && this.holes[i - 1]!.at + this.holes[i - 1]!.size === this.holes[i]!.at) {
      this.holes[i - 1]!.size += this.holes[i]!.size;
      this.holes.splice(i, 1);
    }
  }

  /** Bytes still free (possibly fragmented). */
  get free(): number {
    return this.holes.reduce((n, h) => n + h.size, 0);
  }
}

/**
 * Blocks taken from an arena for one owner (a ring), given back together:
 * what a connection allocates at setup it releases at teardown.
 */
export class ArenaScope {
  private readonly blocks: number[] = [];

  constructor(private readonly arena: Arena) {}

  alloc(bytes: number, align = 8): number {
    const at = this.arena.alloc(bytes, align);
    this.blocks.push(at);
    return at;
  }

  /** Release every block this scope allocated. */
  releaseAll(): void {
    for (const at of this.blocks.splice(0)) this.arena.release(at);
  }
}
