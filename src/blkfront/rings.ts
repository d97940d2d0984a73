/**
 * The device's rings as one set: its queues (RingQueue, one per ring), the
 * page supply they lease data pages from (persistent or per request,
 * decided at connect), the requests waiting for a slot, and each queue's
 * counters (kept across reconnects, by queue index).
 *
 *   open(...)       ring pages granted, ports allocated (setup)
 *   usePages(p)     the page supply for what was negotiated (connect)
 *   pump()          waiting requests to rings with room, round robin
 *   teardown()      rings and supply gone; returns what was in flight
 *
 * Blkfront owns the driver state and says when to pump; this class only
 * moves requests.
 */
import type { Abi, RingEngine } from '../ring/engine.js';
import type { DomId, Platform } from '../platform/types.js';
import type { ProtocolError } from '../errors.js';
import { DeferredUngrant, PerRequestPages, PersistentPages, type PageLease, type PageSupply } from './page-supply.js';
import { RequestQueue } from './request-queue.js';
import type { RingRequest } from './request.js';
import { RingQueue } from './ring-queue.js';
import { QueueCounters } from './stats.js';

export interface RingSetEvents {
  completed(req: RingRequest, status: number): void;
  fatal(err: ProtocolError): void;
  /** Slots were freed: the device decides whether to pump. */
  drained(): void;
  /** The caller's own granted pages for a request, if any (io-buffers.ts). */
  borrow(req: RingRequest): PageLease | undefined;
}

export interface RingGeometry {
  queues: number;
  ringPages: number;
  abi: Abi;
  maxIndirectSegments: number;
  eventStormLimit?: number;
}

export class RingSet {
  queues: RingQueue[] = [];
  private pages: PageSupply | undefined;
  readonly waiting = new RequestQueue();
  /** Per queue index, across reconnects. */
  readonly counters: QueueCounters[] = [];
  private nextQueue = 0;

  constructor(
    private readonly platform: Platform,
    private readonly engine: RingEngine,
    private readonly deferred: DeferredUngrant,
    private readonly events: RingSetEvents,
  ) {}

  /** Grant the rings and allocate their ports (undone by teardown). */
  open(backend: DomId, g: RingGeometry): void {
    this.queues = [];
    const supply = this.lazySupply();
    for (let i = 0; i < g.queues; i++) {
      const counters = (this.counters[i] ??= new QueueCounters());
      this.queues.push(new RingQueue(this.engine, this.platform, this.platform.scratch, supply, {
        backend,
        ringPages: g.ringPages,
        abi: g.abi,
        maxIndirectSegments: g.maxIndirectSegments,
        eventStormLimit: g.eventStormLimit,
        counters,
        index: i,
        borrow: this.events.borrow,
      }, {
        completed: this.events.completed,
        fatal: this.events.fatal,
        drained: this.events.drained,
      }, this.deferred));
    }
  }

  /** The data-page supply for what was negotiated. */
  usePages(persistent: boolean, backend: DomId): void {
    this.pages = persistent
      ? new PersistentPages(this.platform.grants, backend, this.deferred)
      : new PerRequestPages(this.platform.grants, backend, this.deferred);
  }

  get persistent(): boolean | undefined {
    return this.pages?.persistent;
  }

  /** The queues see one supply, whichever connect() picked. */
  private lazySupply(): PageSupply {
    const self = this;
    return {
      get persistent() {
        return self.pages!.persistent;
      },
      acquire: (n, ro) => self.pages!.acquire(n, ro),
      release: (lease) => self.pages!.release(lease),
      get leased() {
        return self.pages!.leased;
      },
      teardown: () => 0,
    };
  }

  /**
   * Hand waiting requests to rings with room, round robin, while
   * `connected()` holds (a completion inside issue() may fail the device).
   */
  pump(connected: () => boolean): void {
    const n = this.queues.length;
    for (let tries = 0; tries < n && this.waiting.length > 0; tries++) {
      const q = this.queues[this.nextQueue]!;
      this.nextQueue = (this.nextQueue + 1) % n;
      const room = q.freeSlots;
      if (room === 0) continue;
      const batch = this.waiting.take(room);
      const consumed = q.issue(batch);
      if (consumed < batch.length) this.waiting.unshift(batch.slice(consumed));
      if (!connected()) return;
    }
  }

  get inFlight(): number {
    return this.queues.reduce((n, q) => n + q.inFlight, 0);
  }

  /** Requests waiting or in flight. */
  get pending(): number {
    return this.waiting.length + this.inFlight;
  }

  /** Rings and page supply gone; returns the requests that were in flight. */
  teardown(): RingRequest[] {
    const orphans: RingRequest[] = [];
    for (const q of this.queues) orphans.push(...q.teardown().orphans);
    this.queues = [];
    this.pages?.teardown();
    this.pages = undefined;
    return orphans;
  }
}
