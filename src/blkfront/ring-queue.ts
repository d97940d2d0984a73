/**
 * One blkif ring (one queue): its granted ring pages, event channel, engine
 * tables, and the requests in flight on it. The async layer above
 * (blkfront.ts) owns waiting callers; this class only moves batches:
 *
 *   issue(batch) → the caller's own granted pages (I/O buffers), else grant
 *                  pages and copy write data; write descriptors, one
 *                  blkifWriteRequests, one pushRequestsAndCheckNotify
 *   event        → blkifReapResponses in batches until the final check says
 *                  the ring is empty; copy read data out (unless the pages
 *                  were the caller's); settle
 *
 * A violation reported by the engine fails the whole device (onFatal).
 */
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_RSP_OKAY,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_REQUEST_BYTES_X86_32,
  BLKIF_REQUEST_BYTES_X86_64,
} from '../blkif/constants.js';
import { IoError, ProtocolError, XenpvError } from '../errors.js';
import { ArenaScope, type Arena } from '../memory/layout.js';
import type { DomId, GrantedPages, Platform, Port } from '../platform/types.js';
import {
  Abi,
  COMPLETION_BYTES,
  REQUEST_DESC_BYTES,
  RING_STATE_BYTES,
  type RingEngine,
} from '../ring/engine.js';
import { statusToError } from '../ring/status.js';
import type { DeferredUngrant, PageLease, PageSupply } from './page-supply.js';
import type { RingRequest } from './request.js';
import type { QueueCounters } from './stats.js';
import { debug } from '../util/debug.js';

const log = debug('xenpv:blkfront');

export interface QueueOptions {
  backend: DomId;
  ringPages: number;
  abi: Abi;
  /** 0 = direct requests only. */
  maxIndirectSegments: number;
  /** Spurious events tolerated before failing the device. Default EVENT_STORM_LIMIT. */
  eventStormLimit?: number;
  /** Where this queue counts (kept by the device across reconnects). */
  counters: QueueCounters;
  /** Queue index, for the debug log. */
  index: number;
  /**
   * The caller's own granted pages for a read or write, when its bytes lie
   * in I/O buffers (io-buffers.ts); undefined: lease and copy.
   */
  borrow?: (req: RingRequest) => PageLease | undefined;
}

export interface QueueEvents {
  /** A ring request finished with a wire status (copy-out already done for reads). */
  completed(req: RingRequest, status: number): void;
  /** The backend broke the protocol on this ring. */
  fatal(err: ProtocolError): void;
  /** Slots were freed: waiting requests may be issued. */
  drained(): void;
}

/** Spurious events (no response, no progress) tolerated before failing the device. */
const EVENT_STORM_LIMIT = 100_000;

export class RingQueue {
  readonly nrEnts: number;
  private readonly state: number;
  private readonly shadow: number;
  private readonly descs: number;
  private readonly comps: number;
  private readonly segs: number; // per id: 11 wire segments
  private readonly indirectGrefs: number; // per id: 8 u32
  private readonly stagingGrefs: number; // u32 × max pages of one request
  private readonly stagingSegs: number; // wire segments × max pages of one request
  private readonly stagingAddrs: number; // u32 × 8 indirect page addresses
  private readonly inflight: (RingRequest | undefined)[];
  private readonly freeIds: number[];
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly ring: GrantedPages;
  readonly port: Port;
  private spurious = 0;
  /** This ring's engine tables in the domain's scratch. */
  private readonly scratch: ArenaScope;
  private dead = false;

