/**
 * Serves one blkif ring from the back end: takes requests in batches (each
 * copied out of the ring once and validated by the engine), checks them the
 * way Linux's blkback does, maps the frontend's grants, runs the I/O on a
 * BlockDevice directly over the mapped pages, unmaps, and answers. A bad
 * request gets BLKIF_RSP_ERROR (or EOPNOTSUPP) echoing its operation; only a
 * broken ring (req_prod overflow) stops the server.
 */
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_REQUEST_BYTES_X86_32,
  BLKIF_REQUEST_BYTES_X86_64,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  XEN_PAGE_SIZE,
} from '../blkif/constants.js';
import { BlkifStatus, statusMessage } from '../ring/status.js';
import { ProtocolError } from '../errors.js';
import { ArenaScope } from '../memory/layout.js';
import type { BlockDevice } from '../block/types.js';
import type { ForeignMapping, Platform, Port } from '../platform/types.js';
import {
  Abi,
  COMPLETION_BYTES,
  REQUEST_DESC_BYTES,
  RING_STATE_BYTES,
  TAKE_SEGMENT_AREA_BYTES,
  type RingEngine,
} from '../ring/engine.js';
import type { BackendFeatures } from './features.js';
import { GrantCache, type PageMap } from './grant-cache.js';
import { mergeAdjacent } from './merge.js';
import { SYNC_MAX_BYTES, syncIoOf, SyncSlices, type SyncBlockIo } from './sync-io.js';

/**
 * Shared by all rings of one backend, for its whole life (reconnects
 * included): once the store failed a flush, acknowledged writes may be lost,
 * so every later request is answered BLKIF_RSP_ERROR (README "Storage rules").
 */
export interface BackendHealth {
  flushFailure?: string;
}

export interface RingServerOptions {
  frontend: number;
  ringRefs: readonly number[];
  remotePort: Port;
  abi: Abi;
  persistent: boolean;
  features: BackendFeatures;
  readOnly: boolean;
  health: BackendHealth;
  /**
   * Serve reads and writes with the device's synchronous entry points when
   * it has them (sync-io.ts): only for a backend that owns its thread.
   */
  syncIo?: boolean;
}

/** A read or write checked and mapped, ready for the device. */
interface Prepared {
  t: Taken;
  write: boolean;
  sector512: bigint;
  total512: number;
  bufs: Uint8Array[];
  map: PageMap;
}

/** A request copied out of the ring, plus what we need to answer it. */
interface Taken {
  id: [number, number];
  op: number; // the operation to echo (indirect: its indirect_op)
  status: number; // engine validation status
  flag: number;
  indirect: boolean;
  nrSegments: number;
  /** The wire's u64 sector_number / nr_sectors, exactly. */
  sector: bigint;
  discardSectors: bigint;
  segs: Uint8Array; // copied wire segments (direct) or indirect grefs
}

export class RingServer {
  private readonly state: number;
  private readonly descs: number;
  private readonly segArea: number;
  private readonly rsps: number;
  private readonly indirectSegs: number;
  private readonly indirectPages: number;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly ring: ForeignMapping;
  private readonly grants: GrantCache;
  readonly port: Port;
  readonly nrEnts: number;
  private inflight = 0;
  private readonly answers: { id: [number, number]; op: number; status: number }[] = [];
  private flushScheduled = false;
  private stopped = false;
  private broken = false;
  /** This ring's engine tables in the domain's scratch. */
  private readonly scratch: ArenaScope;
  /**
   * The last barrier/flush still running: reads and writes taken after it
   * wait for it. Undefined when none is, so the common case costs no await
   * (one promise hop less per request).
   */
  private ordering: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();
  /** The device's synchronous I/O, when asked for and offered (sync-io.ts). */
  private readonly sync: SyncBlockIo | undefined;
  /** Merged groups served synchronously, one time slice per turn (with `sync`). */
  private readonly slices: SyncSlices<readonly Prepared[]> | undefined;

