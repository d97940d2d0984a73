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
  /**
   * The caller's own pages (an I/O buffer, io-buffers.ts): nothing to copy,
   * and nothing to give back to the supply.
   */
  borrowed?: boolean;
}

export interface PageSupply {
  readonly persistent: boolean;
  /** Pages for one request; granted read-only to the backend when `readOnly`. */
  acquire(n: number, readOnly: boolean): PageLease;
  release(lease: PageLease): void;
  /** Pages currently leased to requests (0: nothing will come back to free more). */
  readonly leased: number;
  /** Ungrant everything; grants the peer still maps are deferred. Returns how many were. */
  teardown(): number;
}

/** Grant batch size for the persistent pool. */
const PERSISTENT_BATCH = 32;

export class PersistentPages implements PageSupply {
  readonly persistent = true;
  private readonly groups: GrantedPages[] = [];
  private readonly freeGrefs: number[] = [];
  private readonly freeAddrs: number[] = [];
  leased = 0;

  constructor(
    private readonly grants: GrantTable,
    private readonly backend: DomId,
    private readonly deferred: DeferredUngrant,
  ) {}

  acquire(n: number): PageLease {
    while (this.freeGrefs.length < n) {
      const group = this.grants.grantPages(this.backend, Math.max(PERSISTENT_BATCH, n - this.freeGrefs.length));
      this.groups.push(group);
      this.freeGrefs.push(...group.grefs);
      this.freeAddrs.push(...group.addresses);
    }
    const at = this.freeGrefs.length - n;
    this.leased += n;
    return { grefs: this.freeGrefs.splice(at, n), addresses: this.freeAddrs.splice(at, n) };
  }

  release(lease: PageLease): void {
    this.leased -= lease.grefs.length;
    this.freeGrefs.push(...lease.grefs);
    this.freeAddrs.push(...lease.addresses);
  }

  teardown(): number {
    let leaked = 0;
    for (const g of this.groups.splice(0)) leaked += this.deferred.ungrant(g);
    this.freeGrefs.length = 0;
    this.freeAddrs.length = 0;
    return leaked;
  }
}

export class PerRequestPages implements PageSupply {
  readonly persistent = false;
  private readonly live = new Set<GrantedPages>();
  leased = 0;

  constructor(
    private readonly grants: GrantTable,
    private readonly backend: DomId,
    private readonly deferred: DeferredUngrant,
  ) {}

  acquire(n: number, readOnly: boolean): PageLease {
    const group = this.grants.grantPages(this.backend, n, readOnly);
    this.live.add(group);
    this.leased += n;
    return { grefs: group.grefs as number[], addresses: group.addresses as number[], group };
  }

  release(lease: PageLease): void {
    const g = lease.group;
    if (!g || !this.live.delete(g)) return;
    this.leased -= g.grefs.length;
    if (!tryUngrant(this.grants, g)) this.live.add(g); // still mapped: retry at teardown
  }

  teardown(): number {
    let leaked = 0;
    for (const g of [...this.live]) {
      this.live.delete(g);
      this.leased = 0;
      leaked += this.deferred.ungrant(g);
    }
    return leaked;
  }
}

/**
 * Grants a peer still mapped when we ended access: retried on a timer until
 * the peer lets go (or its domain dies), as Linux's
 * gnttab_end_foreign_access does with its deferred list. Nothing is leaked
 * for good; `pending` says how many grants are still waiting.
 */
export class DeferredUngrant {
  private readonly groups = new Set<GrantedPages>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly grants: GrantTable, private readonly intervalMs = 50) {}

  /** End access to `g` now if possible, else later. Returns the grants deferred. */
  ungrant(g: GrantedPages): number {
    if (tryUngrant(this.grants, g)) return 0;
    this.groups.add(g);
    this.timer ??= setInterval(() => this.retry(), this.intervalMs).unref();
    return g.grefs.length;
  }

  get pending(): number {
    let n = 0;
    for (const g of this.groups) n += g.grefs.length;
    return n;
  }

  private retry(): void {
    for (const g of [...this.groups]) if (tryUngrant(this.grants, g)) this.groups.delete(g);
    if (this.groups.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

function tryUngrant(grants: GrantTable, g: GrantedPages): boolean {
  try {
    grants.ungrantPages(g);
    return true;
  } catch {
    return false;
  }
}
