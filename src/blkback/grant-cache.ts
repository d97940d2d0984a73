/**
 * The backend's view of a request's data pages. With persistent grants
 * (negotiated by both ends) each gref is mapped once and kept until the ring
 * is torn down, as Linux's blkback does, up to a cap; otherwise a request's
 * grefs are mapped together and unmapped before its response is sent.
 *
 * The cap matters for throughput: with Linux's default (1056) and 1 MiB
 * requests at queue depth 32 (8192 pages in flight) most requests fell back
 * to a 256-gref map and unmap each, about 120 µs of the backend thread per
 * request in the demo's profile. The ring server sizes the cap to what a
 * full ring can carry unless told otherwise (features.maxPersistentGrants),
 * and only grefs not yet mapped count against it.
 */
import type { DomId, ForeignMapping, GrantTable } from '../platform/types.js';

/** Linux's blkback default for max_persistent_grants. */
export const LINUX_MAX_PERSISTENT_GRANTS = 1056;

export interface PageMap {
  addresses: number[];
  /** Set when the pages were mapped just for this request. */
  transient?: ForeignMapping;
}

export class GrantCache {
  /** gref -> address of its persistent mapping. */
  private readonly persistentAddrs = new Map<number, number>();
  /** The mappings behind persistentAddrs (one per batch of grefs first seen together). */
  private readonly persistentMaps: ForeignMapping[] = [];

  constructor(
    private readonly grants: GrantTable,
    private readonly frontend: DomId,
    private readonly persistent: boolean,
    private readonly maxPersistent = LINUX_MAX_PERSISTENT_GRANTS,
  ) {}

  /** Map `grefs` (read-only when the backend only reads them). Undefined if the grant is refused. */
  map(grefs: readonly number[], readOnly: boolean): PageMap | undefined {
    try {
      const misses = this.persistent ? this.misses(grefs) : [];
      // Only grefs not mapped yet count against the cap: a full cache still
      // serves requests whose pages it holds (it used to send those, every
      // request once full, down the map/unmap path).
      if (!this.persistent || this.persistentAddrs.size + misses.length > this.maxPersistent) {
        const m = this.grants.mapForeign(this.frontend, grefs, readOnly);
        return { addresses: m.addresses as number[], transient: m };
      }
      // Persistent grants are mapped writable once: the same page serves reads and writes.
      // A request's new grefs are mapped in one call (one per gref cost ~1 ms per cold
      // 256-page request in the demo's first write pass).
      if (misses.length > 0) {
        const m = this.grants.mapForeign(this.frontend, misses, false);
        this.persistentMaps.push(m);
        for (let i = 0; i < misses.length; i++) this.persistentAddrs.set(misses[i]!, m.addresses[i]!);
      }
      return { addresses: grefs.map((g) => this.persistentAddrs.get(g)!) };
    } catch {
      return undefined;
    }
  }

  /** The distinct grefs of `grefs` not mapped persistently yet. */
  private misses(grefs: readonly number[]): number[] {
    const out: number[] = [];
    for (const g of grefs) if (!this.persistentAddrs.has(g) && !out.includes(g)) out.push(g);
    return out;
  }

  release(map: PageMap): void {
    if (map.transient) this.grants.unmapForeign(map.transient);
  }

  /** Unmap every persistent grant (ring teardown). */
  clear(): void {
    for (const m of this.persistentMaps.splice(0)) this.grants.unmapForeign(m);
    this.persistentAddrs.clear();
  }
}
