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
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  XenbusState,
} from '../blkif/constants.js';
import { ResizeNotifier } from '../block/resize.js';
import type { BlockDevice, BlockInfo, ResizeListener } from '../block/types.js';
import { validateDiscard, validateFlush, validateRead, validateWrite } from '../block/validate.js';
import { DisconnectedError, ProtocolError, TimeoutError, XenpvError } from '../errors.js';
import type { Platform, XsWatch } from '../platform/types.js';
import { dropFeature, readBackendInfo, readBackendLimits, toBlockInfo, MAX_INDIRECT_SEGMENTS, type BackendInfo } from './features.js';
import { resolveOptions, type BlkfrontOptions, type ResolvedOptions } from './options.js';
import { keepAlive } from '../util/keep-alive.js';

export type { BlkfrontOptions } from './options.js';
import { outcomeOf } from './completion.js';
import { readVbdBackend, waitBackendClosed, within, writeFrontendKeys } from './handshake.js';
import { IoBufferPool } from './io-buffers.js';
import { DeferredUngrant } from './page-supply.js';
import { controlRequest, dataRequest, discardRequest, IoOp, type RingRequest } from './request.js';
import { RingSet } from './rings.js';
import { ByteStream, planChunksCut, planDiscard } from './split.js';
import { Action, DriverState, onBackendState, parseXenbusState, xenbusStateName } from './state.js';
import { summarise, type BlkfrontStats, type OperationCounts } from './stats.js';

export type { BlkfrontStats } from './stats.js';
import { debug } from '../util/debug.js';

const log = debug('xenpv:blkfront');

const WIRE_SECTOR = 512;

export class Blkfront implements BlockDevice {
  private driver = DriverState.Connecting;
  private backendPath = '';
  private backendId = 0;
  private readonly rings: RingSet;
  private backend: BackendInfo | undefined;
  private currentInfo: BlockInfo | undefined;
  private readonly resize = new ResizeNotifier();
  private readonly writes = new Set<Promise<void>>();
  private watch: XsWatch | undefined;
  private chain: Promise<void> = Promise.resolve();
  private failure: XenpvError | undefined;
  private reconnects = 0;
  private readonly deferred: DeferredUngrant;
  private readonly buffers: IoBufferPool;
  private maxPages = 11;
  private closing: Promise<void> | undefined;
  /** Set while close() waits for the backend to close: the state watch fired. */
  private backendMoved: (() => void) | undefined;
  /** Resolves once disconnect() has finished (never rejects): for owners that track devices. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private connected!: { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> };
  private readonly ops: OperationCounts = { reads: 0, writes: 0, flushes: 0, discards: 0 };

  private constructor(private readonly platform: Platform, private readonly opts: ResolvedOptions) {
    this.deferred = new DeferredUngrant(platform.grants, opts.ungrantRetryMs);
    this.buffers = new IoBufferPool(platform.memory, platform.grants, this.deferred);
    this.rings = new RingSet(platform, opts.engine, this.deferred, {
      completed: (req, status) => this.completed(req, status),
      fatal: (err) => void this.fail(err),
      drained: () => this.pump(),
      borrow: (req) => this.buffers.borrow(req.io.stream!, req.byteOffset, req.byteLength, this.backendId),
    });
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
      const dev = new Blkfront(platform, resolveOptions(opts));
      await dev.start();
      return dev;
    })());
  }

  private async start(): Promise<void> {
    const xs = this.platform.xenstore;
    const front = this.opts.frontend;
    const { path: backend, domid } = await readVbdBackend(xs, front);
    this.backendPath = backend;
    this.backendId = domid;
    if (log.enabled) log(`${front}: attach to ${backend} (dom${domid})`);
    await xs.write(`${front}/state`, String(XenbusState.Initialising));
    this.watch = await xs.watch(`${backend}/state`);
    void this.watchLoop(this.watch);
    const ms = this.opts.connectTimeoutMs;
    try {
      await within(this.connected.promise, ms, () => new TimeoutError(`${front}: backend ${backend} did not connect within ${ms} ms`));
    } catch (err) {
      await this.fail(err instanceof XenpvError ? err : new ProtocolError(String(err)));
      await this.closeWatch();
      throw err;
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
    const order = Math.min(limits.maxRingPageOrder, this.opts.maxRingPageOrder);
    const nq = Math.min(limits.maxQueues, this.opts.queues);
    const abi = this.opts.abi;
    // Tables are sized for the most pages one request can carry.
    const indirectCap = this.opts.indirect === false ? 0 : MAX_INDIRECT_SEGMENTS;
    if (log.enabled) log(`${this.opts.frontend}: setup: ring-page-order ${order} (backend max ${limits.maxRingPageOrder}), ${nq} queue(s) (backend max ${limits.maxQueues}), abi ${abi}`);
    this.rings.open(this.backendId, { queues: nq, ringPages: 1 << order, abi, maxIndirectSegments: indirectCap, eventStormLimit: this.opts.eventStormLimit });
    await writeFrontendKeys(xs, this.opts.frontend, {
      ringPageOrder: order,
      queues: this.rings.queues.map((q) => ({ ringRefs: q.ringRefs, port: q.port })),
      abi,
      persistent: this.opts.persistent,
    });
    // fail()/close() tear down the rings themselves; just stop here.
    if (this.stale()) return;
    await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Initialised));
    if (this.stale()) return;
    this.setDriver(DriverState.Initialised);
    // The backend may have gone Connected before our watch fired: look again.
    this.enqueue(() => this.onBackendChanged());
  }

  private async connect(): Promise<void> {
    const xs = this.platform.xenstore;
    const info = await readBackendInfo(xs, this.backendPath);
    if (this.stale()) return;
    const persistent = this.opts.persistent && info.persistent;
    this.rings.usePages(persistent, this.backendId);
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
    this.rings.waiting.resplit(this.maxPages);
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
    this.rings.waiting.unshift(this.rings.teardown());
    await this.platform.xenstore.write(`${this.opts.frontend}/state`, String(XenbusState.Closed));
    // The backend may already be Closed or waiting again: look once more.
    this.enqueue(() => this.onBackendChanged());
  }

  /** A backend that is not ours to use (see Action.Reset): close our side so it closes too. */
  private async reset(): Promise<void> {
    this.setDriver(DriverState.Suspended);
    this.rings.waiting.unshift(this.rings.teardown());
    await this.platform.xenstore.write(`${this.opts.frontend}/state`, String(XenbusState.Closed));
  }

