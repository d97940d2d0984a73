/**
 * GrantTable over gntalloc (grant our pages) and gntdev (map a peer's), with
 * pages placed over this process's pool (page-runs.ts).
 *
 * Differences from the simulation, all forced by what Linux lets userspace see:
 * - ungrantPages never answers `busy`: gntalloc cannot tell whether the peer
 *   still maps a page. The kernel keeps such a page alive and ends the grant
 *   when the peer unmaps it (gnttab_end_foreign_access's deferred list), so
 *   nothing leaks and our pool pages are free for reuse at once.
 * - mapForeign cannot say why the hypervisor refused (not granted, wrong
 *   domain, read-only): every refusal is GrantError `not-granted` carrying
 *   the errno; ENOMEM/ENOSPC are `exhausted`.
 */
import { InvalidArgumentError } from '../../errors.js';
import { PAGE_SIZE } from '../../memory/layout.js';
import type { DomId, ForeignMapping, GrantTable, GrantedPages } from '../types.js';
import { GrantError } from '../sim/errors.js';
import type { GrantDevices } from './grant-devices.js';
import { grantError } from './errors.js';
import { PageRuns, type PoolPages } from './page-runs.js';

interface Held {
  readonly index: number;
  readonly count: number;
}

const DOMID_MAX = 0x7fef; // DOMID_FIRST_RESERVED - 1

function checkDomid(domid: DomId): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > DOMID_MAX) {
    throw new InvalidArgumentError('domid', `must be a domain id in [0, ${DOMID_MAX}], got ${domid}`);
  }
}

function addressesOf(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i * PAGE_SIZE);
}

export class LinuxGrantTable implements GrantTable {
  private readonly runs: PageRuns;
  private readonly granted = new Map<number, Held>(); // first address -> gntalloc index
  private readonly mapped = new Map<number, Held>(); // first address -> gntdev index
  private grants = 0;
  private mappings = 0;

  constructor(readonly domid: DomId, pool: PoolPages, private readonly dev: GrantDevices) {
    this.runs = new PageRuns(pool);
  }

  private take(count: number): number {
    const at = this.runs.alloc(count);
    if (at < 0) throw new GrantError('exhausted', `no run of ${count} free pool pages (${this.runs.pagesInUse} in use)`);
    return at;
  }

  grantPages(domid: DomId, count: number, readOnly = false): GrantedPages {
    checkDomid(domid);
    if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError('count', `must be a positive integer, got ${count}`);
    const first = this.take(count);
    let out: { index: number; grefs: number[] };
    try {
      out = this.dev.allocAndMap(first, domid, count, !readOnly);
    } catch (err) {
      this.runs.free(first, count);
      throw grantError(`granting ${count} pages to domain ${domid}`, err, 'exhausted');
    }
    this.granted.set(first, { index: out.index, count });
    this.grants += count;
    return { domid, grefs: out.grefs, addresses: addressesOf(first, count), readOnly };
  }

  ungrantPages(pages: GrantedPages): void {
    const first = pages?.addresses?.[0];
    const held = first === undefined ? undefined : this.granted.get(first);
    if (held === undefined || held.count !== pages.addresses.length) {
      throw new GrantError('bad-gref', `pages at ${first} were not granted by this table (or were ungranted already)`);
    }
    this.granted.delete(first!);
    this.grants -= held.count;
    try {
      this.dev.unmapAndDealloc(first!, held.index, held.count);
    } catch (err) {
      throw grantError(`ungranting ${held.count} pages`, err, 'bad-gref');
    } finally {
      this.runs.free(first!, held.count);
    }
  }

  mapForeign(domid: DomId, grefs: readonly number[], readOnly: boolean): ForeignMapping {
    checkDomid(domid);
    if (!Array.isArray(grefs) || grefs.length === 0) throw new InvalidArgumentError('grefs', 'must be a non-empty array');
    for (const g of grefs) {
      if (!Number.isInteger(g) || g < 0 || g > 0xffffffff) throw new GrantError('bad-gref', `gref ${g} out of range`);
    }
    const first = this.take(grefs.length);
    let index: number;
    try {
      ({ index } = this.dev.mapForeign(first, domid, grefs, readOnly));
    } catch (err) {
      this.runs.free(first, grefs.length);
      throw grantError(`mapping ${grefs.length} grants of domain ${domid}`, err);
    }
    this.mapped.set(first, { index, count: grefs.length });
    this.mappings += grefs.length;
    return { domid, grefs: [...grefs], addresses: addressesOf(first, grefs.length), readOnly };
  }

  unmapForeign(mapping: ForeignMapping): void {
    const first = mapping?.addresses?.[0];
    const held = first === undefined ? undefined : this.mapped.get(first);
    if (held === undefined || held.count !== mapping.addresses.length) {
      throw new GrantError('bad-gref', `no mapping at ${first} in this table`);
    }
    this.mapped.delete(first!);
    this.mappings -= held.count;
    try {
      this.dev.unmapForeign(first!, held.index, held.count);
    } catch (err) {
      throw grantError(`unmapping ${held.count} grants`, err, 'bad-gref');
    } finally {
      this.runs.free(first!, held.count);
    }
  }

  activeGrants(): number {
    return this.grants;
  }

  activeMappings(): number {
    return this.mappings;
  }

  /** Unmap and release everything still held, then close the devices. */
  dispose(): void {
    for (const [first, held] of [...this.mapped]) {
      try { this.dev.unmapForeign(first, held.index, held.count); } catch { /* closing gntdev unmaps it */ }
    }
    for (const [first, held] of [...this.granted]) {
      try { this.dev.unmapAndDealloc(first, held.index, held.count); } catch { /* closing gntalloc frees it */ }
    }
    this.mapped.clear();
    this.granted.clear();
    this.grants = 0;
    this.mappings = 0;
    this.dev.close();
  }
}