  constructor(
    private readonly engine: RingEngine,
    private readonly platform: Platform,
    private readonly device: BlockDevice,
    private readonly opts: RingServerOptions,
    private readonly onFatal: (why: string) => void,
  ) {
    const scope = new ArenaScope(platform.scratch);
    this.scratch = scope;
    const slot = opts.abi === Abi.X86_32 ? BLKIF_REQUEST_BYTES_X86_32 : BLKIF_REQUEST_BYTES_X86_64;
    const pages = opts.ringRefs.length;
    let ring: ForeignMapping | undefined;
    let port: Port | undefined;
    try {
      ring = platform.grants.mapForeign(opts.frontend, opts.ringRefs, false);
      // The engine addresses a multi-page ring as one block. Real Xen maps the
      // pages into one virtual area; the simulation maps them where they are,
      // so a frontend that grants scattered pages is refused here, before the
      // engine could walk past the first page into someone else's frames.
      const base = ring.addresses[0]!;
      if (!ring.addresses.every((a, i) => a === base + i * XEN_PAGE_SIZE)) {
        throw new ProtocolError('ring pages are not contiguous');
      }
      this.state = scope.alloc(RING_STATE_BYTES, 64);
      const n = engine.backRingAttach(this.state, base, pages, slot);
      if (n < 0) throw new ProtocolError(`cannot attach ring: ${statusMessage(n)}`);
      this.nrEnts = n;
      this.descs = scope.alloc(n * REQUEST_DESC_BYTES, 8);
      this.segArea = scope.alloc(n * TAKE_SEGMENT_AREA_BYTES, 8);
      this.rsps = scope.alloc(n * COMPLETION_BYTES, 8);
      this.indirectSegs = scope.alloc(8 * BLKIF_SEGMENTS_PER_INDIRECT_PAGE * 8, 8);
      this.indirectPages = scope.alloc(8 * 4, 8);
      port = platform.evtchn.bindInterdomain(opts.frontend, opts.remotePort);
    } catch (err) {
      // Undo whatever was acquired: a hostile frontend cycling bad keys must not drain us.
      if (ring) platform.grants.unmapForeign(ring);
      scope.releaseAll();
      throw err;
    }
    this.ring = ring;
    this.port = port;
    this.dv = new DataView(platform.memory.buffer);
    this.u8 = new Uint8Array(platform.memory.buffer);
    // Persistent-grant cap: what one full ring can carry unless configured (see grant-cache.ts).
    const perRequest = Math.max(BLKIF_MAX_SEGMENTS_PER_REQUEST, opts.features.maxIndirectSegments);
    const maxPersistent = opts.features.maxPersistentGrants ?? this.nrEnts * perRequest;
    this.grants = new GrantCache(platform.grants, opts.frontend, opts.persistent, maxPersistent);
    this.sync = opts.syncIo ? syncIoOf(device) : undefined;
    this.slices = this.sync && new SyncSlices((g) => this.serveSync(g), (p) => this.track(p));
    platform.evtchn.setHandler(this.port, () => this.onEvent());
    // Requests may already be waiting (a reconnecting frontend re-issues at once).
    queueMicrotask(() => this.onEvent());
  }

  private onEvent(): void {
    if (this.stopped || this.broken) return;
    for (;;) {
      // RING_REQUEST_CONS_OVERFLOW: taken but not yet published responses
      // (running, or answered and waiting for flushAnswers) hold their slots.
      const room = this.nrEnts - this.inflight - this.answers.length;
      if (room <= 0) return; // resumed when answers are published
      const n = this.engine.blkifTakeRequests(this.state, this.descs, this.segArea, room, this.opts.abi);
      if (n < 0) {
        // Once: a broken ring is not re-reported on every later event.
        this.broken = true;
        this.onFatal(`frontend broke the ring: ${statusMessage(n)}`);
        return;
      }
      // Reads and writes with nothing to wait for are checked and mapped now
      // and merged with their neighbours on disk (merge.ts); anything else
      // starts alone, after the batch before it, so a flush still sees every
      // request taken before it running.
      const batch: Prepared[] = [];
      for (let i = 0; i < n; i++) {
        const t = this.read(i);
        const plain = t.status === BlkifStatus.OK && (t.op === BLKIF_OP_READ || t.op === BLKIF_OP_WRITE);
        if (plain && !this.ordering && this.opts.health.flushFailure === undefined) {
          this.inflight++;
          const p = this.prepare(t);
          if (typeof p === 'number') this.answer(t, p);
          else batch.push(p);
          continue;
        }
        this.startMerged(batch.splice(0));
        this.start(t);
      }
      this.startMerged(batch);
      if (n > 0) continue;
      if (!this.engine.finalCheckForRequests(this.state)) return;
    }
  }