  constructor(
    private readonly engine: RingEngine,
    private readonly platform: Platform,
    arena: Arena,
    private readonly pages: PageSupply,
    private readonly opts: QueueOptions,
    private readonly events: QueueEvents,
    private readonly deferred: DeferredUngrant,
  ) {
    const slot = opts.abi === Abi.X86_32 ? BLKIF_REQUEST_BYTES_X86_32 : BLKIF_REQUEST_BYTES_X86_64;
    this.nrEnts = engine.ringSize(opts.ringPages, slot);
    const maxPages = Math.max(BLKIF_MAX_SEGMENTS_PER_REQUEST, opts.maxIndirectSegments);
    const scope = new ArenaScope(arena);
    this.scratch = scope;
    this.inflight = new Array(this.nrEnts).fill(undefined);
    this.freeIds = Array.from({ length: this.nrEnts }, (_, i) => this.nrEnts - 1 - i);
    this.dv = new DataView(platform.memory.buffer);
    this.u8 = new Uint8Array(platform.memory.buffer);
    let ring: GrantedPages | undefined;
    try {
      this.state = scope.alloc(RING_STATE_BYTES, 64);
      this.shadow = scope.alloc(this.nrEnts, 8);
      this.descs = scope.alloc(this.nrEnts * REQUEST_DESC_BYTES, 8);
      this.comps = scope.alloc(this.nrEnts * COMPLETION_BYTES, 8);
      this.segs = scope.alloc(this.nrEnts * BLKIF_MAX_SEGMENTS_PER_REQUEST * 8, 8);
      this.indirectGrefs = scope.alloc(this.nrEnts * 8 * 4, 8);
      this.stagingGrefs = scope.alloc(maxPages * 4, 8);
      this.stagingSegs = scope.alloc(maxPages * 8, 8);
      this.stagingAddrs = scope.alloc(8 * 4, 8);
      this.u8.fill(0, this.shadow, this.shadow + this.nrEnts);
      ring = platform.grants.grantPages(opts.backend, opts.ringPages);
      const n = engine.frontRingInit(this.state, ring.addresses[0]!, opts.ringPages, slot);
      if (n < 0) throw statusToError(n, 'ringPages');
      this.port = platform.evtchn.allocUnbound(opts.backend);
    } catch (err) {
      // Undo what was acquired: nothing of a ring that never existed stays behind.
      if (ring) deferred.ungrant(ring);
      scope.releaseAll();
      throw err;
    }
    this.ring = ring;
    platform.evtchn.setHandler(this.port, () => this.onEvent());
  }

  get ringRefs(): readonly number[] {
    return this.ring.grefs;
  }

  /** Requests that can be issued right now. */
  get freeSlots(): number {
    return this.dead ? 0 : Math.min(this.freeIds.length, this.engine.freeRequests(this.state));
  }

  get inFlight(): number {
    return this.nrEnts - this.freeIds.length;
  }

  /** Pages one request may carry. */
  get maxPagesPerRequest(): number {
    return this.opts.maxIndirectSegments > 0 ? this.opts.maxIndirectSegments : BLKIF_MAX_SEGMENTS_PER_REQUEST;
  }

  /**
   * Issue requests from the front of `batch` (at most freeSlots). Grants and
   * copies each request's data, writes all descriptors, pushes once,
   * notifies only when the ring says so. Stops early when grant pages run
   * out (backpressure: they come back as responses are reaped). Returns how
   * many requests were consumed: issued, or failed because they can never
   * fit.
   */
  issue(batch: readonly RingRequest[]): number {
    const room = Math.min(batch.length, this.freeSlots);
    let n = 0;
    const ids: number[] = [];
    for (; n < room; n++) {
      const req = batch[n]!;
      // Another part of its operation already failed: nothing waits for this one.
      if (req.io.isSettled) continue;
      if (!this.acquirePages(req)) {
        if (this.pages.leased === 0) {
          // Nothing will come back to free pages: this request can never be issued.
          req.io.fail(new IoError(`no grant pages for a ${req.nPages}-page request`));
          n++;
        }
        break;
      }
      const id = this.freeIds.pop()!;
      this.inflight[id] = req;
      try {
        this.describe(req, id, this.descs + ids.length * REQUEST_DESC_BYTES);
      } catch (err) {
        // Its caller's buffer went away: give the slot back and fail that operation only.
        this.inflight[id] = undefined;
        this.freeIds.push(id);
        this.releasePages(req);
        req.io.fail(asXenpvError(err));
        continue;
      }
      ids.push(id);
    }
    if (ids.length === 0) return n;
    const done = this.engine.blkifWriteRequests(this.state, this.shadow, this.descs, ids.length, this.opts.abi);
    const now = performance.now();
    const c = this.opts.counters;
    for (let i = 0; i < ids.length; i++) {
      const status = i < done ? this.dv.getInt16(this.descs + i * REQUEST_DESC_BYTES + 6, true) : -1;
      if (status !== 0) this.finish(ids[i]!, status, statusToError(status));
      else {
        this.inflight[ids[i]!]!.issuedAt = now;
        c.requests++;
      }
    }
    // The engine publishes req_prod after the slots (ordering inside), and says whether to kick.
    const kick = this.engine.pushRequestsAndCheckNotify(this.state);
    if (kick) {
      c.notificationsSent++;
      this.platform.evtchn.notify(this.port);
    }
    if (log.enabled) log(`queue ${this.opts.index}: pushed ${done} request(s)${kick ? `, notified port ${this.port}` : ', no notify needed'}`);
    return n;
  }

