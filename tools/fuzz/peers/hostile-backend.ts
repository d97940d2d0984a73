/**
 * A scriptable, hostile blkif backend running as an in-process domain. It
 * does the xenbus handshake itself and works on the shared ring with raw
 * reads and writes (blkif-wire.ts), so a test can answer correctly, corrupt
 * any response field, reorder, withhold, move rsp_prod anywhere, rewrite
 * slots after publishing, keep grants mapped and scribble on them, storm
 * event notifications, flap its xenbus state and write nonsense keys.
 *
 * By default it serves a memory disk correctly; a test replaces
 * `onRequest` to misbehave.
 */
import type { ForeignMapping } from '../../../src/platform/types.js';
import type { SimPlatform } from '../../../src/platform/sim/domain.js';
import {
  HDR_REQ_EVENT,
  HDR_REQ_PROD,
  HDR_RSP_PROD,
  OP_FLUSH_DISKCACHE,
  OP_READ,
  OP_WRITE,
  PAGE,
  RSP_ERROR,
  RSP_OKAY,
  readRequest,
  ringEntries,
  slotAddr,
  writeResponse,
  Xb,
  type WireRequest,
  type WireResponse,
} from './blkif-wire.js';
import { eventually, tick } from './world.js';
import { DisconnectedError } from '../../../src/errors.js';

export interface Received {
  /** Ring index the request was taken from. */
  index: number;
  req: WireRequest;
}

export interface HostileBackendOptions {
  /** Frontend's domid (its grants name us; we map from it). */
  frontendId: number;
  frontend: string;
  backend: string;
  diskBytes?: number;
}

export const DEFAULT_PROBE_KEYS: Record<string, string> = {
  'max-ring-page-order': '0',
  'multi-queue-max-queues': '1',
};

export function defaultConnectKeys(diskBytes: number): Record<string, string> {
  return {
    sectors: String(diskBytes / 512),
    'sector-size': '512',
    'physical-sector-size': '512',
    info: '0',
    'feature-flush-cache': '1',
    'feature-barrier': '0',
    'feature-discard': '0',
    'feature-persistent': '0',
  };
}

export class HostileBackend {
  readonly disk: Uint8Array;
  readonly received: Received[] = [];
  /** Called for every request taken off the ring. Default: serve it correctly. */
  onRequest: (r: Received, be: HostileBackend) => void = (r, be) => be.serve(r);
  /** Keep data grants mapped after answering (to write into them later). */
  keepMappings = false;
  readonly kept: ForeignMapping[] = [];
  ring: ForeignMapping | undefined;
  port: number | undefined;
  nrEnts = 0;
  reqCons = 0;
  rspProdPvt = 0;
  /** Event deliveries seen (notifications from the frontend). */
  events = 0;
  /** Bumped by release(): a followClose() loop from before it stops waiting. */
  private releases = 0;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;

  constructor(readonly platform: SimPlatform, readonly opts: HostileBackendOptions) {
    this.disk = new Uint8Array(opts.diskBytes ?? 1 << 20);
    this.dv = new DataView(platform.memory.buffer);
    this.u8 = new Uint8Array(platform.memory.buffer);
    this.u32 = new Uint32Array(platform.memory.buffer);
  }

  private get xs() {
    return this.platform.xenstore;
  }

  // ------------------------------------------------------------ xenstore

  async writeKeys(keys: Record<string, string | undefined>): Promise<void> {
    for (const [k, v] of Object.entries(keys)) {
      if (v === undefined) await this.xs.rm(`${this.opts.backend}/${k}`).catch(() => undefined);
      else await this.xs.write(`${this.opts.backend}/${k}`, v);
    }
  }

  async setState(s: number | string): Promise<void> {
    await this.xs.write(`${this.opts.backend}/state`, String(s));
  }

  /** The frontend's state, -1 when unset; throws once xenstore is gone (nothing left to wait for). */
  async frontendState(): Promise<number> {
    const v = await this.xs.tryRead(`${this.opts.frontend}/state`).catch((err: unknown) => {
      if (err instanceof DisconnectedError) throw err; // xenstore is gone: stop waiting
      return undefined;
    });
    return v === undefined ? -1 : Number(v);
  }