  /** Copy descriptor i out of the take table (it is reused by the next take). */
  private read(i: number): Taken {
    const d = this.descs + i * REQUEST_DESC_BYTES;
    const dv = this.dv;
    const op = dv.getUint8(d);
    const flag = dv.getUint8(d + 1);
    const segPtr = this.segArea + i * TAKE_SEGMENT_AREA_BYTES;
    return {
      id: [dv.getUint32(d + 8, true), dv.getUint32(d + 12, true)],
      op: op === BLKIF_OP_INDIRECT ? flag : op,
      status: dv.getInt16(d + 6, true),
      flag,
      indirect: op === BLKIF_OP_INDIRECT,
      nrSegments: dv.getUint16(d + 4, true),
      sector: dv.getBigUint64(d + 16, true),
      discardSectors: dv.getBigUint64(d + 24, true),
      segs: this.u8.slice(segPtr, segPtr + TAKE_SEGMENT_AREA_BYTES),
    };
  }

  /** Run prepared requests as merged device calls; each answers with its group's status. */
  private startMerged(batch: Prepared[]): void {
    if (batch.length === 0) return;
    const groups = mergeAdjacent(batch);
    // Large calls start first, on the pool; the small ones then run here meanwhile.
    const small: (readonly Prepared[])[] = [];
    for (const group of groups) {
      if (this.slices && this.syncSized(group)) {
        small.push(group);
        continue;
      }
      this.track(
        this.runGroup(group).then((status) => {
          for (const r of group) this.answer(r.t, status);
        }),
      );
    }
    if (small.length > 0) this.slices!.push(small);
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** The group goes through the synchronous entry points (sync-io.ts: small calls only). */
  private syncSized(group: readonly Prepared[]): boolean {
    if (!this.sync) return false;
    let n = 0;
    for (const r of group) n += r.total512;
    return n * 512 <= SYNC_MAX_BYTES;
  }

  /** One merged group through the synchronous entry points; answers it. */
  private serveSync(group: readonly Prepared[]): void {
    // Stopping: answers are dropped anyway, so only the pages are given back.
    const status = this.stopped ? BLKIF_RSP_ERROR : this.runGroupSync(group);
    if (this.stopped) for (const r of group) this.grants.release(r.map);
    for (const r of group) this.answer(r.t, status);
  }

  private start(t: Taken): void {
    this.inflight++;
    this.track(
      this.serve(t)
        .catch(() => BLKIF_RSP_ERROR) // a failed device I/O is an I/O error, nothing more
        .then((status) => this.answer(t, status)),
    );
  }

  private async serve(t: Taken): Promise<number> {
    if (t.status !== BlkifStatus.OK) {
      return t.status === BlkifStatus.BAD_OPERATION ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
    }
    const f = this.opts.features;
    if (this.opts.health.flushFailure !== undefined) return BLKIF_RSP_ERROR;
    switch (t.op) {
      case BLKIF_OP_READ:
      case BLKIF_OP_WRITE:
        if (this.ordering) await this.ordering;
        // The flush we waited for may have failed: fail closed.
        if (this.opts.health.flushFailure !== undefined) return BLKIF_RSP_ERROR;
        return this.rw(t);
      case BLKIF_OP_WRITE_BARRIER:
      case BLKIF_OP_FLUSH_DISKCACHE: {
        if (t.op === BLKIF_OP_WRITE_BARRIER ? !f.barrier : !f.flushCache) return BLKIF_RSP_EOPNOTSUPP;
        // Everything taken before this request completes first (captured now:
        // once serve() returns, `running` holds this request too). Its own data,
        // if it carries any (Linux: a write with REQ_PREFLUSH), goes next, then the flush.
        const before = [...this.running];
        const done = Promise.all(before).then(async () => {
          if (this.opts.health.flushFailure !== undefined) return BLKIF_RSP_ERROR;
          if (t.nrSegments > 0) {
            const st = await this.rw({ ...t, op: BLKIF_OP_WRITE });
            if (st !== BLKIF_RSP_OKAY) return st;
          }
          try {
            await this.device.flush();
          } catch (err) {
            this.opts.health.flushFailure ??= err instanceof Error ? err.message : String(err);
            return BLKIF_RSP_ERROR;
          }
          return BLKIF_RSP_OKAY;
        });
        const settled = done.then(() => undefined, () => undefined);
        this.ordering = settled;
        void settled.then(() => {
          if (this.ordering === settled) this.ordering = undefined;
        });
        return done;
      }
      case BLKIF_OP_DISCARD:
        return this.discard(t);
      default:
        return BLKIF_RSP_EOPNOTSUPP;
    }
  }

  private async discard(t: Taken): Promise<number> {
    const f = this.opts.features;
    if (!f.discard || (t.flag !== 0 && !f.discardSecure)) return BLKIF_RSP_EOPNOTSUPP;
    if (this.opts.readOnly) return BLKIF_RSP_ERROR;
    const ss = BigInt(this.device.info().sectorSize / 512);
    if (t.sector % ss !== 0n || t.discardSectors % ss !== 0n || t.discardSectors === 0n) return BLKIF_RSP_ERROR;
    if (!this.inRange(t.sector, t.discardSectors)) return BLKIF_RSP_ERROR;
    await this.device.discard(t.sector / ss, t.discardSectors / ss);
    return BLKIF_RSP_OKAY;
  }

  /** [sector512, +count512) lies inside the device (bigint: u64 sums cannot round or wrap). */
  private inRange(sector512: bigint, count512: bigint): boolean {
    const info = this.device.info();
    return sector512 + count512 <= info.sizeSectors * BigInt(info.sectorSize / 512);
  }

  private async rw(t: Taken): Promise<number> {
    const p = this.prepare(t);
    return typeof p === 'number' ? p : this.runGroup([p]);
  }

  /** Check a read or write the way Linux's blkback does and map its pages; a status when refused. */
  private prepare(t: Taken): Prepared | number {
    const write = t.op === BLKIF_OP_WRITE;
    if (write && this.opts.readOnly) return BLKIF_RSP_ERROR;
    const segs = this.segments(t);
    if (!segs) return BLKIF_RSP_ERROR;
    const { grefs, firsts, lasts } = segs;
    const per = this.device.info().sectorSize / 512;
    let total = 0;
    for (let i = 0; i < grefs.length; i++) {
      const n = lasts[i]! - firsts[i]! + 1;
      // Each segment must be whole logical sectors (Linux checks the same alignment).
      if (firsts[i]! % per !== 0 || n % per !== 0) return BLKIF_RSP_ERROR;
      total += n;
    }
    if (t.sector % BigInt(per) !== 0n || !this.inRange(t.sector, BigInt(total))) return BLKIF_RSP_ERROR;
    // The backend reads the pages of a write and writes those of a read.
    const map = this.grants.map(grefs, write);
    if (!map) return BLKIF_RSP_ERROR;
    // Segments that follow each other in memory go to the device as one
    // buffer: a frontend's I/O buffer (or a run of persistent pages) is then
    // one pread/pwrite, not a readv of 4 KiB pieces.
    const bufs: Uint8Array[] = [];
    let runStart = -1;
    let runEnd = -1;
    for (let i = 0; i < grefs.length; i++) {
      const at = map.addresses[i]! + firsts[i]! * 512;
      const end = map.addresses[i]! + (lasts[i]! + 1) * 512;
      if (at === runEnd) {
        runEnd = end;
        continue;
      }
      if (runStart >= 0) bufs.push(this.u8.subarray(runStart, runEnd));
      runStart = at;
      runEnd = end;
    }
    bufs.push(this.u8.subarray(runStart, runEnd));
    return { t, write, sector512: t.sector, total512: total, bufs, map };
  }

  /** Where a group starts on the device and the buffers it moves. */
  private groupIo(group: readonly Prepared[]): { sector: bigint; bufs: Uint8Array[] } {
    const first = group[0]!;
    const bufs = group.length === 1 ? first.bufs : group.flatMap((r) => r.bufs);
    return { sector: first.sector512 / BigInt(this.device.info().sectorSize / 512), bufs };
  }

  /** runGroup through the synchronous entry points (this.sync is set). */
  private runGroupSync(group: readonly Prepared[]): number {
    const { sector, bufs } = this.groupIo(group);
    try {
      if (group[0]!.write) this.sync!.writeSync(sector, bufs);
      else this.sync!.readSync(sector, bufs);
      return BLKIF_RSP_OKAY;
    } catch {
      return BLKIF_RSP_ERROR; // as runGroup: a failed device I/O is an I/O error
    } finally {
      for (const r of group) this.grants.release(r.map);
    }
  }

  /** One device call for requests adjacent on disk (merge.ts); a failure fails them all. */
  private async runGroup(group: readonly Prepared[]): Promise<number> {
    // A read or write started after a flush, or a flush's own data: one group, blocking briefly.
    if (this.syncSized(group)) return this.runGroupSync(group);
    const first = group[0]!;
    const { sector, bufs } = this.groupIo(group);
    try {
      if (first.write) await this.device.write(sector, bufs);
      else await this.device.read(sector, bufs);
      return BLKIF_RSP_OKAY;
    } catch {
      return BLKIF_RSP_ERROR; // a failed device I/O is an I/O error, nothing more
    } finally {
      // Unmapped before the responses go out (non-persistent).
      for (const r of group) this.grants.release(r.map);
    }
  }

  /** The request's segments, from the slot or from its indirect pages. */
  private segments(t: Taken): { grefs: number[]; firsts: number[]; lasts: number[] } | undefined {
    const n = t.nrSegments;
    const dv = new DataView(t.segs.buffer, t.segs.byteOffset, t.segs.byteLength);
    if (!t.indirect) {
      if (n < 1 || n > BLKIF_MAX_SEGMENTS_PER_REQUEST) return undefined;
      return unpack(dv, 0, n);
    }
    const maxSegs = this.opts.features.maxIndirectSegments;
    if (n < 1 || n > maxSegs) return undefined;
    const nPages = Math.ceil(n / BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
    const grefs = Array.from({ length: nPages }, (_, i) => dv.getUint32(i * 4, true));
    let pages: ForeignMapping;
    try {
      pages = this.platform.grants.mapForeign(this.opts.frontend, grefs, true);
    } catch {
      return undefined;
    }
    try {
      for (let i = 0; i < nPages; i++) this.dv.setUint32(this.indirectPages + i * 4, pages.addresses[i]!, true);
      // Copied once out of the frontend's pages, then validated from the copy.
      const st = this.engine.blkifCopyIndirectSegments(this.indirectPages, n, this.indirectSegs);
      if (st !== 0) return undefined;
    } finally {
      this.platform.grants.unmapForeign(pages);
    }
    return unpack(this.dv, this.indirectSegs, n);
  }

  private answer(t: Taken, status: number): void {
    this.inflight--;
    if (this.stopped) return;
    this.answers.push({ id: t.id, op: t.op, status });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushAnswers());
    }
  }

