/**
 * The backend's view of a request's data pages. With persistent grants
 * (negotiated by both ends) each gref is mapped once and kept until the ring
 * is torn down, as Linux's blkback does, up to a cap; otherwise a request's
 * grefs are mapped together and unmapped before its response is sent.
 */
import type { DomId, ForeignMapping, GrantTable } from '../platform/types.js';

/** Linux's blkback keeps at most this many persistent grants per ring by default. */
const MAX_PERSISTENT = 1056;

export interface PageMap {
  addresses: number[];
  /** Set when the pages were mapped just for this request. */
  transient?: ForeignMapping;
}

export class GrantCache {
  private readonly persistentMaps = new Map<number, ForeignMapping>();

  constructor(
    private readonly grants: GrantTable,
    private readonly frontend: DomId,
    private readonly persistent: boolean,
  ) {}

  /** Map `grefs` (read-only when the backend only reads them). Undefined if the grant is refused. */
  map(grefs: readonly number[], readOnly: boolean): PageMap | undefined {
    try {
      if (!this.persistent || this.persistentMaps.size + grefs.length > MAX_PERSISTENT) {
        const m = this.grants.mapForeign(this.frontend, grefs, readOnly);
        return { addresses: m.addresses as number[], transient: m };
      }
      // Persistent grants are mapped writable once: the same page serves reads and writes.
      const addresses = grefs.map((g) => {
        let m = this.persistentMaps.get(g);
        if (!m) {
          m = this.grants.mapForeign(this.frontend, [g], false);
          this.persistentMaps.set(g, m);
        }
        return m.addresses[0]!;
      });
      return { addresses };
    } catch {
      return undefined;
    }
  }

  release(map: PageMap): void {
    if (map.transient) this.grants.unmapForeign(map.transient);
  }

  /** Unmap every persistent grant (ring teardown). */
  clear(): void {
    for (const m of this.persistentMaps.values()) this.grants.unmapForeign(m);
    this.persistentMaps.clear();
  }
}