  /** Wait until the frontend's state is one of `states`. */
  async awaitFrontend(states: number[], ms = 3000, cancelled: () => boolean = () => false): Promise<number> {
    let seen = -1;
    // A frontend that gave up stays Closed: stop waiting once it has for a while.
    // (A reconnecting frontend passes through Closed, as Linux's does, and moves on.)
    let closedSince: number | undefined;
    const ok = await eventually(async () => {
      if (cancelled()) throw new Error(`cancelled while waiting for frontend state ${states.join(',')}`);
      seen = await this.frontendState();
      if (seen !== Xb.Closed) closedSince = undefined;
      else closedSince ??= Date.now();
      return states.includes(seen) || (closedSince !== undefined && Date.now() - closedSince > 300);
    }, ms);
    if (ok && !states.includes(seen)) throw new Error(`frontend closed (state ${seen}) while waiting for ${states.join(',')}`);
    if (!ok) throw new Error(`frontend state ${seen}, wanted one of ${states.join(',')}`);
    return seen;
  }

  /** Probe: offer limits, go InitWait. */
  async probe(keys: Record<string, string | undefined> = DEFAULT_PROBE_KEYS): Promise<void> {
    await this.writeKeys(keys);
    await this.setState(Xb.InitWait);
  }

  /** Read the frontend's ring keys, map the ring, bind the event channel. */
  async mapRing(): Promise<void> {
    const fe = this.opts.frontend;
    const order = Number((await this.xs.tryRead(`${fe}/ring-page-order`)) ?? '0');
    const refs: number[] = [];
    if (order === 0) refs.push(Number(await this.xs.read(`${fe}/ring-ref`)));
    else for (let i = 0; i < 1 << order; i++) refs.push(Number(await this.xs.read(`${fe}/ring-ref${i}`)));
    const remotePort = Number(await this.xs.read(`${fe}/event-channel`));
    this.ring = this.platform.grants.mapForeign(this.opts.frontendId, refs, false);
    this.nrEnts = ringEntries(refs.length);
    // BACK_RING_ATTACH: start from the responses the front has seen.
    this.rspProdPvt = this.hdr(HDR_RSP_PROD);
    this.reqCons = this.rspProdPvt;
    this.port = this.platform.evtchn.bindInterdomain(this.opts.frontendId, remotePort);
    this.platform.evtchn.setHandler(this.port, () => {
      this.events++;
      this.takeRequests();
    });
  }

  /**
   * Full, correct handshake up to Connected (with `connectKeys` overriding the
   * defaults). `cancelled` ends the wait for the frontend early (a test that
   * knows its frontend failed for good: it would only time out).
   */
  async handshake(opts: { probe?: Record<string, string | undefined>; connect?: Record<string, string | undefined>; cancelled?: () => boolean } = {}): Promise<void> {
    await this.probe(opts.probe ?? DEFAULT_PROBE_KEYS);
    // Only a fresh Initialised names a ring set up for us; a Connected seen now is stale.
    await this.awaitFrontend([Xb.Initialised], 3000, opts.cancelled);
    await this.mapRing();
    await this.writeKeys({ ...defaultConnectKeys(this.disk.byteLength), ...opts.connect });
    await this.setState(Xb.Connected);
  }

  // ---------------------------------------------------------------- ring

  get ringBase(): number {
    return this.ring!.addresses[0]!;
  }

  hdr(off: number): number {
    return Atomics.load(this.u32, (this.ringBase + off) >>> 2);
  }

  setHdr(off: number, v: number): void {
    // Ordered after every slot write made before it (Atomics store is seq-cst).
    Atomics.store(this.u32, (this.ringBase + off) >>> 2, v >>> 0);
  }

  /** Take every published request; RING_FINAL_CHECK_FOR_REQUESTS style. */
  takeRequests(): void {
    if (!this.ring) return;
    for (;;) {
      const prod = this.hdr(HDR_REQ_PROD);
      while (this.reqCons !== prod) {
        const index = this.reqCons;
        const req = readRequest(this.dv, slotAddr(this.ringBase, this.nrEnts, index));
        this.reqCons = (this.reqCons + 1) >>> 0;
        const r = { index, req };
        this.received.push(r);
        this.onRequest(r, this);
      }
      this.setHdr(HDR_REQ_EVENT, this.reqCons + 1);
      if (this.hdr(HDR_REQ_PROD) === this.reqCons) return;
    }
  }