  // ------------------------------------------------------------ data path

  /** Hand waiting requests to rings with room. */
  private pump(): void {
    if (this.driver === DriverState.Connected) this.rings.pump(() => this.driver === DriverState.Connected);
  }

  private completed(req: RingRequest, status: number): void {
    const o = outcomeOf(req, status);
    if (!o.error) {
      req.io.complete();
      return;
    }
    // The backend cannot do this after all: stop offering it.
    if (o.disableOp && this.backend && dropFeature(this.backend, req.op)) this.currentInfo = this.blockInfo();
    req.io.fail(o.error);
    if (o.failDevice) void this.fail(o.error);
  }

  /** BlockInfo for the current backend, with what was negotiated (indirect segments, persistent grants). */
  private blockInfo(): BlockInfo {
    const info = toBlockInfo(this.backend!, this.maxPages > 11 ? this.maxPages : 0);
    // features.persistent says whether persistent grants are in use, not
    // whether the backend offers them: we may have declined (opts.persistent).
    return { ...info, features: { ...info.features, persistent: this.rings.persistent ?? false } };
  }

  private submit(io: IoOp, reqs: RingRequest[]): Promise<void> {
    io.deadline(this.opts.requestTimeoutMs);
    io.expect(reqs.length);
    this.rings.waiting.push(reqs);
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

  /**
   * An I/O buffer: `bytes` bytes over whole pages granted to the backend for
   * the buffer's life, so reads and writes through it copy nothing in
   * blkfront (see src/blkfront/io-buffers.ts). Any Uint8Array still works.
   */
  async allocateBuffer(bytes: number): Promise<Uint8Array> {
    this.gate();
    return this.buffers.allocate(bytes, this.backendId);
  }

  /** End an I/O buffer before disconnect (which ends them all). */
  async releaseBuffer(buffer: Uint8Array): Promise<void> {
    this.gate();
    this.buffers.release(buffer);
  }

  async read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    const info = this.gate();
    if (Array.isArray(buffers)) IoBufferPool.checkNotReleased(buffers);
    const req = validateRead(info, sector, buffers);
    this.ops.reads++;
    return this.rw(BLKIF_OP_READ, info, req.sector, req.buffers, req.bytes);
  }

  async write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    const info = this.gate();
    if (Array.isArray(buffers)) IoBufferPool.checkNotReleased(buffers);
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
    const reqs = planChunksCut(wire, bytes, this.maxPages, this.buffers.cuts(buffers)).map((c) =>
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
    for (const r of this.rings.teardown()) r.io.fail(err);
    for (const r of this.rings.waiting.drain()) r.io.fail(err);
    this.buffers.teardown();
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
    const grace = this.opts.disconnectTimeoutMs;
    const deadline = Date.now() + grace;
    while (this.driver === DriverState.Connected && this.rings.pending > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
    const err = new DisconnectedError('device disconnected with the request pending');
    await this.chain;
    if (this.driver !== DriverState.Failed) {
      this.setDriver(DriverState.Closing);
      const xs = this.platform.xenstore;
      await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Closing)).catch(() => undefined);
      await waitBackendClosed(xs, this.backendPath, grace, (wake) => {
        this.backendMoved = wake;
      });
      this.backendMoved = undefined;
      this.setDriver(DriverState.Closed);
      for (const r of this.rings.teardown()) r.io.fail(err);
      for (const r of this.rings.waiting.drain()) r.io.fail(err);
      this.buffers.teardown();
      await this.closeWatch();
      await xs.write(`${this.opts.frontend}/state`, String(XenbusState.Closed)).catch(() => undefined);
    }
    this.setDriver(DriverState.Closed);
  }

  /** The driver state alone: what `stats().state` says, without summing the counters. */
  get state(): DriverState {
    return this.driver;
  }

  stats(): BlkfrontStats {
    return {
      state: this.driver,
      inFlight: this.rings.inFlight,
      waiting: this.rings.waiting.length,
      reconnects: this.reconnects,
      deferredGrants: this.deferred.pending,
      ioBufferPages: this.buffers.pagesInUse,
      ...this.ops,
      ...summarise(this.rings.counters),
    };
  }
}
