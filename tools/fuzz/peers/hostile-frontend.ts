/**
 * A scriptable, hostile blkif frontend running as an in-process domain
 * (dom0 in the tests): it grants its own ring, writes its own xenstore keys
 * and pushes raw request bytes (blkif-wire.ts), so a test can send anything
 * a real frontend could: malformed requests, bad grants, garbage indirect
 * pages, req_prod jumps, and xenbus state flapping.
 */
import type { SimPlatform } from '../../../src/platform/sim/domain.js';
import type { GrantedPages } from '../../../src/platform/types.js';
import {
  HDR_REQ_EVENT,
  HDR_REQ_PROD,
  HDR_RSP_EVENT,
  HDR_RSP_PROD,
  RING_HEADER,
  SLOT,
  readResponse,
  ringEntries,
  slotAddr,
  writeRequest,
  Xb,
  type WireRequest,
  type WireResponse,
} from './blkif-wire.js';
import { eventually } from './world.js';

export interface HostileFrontendOptions {
  backendId: number;
  frontend: string;
  backend: string;
}

export class HostileFrontend {
  ring: GrantedPages | undefined;
  port: number | undefined;
  nrEnts = 0;
  reqProdPvt = 0;
  rspCons = 0;
  readonly responses: WireResponse[] = [];
  private readonly granted: GrantedPages[] = [];
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;

  constructor(readonly platform: SimPlatform, readonly opts: HostileFrontendOptions) {
    this.dv = new DataView(platform.memory.buffer);
    this.u8 = new Uint8Array(platform.memory.buffer);
    this.u32 = new Uint32Array(platform.memory.buffer);
  }

  private get xs() {
    return this.platform.xenstore;
  }

  async setState(s: number | string): Promise<void> {
    await this.xs.write(`${this.opts.frontend}/state`, String(s));
  }

  async backendState(): Promise<number> {
    const v = await this.xs.tryRead(`${this.opts.backend}/state`).catch(() => undefined);
    return v === undefined ? -1 : Number(v);
  }

  async awaitBackend(states: number[], ms = 3000): Promise<number> {
    let seen = -1;
    const ok = await eventually(async () => states.includes((seen = await this.backendState())), ms);
    if (!ok) throw new Error(`backend state ${seen}, wanted one of ${states.join(',')}`);
    return seen;
  }

  /** Grant a fresh ring, initialise it (SHARED_RING_INIT), allocate a port, write our keys. */
  async createRing(opts: { pages?: number; persistent?: boolean; extraKeys?: Record<string, string> } = {}): Promise<void> {
    const pages = opts.pages ?? 1;
    this.ring = this.platform.grants.grantPages(this.opts.backendId, pages);
    this.nrEnts = ringEntries(pages);
    this.reqProdPvt = 0;
    this.rspCons = 0;
    this.responses.length = 0;
    const base = this.ring.addresses[0]!;
    this.u8.fill(0, base, base + RING_HEADER);
    this.setHdr(HDR_REQ_EVENT, 1);
    this.setHdr(HDR_RSP_EVENT, 1);
    this.port = this.platform.evtchn.allocUnbound(this.opts.backendId);
    this.platform.evtchn.setHandler(this.port, () => this.reap());
    const fe = this.opts.frontend;
    for (const k of ['ring-ref', 'ring-page-order', 'ring-ref0', 'ring-ref1', 'ring-ref2', 'ring-ref3']) await this.xs.rm(`${fe}/${k}`).catch(() => undefined);
    if (pages === 1) await this.xs.write(`${fe}/ring-ref`, String(this.ring.grefs[0]));
    else {
      await this.xs.write(`${fe}/ring-page-order`, String(Math.log2(pages)));
      for (const [i, g] of this.ring.grefs.entries()) await this.xs.write(`${fe}/ring-ref${i}`, String(g));
    }
    await this.xs.write(`${fe}/event-channel`, String(this.port));
    await this.xs.write(`${fe}/protocol`, 'x86_64-abi');
    await this.xs.write(`${fe}/feature-persistent`, opts.persistent ? '1' : '0');
    for (const [k, v] of Object.entries(opts.extraKeys ?? {})) await this.xs.write(`${fe}/${k}`, v);
  }

