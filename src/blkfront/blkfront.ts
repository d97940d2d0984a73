/**
 * Blkfront: the `xen` BlockDevice. Drives one virtual block device through
 * its backend, over one or more rings.
 *
 * Callers' operations are cut into ring requests and queued; queues take
 * what their rings have room for (backpressure, never an error). The
 * backend's state changes drive one exhaustive table (state.ts); every
 * action runs serialised on one promise chain.
 *
 * Units: the BlockDevice API counts in `sectorSize` units; the wire always
 * counts 512-byte sectors (Linux blkback's convention), so
 * wireSector = sector × sectorSize / 512.
 */
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_OKAY,
  XenbusState,
} from '../blkif/constants.js';
import { ResizeNotifier } from '../block/resize.js';
import type { BlockDevice, BlockInfo, ResizeListener } from '../block/types.js';
import { validateDiscard, validateFlush, validateRead, validateWrite } from '../block/validate.js';
import { DisconnectedError, InvalidArgumentError, IoError, ProtocolError, TimeoutError, UnsupportedError, XenpvError } from '../errors.js';
import type { Platform, XsWatch } from '../platform/types.js';
import { Abi } from '../ring/engine.js';
import { readBackendInfo, readBackendLimits, toBlockInfo, MAX_INDIRECT_SEGMENTS, type BackendInfo } from './features.js';
import { checkOptions, type BlkfrontOptions } from './options.js';
import { keepAlive } from '../util/keep-alive.js';

export type { BlkfrontOptions } from './options.js';
import { writeFrontendKeys } from './handshake.js';
import { DeferredUngrant, PerRequestPages, PersistentPages, type PageSupply } from './page-supply.js';
import { RequestQueue } from './request-queue.js';
import { controlRequest, dataRequest, discardRequest, IoOp, type RingRequest } from './request.js';
import { RingQueue } from './ring-queue.js';
import { ByteStream, planChunks, planDiscard } from './split.js';
import { Action, DriverState, onBackendState, parseXenbusState, xenbusStateName } from './state.js';
import { QueueCounters, summarise, type BlkfrontStats, type OperationCounts } from './stats.js';

export type { BlkfrontStats } from './stats.js';
import { debug } from '../util/debug.js';

const log = debug('xenpv:blkfront');

const WIRE_SECTOR = 512;

export class Blkfront implements BlockDevice {
  private driver = DriverState.Connecting;
  private backendPath = '';
  private backendId = 0;
  private queues: RingQueue[] = [];
  private pages: PageSupply | undefined;
  private backend: BackendInfo | undefined;
  private currentInfo: BlockInfo | undefined;
  private readonly waiting = new RequestQueue();
  private readonly resize = new ResizeNotifier();
  private readonly writes = new Set<Promise<void>>();
  private watch: XsWatch | undefined;
  private chain: Promise<void> = Promise.resolve();
  private failure: XenpvError | undefined;
  private nextQueue = 0;
  private reconnects = 0;
  private readonly deferred: DeferredUngrant;
  private maxPages = 11;
  private closing: Promise<void> | undefined;
  /** Set while close() waits for the backend to close: the state watch fired. */
  private backendMoved: (() => void) | undefined;
  /** Resolves once disconnect() has finished (never rejects): for owners that track devices. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private connected!: { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> };
  /** Per queue index, across reconnects. */
  private readonly counters: QueueCounters[] = [];
  private readonly ops: OperationCounts = { reads: 0, writes: 0, flushes: 0, discards: 0 };