  /** Write every ready answer, publish once, notify if the ring says so. */
  private flushAnswers(): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    // The response table holds nrEnts entries; room accounting keeps answers within it.
    const list = this.answers.splice(0, this.nrEnts);
    for (let i = 0; i < list.length; i++) {
      const r = this.rsps + i * COMPLETION_BYTES;
      const a = list[i]!;
      this.u8.fill(0, r, r + COMPLETION_BYTES);
      this.dv.setUint32(r, a.id[0], true);
      this.dv.setUint32(r + 4, a.id[1], true);
      this.dv.setUint8(r + 8, a.op);
      this.dv.setInt16(r + 10, a.status, true);
    }
    this.engine.blkifWriteResponses(this.state, this.rsps, list.length, this.opts.abi);
    if (this.engine.pushResponsesAndCheckNotify(this.state)) this.platform.evtchn.notify(this.port);
    if (this.answers.length > 0) return this.flushAnswers();
    // Room freed: take what waited.
    this.onEvent();
  }

  /**
   * Stop serving: take and answer nothing more, wait for the I/O already
   * running (it works on mapped frontend pages: they must stay mapped until
   * it is done), then unmap everything and close the port.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.allSettled([...this.running]);
    this.platform.evtchn.setHandler(this.port, null);
    this.platform.evtchn.close(this.port);
    this.grants.clear();
    this.platform.grants.unmapForeign(this.ring);
    this.scratch.releaseAll();
  }
}

function unpack(dv: DataView, base: number, n: number): { grefs: number[]; firsts: number[]; lasts: number[] } {
  const grefs: number[] = new Array(n);
  const firsts: number[] = new Array(n);
  const lasts: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    grefs[i] = dv.getUint32(base + i * 8, true);
    firsts[i] = dv.getUint8(base + i * 8 + 4);
    lasts[i] = dv.getUint8(base + i * 8 + 5);
  }
  return { grefs, firsts, lasts };
}