  /** Full correct handshake: ring, keys, Initialised; wait for Connected. */
  async connect(opts: { pages?: number; persistent?: boolean } = {}): Promise<void> {
    await this.awaitBackend([Xb.InitWait]);
    await this.createRing(opts);
    await this.setState(Xb.Initialised);
    await this.awaitBackend([Xb.Connected]);
  }

  hdr(off: number): number {
    return Atomics.load(this.u32, (this.ring!.addresses[0]! + off) >>> 2);
  }

  setHdr(off: number, v: number): void {
    // Seq-cst store: ordered after every slot write made before it.
    Atomics.store(this.u32, (this.ring!.addresses[0]! + off) >>> 2, v >>> 0);
  }

  /** Write raw requests at req_prod_pvt, publish req_prod, notify. */
  push(reqs: WireRequest[]): void {
    for (const r of reqs) {
      writeRequest(this.u8, this.dv, slotAddr(this.ring!.addresses[0]!, this.nrEnts, this.reqProdPvt), r);
      this.reqProdPvt = (this.reqProdPvt + 1) >>> 0;
    }
    this.setHdr(HDR_REQ_PROD, this.reqProdPvt);
    this.notify();
  }

  /** Write raw bytes into the next slot (anything at all), publish, notify. */
  pushBytes(bytes: Uint8Array): void {
    const at = slotAddr(this.ring!.addresses[0]!, this.nrEnts, this.reqProdPvt);
    this.u8.fill(0, at, at + SLOT);
    this.u8.set(bytes.subarray(0, SLOT), at);
    this.reqProdPvt = (this.reqProdPvt + 1) >>> 0;
    this.setHdr(HDR_REQ_PROD, this.reqProdPvt);
    this.notify();
  }

  setReqProd(v: number): void {
    this.setHdr(HDR_REQ_PROD, v);
    this.notify();
  }

  notify(): void {
    if (this.port !== undefined) this.platform.evtchn.notify(this.port);
  }

  /** Copy out every published response (RING_FINAL_CHECK_FOR_RESPONSES style). */
  reap(): void {
    if (!this.ring) return;
    for (;;) {
      const prod = this.hdr(HDR_RSP_PROD);
      while (this.rspCons !== prod) {
        this.responses.push(readResponse(this.dv, slotAddr(this.ring.addresses[0]!, this.nrEnts, this.rspCons)));
        this.rspCons = (this.rspCons + 1) >>> 0;
      }
      this.setHdr(HDR_RSP_EVENT, this.rspCons + 1);
      if (this.hdr(HDR_RSP_PROD) === this.rspCons) return;
    }
  }

  /** Wait for the response to request `id`. */
  async response(id: bigint, ms = 3000): Promise<WireResponse> {
    let found: WireResponse | undefined;
    const ok = await eventually(() => {
      this.reap();
      found = this.responses.find((r) => r.id === id);
      return found !== undefined;
    }, ms, 2);
    if (!ok) throw new Error(`no response to request ${id} within ${ms} ms`);
    return found!;
  }

  /** Grant `n` fresh (zeroed) pages to `domid` (default: the backend). */
  grant(n: number, readOnly = false, domid = this.opts.backendId): GrantedPages {
    const g = this.platform.grants.grantPages(domid, n, readOnly);
    this.granted.push(g);
    return g;
  }

  page(g: GrantedPages, i = 0): Uint8Array {
    const a = g.addresses[i]!;
    return this.u8.subarray(a, a + 4096);
  }

  /** End every grant and close the port (throws if the backend still maps something). */
  release(): void {
    if (this.port !== undefined) {
      this.platform.evtchn.setHandler(this.port, null);
      this.platform.evtchn.close(this.port);
      this.port = undefined;
    }
    for (const g of this.granted.splice(0)) this.platform.grants.ungrantPages(g);
    if (this.ring) this.platform.grants.ungrantPages(this.ring);
    this.ring = undefined;
  }
}