  /** Data (and indirect) pages for `req`; false when the grant table or pool is exhausted. */
  private acquirePages(req: RingRequest): boolean {
    if (req.nPages === 0) return true;
    try {
      // Zero copy when the caller's bytes are already granted pages; else
      // leased pages (the backend only reads those of a write: read-only).
      req.lease = this.opts.borrow?.(req) ?? this.pages.acquire(req.nPages, req.op === BLKIF_OP_WRITE);
      if (req.nPages > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        req.indirect = this.pages.acquire(Math.ceil(req.nPages / BLKIF_SEGMENTS_PER_INDIRECT_PAGE), true);
      }
      return true;
    } catch (err) {
      if (!(err instanceof XenpvError)) throw err;
      if (req.lease && !req.lease.borrowed) this.pages.release(req.lease);
      req.lease = undefined;
      return false;
    }
  }

  /** Write one descriptor (see src/ring/engine.ts) over the pages acquirePages got. */
  private describe(req: RingRequest, id: number, d: number): void {
    const dv = this.dv;
    this.u8.fill(0, d, d + REQUEST_DESC_BYTES);
    dv.setUint32(d + 8, id, true); // id lo; hi stays 0
    // The u64 sector as two exact u32 halves (a double would round above 2^53).
    dv.setUint32(d + 16, Number(req.wireSector & 0xffff_ffffn), true);
    dv.setUint32(d + 20, Number((req.wireSector >> 32n) & 0xffff_ffffn), true);
    if (req.op === BLKIF_OP_DISCARD) {
      dv.setUint8(d, BLKIF_OP_DISCARD);
      dv.setUint8(d + 1, req.secure ? 1 : 0);
      dv.setUint32(d + 24, req.discardSectors % 0x1_0000_0000, true);
      dv.setUint32(d + 28, Math.floor(req.discardSectors / 0x1_0000_0000), true);
      return;
    }
    if (req.nPages === 0) {
      dv.setUint8(d, req.op); // flush / barrier: no segments
      return;
    }
    const lease = req.lease!;
    // A caller buffer detached or shrunk in flight throws here (InvalidArgumentError);
    // issue() fails just that operation.
    if (req.op === BLKIF_OP_WRITE && !lease.borrowed) {
      req.io.stream!.copy(this.u8, lease.addresses, req.byteOffset, req.byteLength, true);
      this.opts.counters.bytesCopied += req.byteLength;
    }
    for (let p = 0; p < req.nPages; p++) dv.setUint32(this.stagingGrefs + p * 4, lease.grefs[p]!, true);
    const sectors512 = req.byteLength / 512;
    if (!req.indirect) {
      const segs = this.segs + id * BLKIF_MAX_SEGMENTS_PER_REQUEST * 8;
      this.engine.packSegments(this.stagingGrefs, req.nPages, sectors512, segs);
      dv.setUint8(d, req.op);
      dv.setUint16(d + 4, req.nPages, true);
      dv.setUint32(d + 24, segs, true);
      return;
    }
    // Indirect: segments go into granted indirect pages, their grefs into the slot.
    const ind = req.indirect;
    this.engine.packSegments(this.stagingGrefs, req.nPages, sectors512, this.stagingSegs);
    const grefs = this.indirectGrefs + id * 32;
    for (let p = 0; p < ind.grefs.length; p++) {
      dv.setUint32(this.stagingAddrs + p * 4, ind.addresses[p]!, true);
      dv.setUint32(grefs + p * 4, ind.grefs[p]!, true);
    }
    this.engine.packIndirectPages(this.stagingSegs, req.nPages, this.stagingAddrs);
    dv.setUint8(d, BLKIF_OP_INDIRECT);
    dv.setUint8(d + 1, req.op);
    dv.setUint16(d + 4, req.nPages, true);
    dv.setUint32(d + 24, grefs, true);
  }

  /** Event channel fired: reap; anything unexpected fails the device rather than escaping. */
  private onEvent(): void {
    this.opts.counters.notificationsReceived++;
    try {
      this.reap();
    } catch (err) {
      this.events.fatal(new ProtocolError(`frontend: ${String(err)}`, { cause: err }));
    }
  }

