/**
 * Where a request's data pages come from.
 *
 * - Persistent grants (feature-persistent negotiated): pages are granted
 *   once, in batches, and reused across requests; the backend may keep them
 *   mapped. They are ungranted only at teardown.
 * - Otherwise: each request's pages are granted just before it is pushed and
 *   ungranted as soon as its response is reaped.
 *
 * Either way a request holds a `PageLease`: its grefs and page addresses.
 */
import type { DomId, GrantTable, GrantedPages } from '../platform/types.js';

export interface PageLease {
  grefs: number[];
  addresses: number[];
  /** Per-request grant behind this lease (undefined when persistent). */
  group?: GrantedPages;
}

export interface PageSupply {
  readonly persistent: boolean;
  /** Pages for one request; granted read-only to the backend when `readOnly`. */
  acquire(n: number, readOnly: boolean): PageLease;
  release(lease: PageLease): void;
  /** Ungrant everything. Returns the number of grants the peer still held (leaked to it). */
  teardown(): number;
}

/** Grant batch size for the persistent pool. */
const PERSISTENT_BATCH = 32;

export class PersistentPages implements PageSupply {
  readonly persistent = true;
  private readonly groups: GrantedPages[] = [];
  private readonly freeGrefs: number[] = [];
  private readonly freeAddrs: number[] = [];

  constructor(private readonly grants: GrantTable, private readonly backend: DomId) {}

  acquire(n: number): PageLease {
    while (this.freeGrefs.length < n) {
      const group = this.grants.grantPages(this.backend, Math.max(PERSISTENT_BATCH, n - this.freeGrefs.length));
      this.groups.push(group);
      this.freeGrefs.push(...group.grefs);
      this.freeAddrs.push(...group.addresses);
    }
    const at = this.freeGrefs.length - n;
    const lease = { grefs: this.freeGrefs.splice(at, n), addresses: this.freeAddrs.splice(at, n) };
    return lease;
  }

  release(lease: PageLease): void {
    this.freeGrefs.push(...lease.grefs);
    this.freeAddrs.push(...lease.addresses);
  }

  teardown(): number {
    let leaked = 0;
    for (const g of this.groups.splice(0)) leaked += ungrantOrCount(this.grants, g);
    this.freeGrefs.length = 0;
    this.freeAddrs.length = 0;
    return leaked;
  }
}

export class PerRequestPages implements PageSupply {
  readonly persistent = false;
  private readonly live = new Set<GrantedPages>();

  constructor(private readonly grants: GrantTable, private readonly backend: DomId) {}

  acquire(n: number, readOnly: boolean): PageLease {
    const group = this.grants.grantPages(this.backend, n, readOnly);
    this.live.add(group);
    return { grefs: group.grefs as number[], addresses: group.addresses as number[], group };
  }

  release(lease: PageLease): void {
    const g = lease.group;
    if (!g || !this.live.delete(g)) return;
    if (ungrantOrCount(this.grants, g) > 0) this.live.add(g); // still mapped: retry at teardown
  }

  teardown(): number {
    let leaked = 0;
    for (const g of [...this.live]) {
      this.live.delete(g);
      leaked += ungrantOrCount(this.grants, g);
    }
    return leaked;
  }
}

/**
 * End access to a group. A backend that still maps a page makes ending
 * access fail; the page is then left to the peer (as Linux does with
 * gnttab_end_foreign_access's deferred free) and counted.
 */
function ungrantOrCount(grants: GrantTable, g: GrantedPages): number {
  try {
    grants.ungrantPages(g);
    return 0;
  } catch {
    return g.grefs.length;
  }
}