  private constructor(private readonly platform: Platform, private readonly opts: BlkfrontOptions) {
    this.deferred = new DeferredUngrant(platform.grants, opts.ungrantRetryMs);
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined);
    this.connected = { resolve, reject, promise };
    this.closed = new Promise<void>((res) => (this.markClosed = res));
  }

  /** Attach to the device whose frontend directory is `opts.frontend`; resolves once Connected. */
  static attach(platform: Platform, opts: BlkfrontOptions): Promise<Blkfront> {
    return keepAlive((async () => {
      checkOptions(opts);
      const dev = new Blkfront(platform, opts);
      await dev.start();
      return dev;
    })());
  }

  private async start(): Promise<void> {
    const xs = this.platform.xenstore;
    const front = this.opts.frontend;
    const backend = await xs.tryRead(`${front}/backend`);
    const backendId = await xs.tryRead(`${front}/backend-id`);
    if (backend === undefined && backendId === undefined) {
      throw new InvalidArgumentError('frontend', `no vbd at ${front} (no backend / backend-id keys): create it with createVbd() or xl block-attach`);
    }
    if (backend === undefined || backendId === undefined || !/^\d{1,5}$/.test(backendId)) {
      throw new ProtocolError(`${front}: missing or malformed backend / backend-id`);
    }
    this.backendPath = backend;
    this.backendId = Number(backendId);
    if (log.enabled) log(`${front}: attach to ${backend} (dom${backendId})`);
    await xs.write(`${front}/state`, String(XenbusState.Initialising));
    this.watch = await xs.watch(`${backend}/state`);
    void this.watchLoop(this.watch);
    const timeout = this.opts.connectTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`${front}: backend ${backend} did not connect within ${timeout} ms`)), timeout);
    });
    try {
      await Promise.race([this.connected.promise, timedOut]);
    } catch (err) {
      await this.fail(err instanceof XenpvError ? err : new ProtocolError(String(err)));
      await this.closeWatch();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every driver state change goes through here (and into the debug log). */
  private setDriver(next: DriverState): void {
    if (log.enabled && next !== this.driver) log(`${this.opts.frontend}: driver ${this.driver} -> ${next}`);
    this.driver = next;
  }

  private async watchLoop(watch: XsWatch): Promise<void> {
    try {
      for await (const _ev of watch) {
        this.backendMoved?.();
        this.enqueue(() => this.onBackendChanged());
      }
    } catch {
      // The watch ended with the connection: nothing more will change.
    }
  }

  /** Run `fn` after everything queued before it; errors fail the device. The chain never stays rejected. */
  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain
      .then(fn)
      .catch((err: unknown) =>
        this.fail(err instanceof XenpvError ? err : new ProtocolError(`frontend: ${String(err)}`, { cause: err })),
      )
      .catch(() => undefined);
  }

  private async onBackendChanged(): Promise<void> {
    const state = parseXenbusState(await this.platform.xenstore.tryRead(`${this.backendPath}/state`));
    const action = onBackendState(this.driver, state);
    if (log.enabled) log(`${this.opts.frontend}: backend state ${xenbusStateName(state)} while ${this.driver}: ${action}`);
    switch (action) {
      case Action.None:
        return;
      case Action.Setup:
        return this.setup();
      case Action.Connect:
        return this.connect();
      case Action.Refresh:
        return this.refresh();
      case Action.Suspend:
        return this.suspend();
      case Action.Reset:
        return this.reset();
      case Action.Rearm:
        return this.platform.xenstore.write(`${this.opts.frontend}/state`, String(XenbusState.Initialising));
    }
  }

  /**
   * True when the device failed or closed while an action was awaiting
   * xenstore: the action must stop without touching driver state or keys.
   */
  private stale(): boolean {
    return this.failure !== undefined || this.driver === DriverState.Closing || this.driver === DriverState.Closed;
  }

  // ------------------------------------------------------------ handshake

  private async setup(): Promise<void> {
    const xs = this.platform.xenstore;
    const limits = await readBackendLimits(xs, this.backendPath);
    if (this.stale()) return;
    const order = Math.min(limits.maxRingPageOrder, this.opts.maxRingPageOrder ?? 2);
    const nq = Math.min(limits.maxQueues, this.opts.queues ?? 1);
    const abi = this.opts.abi ?? Abi.X86_64;
    // Tables are sized for the most pages one request can carry.
    const indirectCap = this.opts.indirect === false ? 0 : MAX_INDIRECT_SEGMENTS;
    this.queues = [];
    if (log.enabled) log(`${this.opts.frontend}: setup: ring-page-order ${order} (backend max ${limits.maxRingPageOrder}), ${nq} queue(s) (backend max ${limits.maxQueues}), abi ${abi}`);
    for (let i = 0; i < nq; i++) {
      const counters = (this.counters[i] ??= new QueueCounters());
      const q = new RingQueue(this.opts.engine, this.platform, this.platform.scratch, this.lazyPages(), {
        backend: this.backendId,
        ringPages: 1 << order,
        abi,
        maxIndirectSegments: indirectCap,
        eventStormLimit: this.opts.eventStormLimit,
        counters,
        index: i,
      }, {
        completed: (req, status) => this.completed(req, status),
        fatal: (err) => void this.fail(err),
        drained: () => this.pump(),
      }, this.deferred);
      this.queues.push(q);
    }
    await writeFrontendKeys(xs, this.opts.frontend, {
      ringPageOrder: order,
      queues: this.queues.map((q) => ({ ringRefs: q.ringRefs, port: q.port })),
      abi,
      persistent: this.opts.persistent ?? true,
    });
    // fail()/close() tear down this.queues themselves; just stop here.
    if (this.stale()) return;
    await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Initialised));
    if (this.stale()) return;
    this.setDriver(DriverState.Initialised);
    // The backend may have gone Connected before our watch fired: look again.
    this.enqueue(() => this.onBackendChanged());
  }

  /** The queues' page supply, decided at connect (persistent or not). */
  private lazyPages(): PageSupply {
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

  private async connect(): Promise<void> {
    const xs = this.platform.xenstore;
    const info = await readBackendInfo(xs, this.backendPath);
    if (this.stale()) return;
    const persistent = (this.opts.persistent ?? true) && info.persistent;
    this.pages = persistent
      ? new PersistentPages(this.platform.grants, this.backendId, this.deferred)
      : new PerRequestPages(this.platform.grants, this.backendId, this.deferred);
    const indirect = this.opts.indirect === false ? 0 : info.maxIndirectSegments;
    this.maxPages = Math.max(11, Math.min(indirect, MAX_INDIRECT_SEGMENTS));
    const before = this.currentInfo;
    this.backend = info;
    this.currentInfo = this.blockInfo();
    if (log.enabled) {
      log(`${this.opts.frontend}: negotiated: ${info.sectors512} sectors of 512, sector-size ${info.sectorSize}, persistent ${persistent}, ` +
        `indirect ${this.maxPages > 11 ? this.maxPages : 0}, flush ${info.flush}, barrier ${info.barrier}, discard ${info.discard}`);
    }
    await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Connected));
    if (this.stale()) return;
    this.setDriver(DriverState.Connected);
    this.connected.resolve();
    // A backend that came back with another size is a resize too.
    if (before && before.sizeSectors !== this.currentInfo.sizeSectors) this.resize.emit(this.currentInfo);
    this.resplitWaiting();
    this.pump();
  }

  private async refresh(): Promise<void> {
    const v = await this.platform.xenstore.tryRead(`${this.backendPath}/sectors`);
    if (v === undefined || !this.backend) return;
    const info = await readBackendInfo(this.platform.xenstore, this.backendPath);
    if (this.stale() || info.sectors512 === this.backend.sectors512) return;
    this.backend = { ...this.backend, sectors512: info.sectors512 };
    this.currentInfo = this.blockInfo();
    this.resize.emit(this.currentInfo);
  }

  /** The backend went away: keep every request, drop the rings, close our side, wait for a backend. */
  private async suspend(): Promise<void> {
    this.setDriver(DriverState.Suspended);
    this.reconnects++;
    this.waiting.unshift(this.teardownRings());
    await this.platform.xenstore.write(`${this.opts.frontend}/state`, String(XenbusState.Closed));
    // The backend may already be Closed or waiting again: look once more.
    this.enqueue(() => this.onBackendChanged());
  }

  /** A backend that is not ours to use (see Action.Reset): close our side so it closes too. */
  private async reset(): Promise<void> {
    this.setDriver(DriverState.Suspended);
    this.waiting.unshift(this.teardownRings());
    await this.platform.xenstore.write(`${this.opts.frontend}/state`, String(XenbusState.Closed));
  }

  private teardownRings(): RingRequest[] {
    const orphans: RingRequest[] = [];
    for (const q of this.queues) orphans.push(...q.teardown().orphans);
    this.queues = [];
    this.pages?.teardown();
    this.pages = undefined;
    return orphans;
  }

  // ------------------------------------------------------------ data path

  private resplitWaiting(): void {
    this.waiting.resplit(this.maxPages);
  }

  /** Hand waiting requests to rings with room, round robin. */
  private pump(): void {
    if (this.driver !== DriverState.Connected) return;
    const n = this.queues.length;
    for (let tries = 0; tries < n && this.waiting.length > 0; tries++) {
      const q = this.queues[this.nextQueue]!;
      this.nextQueue = (this.nextQueue + 1) % n;
      const room = q.freeSlots;
      if (room === 0) continue;
      const batch = this.waiting.take(room);
      const consumed = q.issue(batch);
      if (consumed < batch.length) this.waiting.unshift(batch.slice(consumed));
      if (this.driver !== DriverState.Connected) return;
    }
  }

  private completed(req: RingRequest, status: number): void {
    if (status === BLKIF_RSP_OKAY) {
      req.io.complete();
      return;
    }
    if (status === BLKIF_RSP_EOPNOTSUPP) {
      // The backend says it cannot do this after all: stop offering it.
      this.disableFeature(req.op);
      req.io.fail(new UnsupportedError(`backend answered EOPNOTSUPP to operation ${req.op}`));
      return;
    }
    if (req.op === BLKIF_OP_FLUSH_DISKCACHE || req.op === BLKIF_OP_WRITE_BARRIER) {
      // A failed flush is never forgotten: the backend's store may have
      // dropped acknowledged writes, so no later flush may say they are safe.
      // The device fails closed with this error (README "Storage rules").
      const err = new IoError(
        `backend failed a flush (operation ${req.op}): writes acknowledged since the last successful flush may be lost; ` +
          'the device is failed until it is disconnected and attached again',
      );
      req.io.fail(err);
      void this.fail(err);
      return;
    }
    req.io.fail(new IoError(`backend failed operation ${req.op} at sector ${req.wireSector}`));
  }

  private disableFeature(op: number): void {
    const b = this.backend;
    if (!b) return;
    if (op === BLKIF_OP_FLUSH_DISKCACHE) b.flush = false;
    else if (op === BLKIF_OP_WRITE_BARRIER) b.barrier = false;
    else if (op === BLKIF_OP_DISCARD) b.discard = false;
    else return;
    this.currentInfo = this.blockInfo();
  }

  /** BlockInfo for the current backend, with what was negotiated (indirect segments, persistent grants). */
  private blockInfo(): BlockInfo {
    const info = toBlockInfo(this.backend!, this.maxPages > 11 ? this.maxPages : 0);
    // features.persistent says whether persistent grants are in use, not
    // whether the backend offers them: we may have declined (opts.persistent).
    return { ...info, features: { ...info.features, persistent: this.pages?.persistent ?? false } };
  }

  private submit(io: IoOp, reqs: RingRequest[]): Promise<void> {
    const ms = this.opts.requestTimeoutMs;
    if (ms !== undefined) {
      // Fails this call only; its ring requests stay where they are and a late answer is ignored.
      const timer = setTimeout(() => io.fail(new TimeoutError(`no answer from the backend within ${ms} ms`)), ms);
      const stop = (): void => clearTimeout(timer);
      io.promise.then(stop, stop);
    }
    io.expect(reqs.length);
    this.waiting.push(reqs);
    this.pump();
    // The answer comes through shared memory and an unref'd domain: hold the process until it does.
    return keepAlive(io.promise);
  }

  /** Rejects unless the device can take new calls. */
  private gate(): BlockInfo {
    if (this.failure) throw this.failure;
    if (this.closing || this.driver === DriverState.Closed) throw new DisconnectedError();
    return this.currentInfo!;
  }

  info(): BlockInfo {
    return this.currentInfo!;
  }

  onResize(listener: ResizeListener): () => void {
    return this.resize.on(listener);
  }

  async read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    const info = this.gate();
    const req = validateRead(info, sector, buffers);
    this.ops.reads++;
    return this.rw(BLKIF_OP_READ, info, req.sector, req.buffers, req.bytes);
  }

  async write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    const info = this.gate();
    const req = validateWrite(info, sector, buffers);
    this.ops.writes++;
    const p = this.rw(BLKIF_OP_WRITE, info, req.sector, req.buffers, req.bytes);
    const tracked = p.then(() => undefined, () => undefined);
    this.writes.add(tracked);
    void tracked.then(() => this.writes.delete(tracked));
    return p;
  }

  private rw(op: number, info: BlockInfo, sector: bigint, buffers: readonly Uint8Array[], bytes: number): Promise<void> {
    const io = new IoOp(new ByteStream(buffers));
    const wire = sector * BigInt(info.sectorSize / WIRE_SECTOR);
    const reqs = planChunks(wire, bytes, this.maxPages).map((c) =>
      dataRequest(io, op, c.wireSector, c.byteOffset, c.byteLength, c.nPages),
    );
    return this.submit(io, reqs);
  }

  async flush(): Promise<void> {
    const info = this.gate();
    validateFlush(info);
    // Flush covers writes completed before this call: let those in flight land first.
    await Promise.all([...this.writes]);
    // The device may have failed or started closing while we waited: nothing
    // would ever issue (or reject) a request queued now.
    this.gate();
    const op = this.backend!.flush ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE_BARRIER;
    this.ops.flushes++;
    const io = new IoOp();
    return this.submit(io, [controlRequest(io, op)]);
  }

  async discard(sector: bigint, count: bigint): Promise<void> {
    const info = this.gate();
    const d = validateDiscard(info, sector, count);
    this.ops.discards++;
    const b = this.backend!;
    const io = new IoOp();
    const reqs = planDiscard(d.sector, d.count, info.sectorSize, b.discardGranularity, b.discardAlignment).map((r) =>
      discardRequest(io, r.wireSector, r.sectors512, false),
    );
    return this.submit(io, reqs);
  }

  // ------------------------------------------------------------ teardown

  /** The peer broke the protocol (or setup failed): fail closed. */
  private async fail(err: XenpvError): Promise<void> {
    if (this.driver === DriverState.Failed || this.driver === DriverState.Closed) return;
    if (log.enabled) log(`${this.opts.frontend}: failed (${err.code}): ${err.message}`);
    this.setDriver(DriverState.Failed);
    this.failure = err;
    const orphans = this.teardownRings();
    for (const r of orphans) r.io.fail(err);
    for (const r of this.waiting.drain()) r.io.fail(err);
    this.connected.reject(err);
    await this.closeWatch();
    await this.platform.xenstore.write(`${this.opts.frontend}/state`, String(XenbusState.Closed)).catch(() => undefined);
  }

  private async closeWatch(): Promise<void> {
    const w = this.watch;
    this.watch = undefined;
    if (w) await w.unwatch().catch(() => undefined);
  }

  disconnect(): Promise<void> {
    this.closing ??= keepAlive(this.close().finally(() => this.markClosed()));
    return this.closing;
  }

  private async close(): Promise<void> {
    // Let what is in flight finish (bounded), then close per xenbus: Closing → Closed.
    const grace = this.opts.disconnectTimeoutMs ?? 3_000;
    const deadline = Date.now() + grace;
    while (this.driver === DriverState.Connected && this.pendingCount() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
    const err = new DisconnectedError('device disconnected with the request pending');
    await this.chain;
    if (this.driver !== DriverState.Failed) {
      this.setDriver(DriverState.Closing);
      const xs = this.platform.xenstore;
      await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Closing)).catch(() => undefined);
      await this.waitBackendClosed(grace);
      this.setDriver(DriverState.Closed);
      const orphans = this.teardownRings();
      for (const r of orphans) r.io.fail(err);
      for (const r of this.waiting.drain()) r.io.fail(err);
      await this.closeWatch();
      await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Closed)).catch(() => undefined);
    }
    this.setDriver(DriverState.Closed);
  }

  private async waitBackendClosed(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const s = parseXenbusState(await this.platform.xenstore.tryRead(`${this.backendPath}/state`).catch(() => undefined));
      if (s === XenbusState.Closing || s === XenbusState.Closed || s === XenbusState.Unknown) return;
      // Look again when the state watch fires (the 5 ms timer only backs up a watch that went away).
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.backendMoved = undefined;
          resolve();
        };
        const timer = setTimeout(done, 5);
        this.backendMoved = done;
      });
    }
  }

  private pendingCount(): number {
    return this.waiting.length + this.queues.reduce((n, q) => n + q.inFlight, 0);
  }

  /** The driver state alone: what `stats().state` says, without summing the counters. */
  get state(): DriverState {
    return this.driver;
  }

  stats(): BlkfrontStats {
    return {
      state: this.driver,
      inFlight: this.queues.reduce((n, q) => n + q.inFlight, 0),
      waiting: this.waiting.length,
      reconnects: this.reconnects,
      deferredGrants: this.deferred.pending,
      ...this.ops,
      ...summarise(this.counters),
    };
  }
}