  /** Reap until the final check finds the ring empty. */
  private reap(): void {
    if (this.dead) return;
    let reaped = 0;
    for (;;) {
      const n = this.engine.blkifReapResponses(this.state, this.shadow, this.comps, this.nrEnts, this.opts.abi);
      if (n < 0) {
        this.events.fatal(statusToError(n) as ProtocolError);
        return;
      }
      for (let i = 0; i < n; i++) {
        const c = this.comps + i * COMPLETION_BYTES;
        const id = this.dv.getUint32(c, true);
        const status = this.dv.getInt16(c + 10, true);
        this.finish(id, status);
        if (this.dead) return;
      }
      reaped += n;
      if (n > 0) continue;
      if (!this.engine.finalCheckForResponses(this.state)) break;
    }
    if (log.enabled) log(`queue ${this.opts.index}: event on port ${this.port}, reaped ${reaped} response(s)`);
    if (reaped > 0) {
      this.spurious = 0;
      this.events.drained();
    } else if (++this.spurious > (this.opts.eventStormLimit ?? EVENT_STORM_LIMIT)) {
      this.events.fatal(new ProtocolError(`event storm: ${this.opts.eventStormLimit ?? EVENT_STORM_LIMIT} events without a response`));
    }
  }

  /** Release a request's id and pages, copy read data, report it. */
  private finish(id: number, status: number, err?: Error): void {
    const req = this.inflight[id];
    if (!req) return;
    this.inflight[id] = undefined;
    this.freeIds.push(id);
    if (req.issuedAt !== undefined) {
      // Answered by the backend (not refused by our own encoder): count it.
      const c = this.opts.counters;
      c.completed++;
      c.latencyUs.record((performance.now() - req.issuedAt) * 1000);
      req.issuedAt = undefined;
      if (status !== BLKIF_RSP_OKAY) c.errors++;
      else if (req.op === BLKIF_OP_READ) c.bytesRead += req.byteLength;
      else if (req.op === BLKIF_OP_WRITE) c.bytesWritten += req.byteLength;
    }
    if (req.lease && !req.lease.borrowed && status === BLKIF_RSP_OKAY && req.op === BLKIF_OP_READ && !req.io.isSettled) {
      try {
        req.io.stream!.copy(this.u8, req.lease.addresses, req.byteOffset, req.byteLength, false);
        this.opts.counters.bytesCopied += req.byteLength;
      } catch (copyErr) {
        err ??= asXenpvError(copyErr); // the caller's buffer went away
      }
    }
    this.releasePages(req);
    if (err) {
      req.io.fail(asXenpvError(err));
      return;
    }
    this.events.completed(req, status);
  }

  private releasePages(req: RingRequest): void {
    if (req.lease && !req.lease.borrowed) this.pages.release(req.lease);
    if (req.indirect) this.pages.release(req.indirect);
    req.lease = req.indirect = undefined;
  }

  /**
   * Stop using the ring: no more events, ring ungranted, port closed. Data
   * pages go back to the supply (the device tears the supply down). Returns
   * the requests that were in flight (for re-issue or rejection) and how
   * many ring grants a still-mapping peer kept (their end is deferred).
   */
  teardown(): { orphans: RingRequest[]; leakedGrants: number } {
    if (this.dead) return { orphans: [], leakedGrants: 0 };
    this.dead = true;
    const orphans: RingRequest[] = [];
    for (let id = 0; id < this.nrEnts; id++) {
      const req = this.inflight[id];
      if (!req) continue;
      this.inflight[id] = undefined;
      this.releasePages(req);
      req.issuedAt = undefined; // never answered: not a latency sample
      orphans.push(req);
    }
    this.freeIds.length = 0;
    // Best effort: a port already closed (the platform disposed) must not stop the teardown.
    try {
      this.platform.evtchn.setHandler(this.port, null);
      this.platform.evtchn.close(this.port);
    } catch {
      // nothing left to close
    }
    const leakedGrants = this.deferred.ungrant(this.ring);
    this.scratch.releaseAll();
    return { orphans, leakedGrants };
  }
}

function asXenpvError(err: unknown): XenpvError {
  return err instanceof XenpvError ? err : new IoError(String(err), { cause: err });
}