  /** Do the request's I/O on the memory disk. Returns the wire status. */
  doIo(r: Received): number {
    const { req } = r;
    if (req.op === OP_FLUSH_DISKCACHE) return RSP_OKAY;
    if (req.op !== OP_READ && req.op !== OP_WRITE) return RSP_ERROR;
    const isWrite = req.op === OP_WRITE;
    let m: ForeignMapping;
    try {
      m = this.platform.grants.mapForeign(this.opts.frontendId, req.segs.map((s) => s.gref), isWrite);
    } catch {
      return RSP_ERROR;
    }
    let at = Number(req.sector) * 512;
    req.segs.forEach((s, i) => {
      const page = m.addresses[i]! + s.first * 512;
      const len = (s.last - s.first + 1) * 512;
      if (isWrite) this.disk.set(this.u8.subarray(page, page + len), at);
      else this.u8.set(this.disk.subarray(at, at + len), page);
      at += len;
    });
    if (this.keepMappings) this.kept.push(m);
    else this.platform.grants.unmapForeign(m);
    return RSP_OKAY;
  }

  /** Serve correctly: do the I/O, answer, publish, notify. */
  serve(r: Received): void {
    const status = this.doIo(r);
    this.respond({ id: r.req.id, op: r.req.op === 6 ? r.req.byte1 : r.req.op, status });
    this.publish();
  }

  /** Write a response at rsp_prod_pvt (not yet visible). Returns its ring index. */
  respond(rsp: WireResponse): number {
    const index = this.rspProdPvt;
    writeResponse(this.u8, this.dv, slotAddr(this.ringBase, this.nrEnts, index), rsp);
    this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
    return index;
  }

  /** Rewrite the response slot at ring `index` (published or not). */
  rewrite(index: number, rsp: WireResponse): void {
    writeResponse(this.u8, this.dv, slotAddr(this.ringBase, this.nrEnts, index), rsp);
  }

  /** Publish rsp_prod = rsp_prod_pvt and notify. */
  publish(): void {
    this.setHdr(HDR_RSP_PROD, this.rspProdPvt);
    this.notify();
  }

  /** Move rsp_prod anywhere, and notify. */
  setRspProd(v: number): void {
    this.setHdr(HDR_RSP_PROD, v);
    this.notify();
  }

  notify(): void {
    if (this.port !== undefined) this.platform.evtchn.notify(this.port);
  }

  /** Notify `n` times with nothing new on the ring, letting the frontend run between. */
  async storm(n: number, until?: () => boolean): Promise<number> {
    let i = 0;
    for (; i < n; i++) {
      if (until?.()) break;
      this.notify();
      await tick();
    }
    return i;
  }

  /** Write `bytes` into every page still kept mapped. */
  scribbleKept(byte: number): void {
    for (const m of this.kept) for (const a of m.addresses) this.u8.fill(byte, a, a + PAGE);
  }

  /** Let go of everything: data mappings, the ring, the port (a backend closing down). */
  release(): void {
    this.releases++;
    for (const m of this.kept.splice(0)) this.platform.grants.unmapForeign(m);
    if (this.port !== undefined) {
      this.platform.evtchn.setHandler(this.port, null);
      try {
        this.platform.evtchn.close(this.port);
      } catch {
        // already closed by the peer's teardown? our end stays ours: ignore
      }
      this.port = undefined;
    }
    if (this.ring) this.platform.grants.unmapForeign(this.ring);
    this.ring = undefined;
  }

  /**
   * Behave on the way out: when the frontend goes Closing, let go of
   * everything and go Closed. The wait ends early when release() is called
   * or xenstore goes away (the world stopped): a detached loop must not keep
   * the process alive after the case (it once held `xenpv fuzz frontend`
   * open for 30 s after printing OK). Returns the loop, for who wants to wait.
   */
  followClose(): Promise<void> {
    return (async () => {
      const at = this.releases;
      const released = (): boolean => this.releases !== at;
      const closing = await this.awaitFrontend([Xb.Closing], 30_000, released).then(() => true, () => false);
      if (released() && !closing) return;
      this.release();
      await this.setState(Xb.Closed).catch(() => undefined);
    })();
  }
}
