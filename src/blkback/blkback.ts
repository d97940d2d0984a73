/**
 * Blkback: serves a BlockDevice to one frontend over blkif. Runs inside the
 * backend domain (a worker in the simulation).
 *
 * Lifecycle (xen/io/blkif.h, as Linux's xen-blkback does it):
 *   probe: write limits, state InitWait
 *   frontend Initialised/Connected → read its keys, map rings, bind ports,
 *       write geometry and features, state Connected
 *   frontend Closing → stop rings, state Closing;  Closed → state Closed
 *   frontend Initialising while we are Closed → InitWait again (reconnect)
 */
import { XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64, XenbusState } from '../blkif/constants.js';
import type { BlockDevice } from '../block/types.js';
import { InvalidArgumentError, ProtocolError } from '../errors.js';
import { parseUnsigned } from '../blkfront/features.js';
import { parseXenbusState, xenbusStateName } from '../blkfront/state.js';
import { debug } from '../util/debug.js';

const log = debug('xenpv:blkback');
import type { Platform, XsWatch } from '../platform/types.js';
import { Abi, type RingEngine } from '../ring/engine.js';
import { checkFeatures, DEFAULT_FEATURES, writeConnectKeys, writeProbeKeys, type BackendFeatures } from './features.js';
import { RingServer, type BackendHealth } from './ring-server.js';

export interface BlkbackOptions {
  /** Backend directory, e.g. /local/domain/1/backend/vbd/0/51712. */
  backend: string;
  device: BlockDevice;
  engine: RingEngine;
  features?: Partial<BackendFeatures>;
  readOnly?: boolean;
  /**
   * Serve reads and writes with the device's synchronous entry points when
   * it offers them (the `file` flavour; src/blkback/sync-io.ts). They block
   * this thread in time slices: only for a backend that owns its thread (the
   * simulation's backend domain). Default false.
   */
  syncIo?: boolean;
}

/** Bad options are an `invalid-argument` naming the option, before anything is written. */
function checkBlkbackOptions(o: BlkbackOptions): void {
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('options', 'must be an object');
  if (typeof o.backend !== 'string' || !o.backend.startsWith('/')) {
    throw new InvalidArgumentError('backend', 'must be an absolute xenstore path');
  }
  if (typeof (o.device as Partial<BlockDevice> | undefined)?.info !== 'function') {
    throw new InvalidArgumentError('device', 'must be a BlockDevice');
  }
  if (typeof (o.engine as Partial<RingEngine> | undefined)?.ringSize !== 'function') {
    throw new InvalidArgumentError('engine', "must be a RingEngine (createEngine('wasm' | 'js', memory))");
  }
  if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean') {
    throw new InvalidArgumentError('readOnly', `must be a boolean, got ${typeof o.readOnly}`);
  }
  if (o.syncIo !== undefined && typeof o.syncIo !== 'boolean') {
    throw new InvalidArgumentError('syncIo', `must be a boolean, got ${typeof o.syncIo}`);
  }
  checkFeatures(o.features);
}

export const enum BackAction {
  None = 'none',
  Connect = 'connect',
  Close = 'close', // stop rings, write Closing (frontend is closing)
  Closed = 'closed', // stop rings, write Closed
  Reprobe = 'reprobe', // back to InitWait for a reconnecting frontend
}

/** What the backend does when the frontend's state reads `front` while ours is `back`. */
export function onFrontendState(back: XenbusState, front: XenbusState): BackAction {
  switch (front) {
    case XenbusState.Initialised:
      return back === XenbusState.InitWait ? BackAction.Connect : BackAction.None;
    case XenbusState.Connected:
      // Connected while we wait in InitWait is stale (left from a backend before
      // us): its keys name a ring nobody set up for us. The frontend answers
      // our InitWait with a fresh handshake and Initialised.
      return BackAction.None;
    case XenbusState.Closing:
      return back === XenbusState.Connected || back === XenbusState.InitWait ? BackAction.Close : BackAction.None;
    case XenbusState.Closed:
    case XenbusState.Unknown:
      return back === XenbusState.Closed ? BackAction.None : BackAction.Closed;
    case XenbusState.Initialising:
      // A frontend restarting its handshake: drop the old rings and offer InitWait.
      return back === XenbusState.InitWait ? BackAction.None : BackAction.Reprobe;
    case XenbusState.InitWait:
    case XenbusState.Reconfiguring:
    case XenbusState.Reconfigured:
      return BackAction.None;
  }
}

export class Blkback {
  private state = XenbusState.Initialising;
  private servers: RingServer[] = [];
  private frontendPath = '';
  private frontendId = 0;
  private watch: XsWatch | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly features: BackendFeatures;
  private unsubscribeResize: (() => void) | undefined;
  /** Outlives rings and reconnects: a failed flush is never forgotten. */
  private readonly health: BackendHealth = {};
  /** Why the last connection attempt was refused (for tests and logs). */
  lastError: string | undefined;

  private constructor(private readonly platform: Platform, private readonly opts: BlkbackOptions) {
    this.features = { ...DEFAULT_FEATURES, ...opts.features };
  }

  static async start(platform: Platform, opts: BlkbackOptions): Promise<Blkback> {
    checkBlkbackOptions(opts);
    const b = new Blkback(platform, opts);
    await b.probe();
    return b;
  }

  get xenbusState(): XenbusState {
    return this.state;
  }

  private async probe(): Promise<void> {
    const xs = this.platform.xenstore;
    const dir = this.opts.backend;
    const fe = await xs.tryRead(`${dir}/frontend`);
    const feId = await xs.tryRead(`${dir}/frontend-id`);
    if (fe === undefined || feId === undefined || !/^\d{1,5}$/.test(feId)) {
      throw new ProtocolError(`${dir}: missing or malformed frontend / frontend-id`);
    }
    this.frontendPath = fe;
    this.frontendId = Number(feId);
    await writeProbeKeys(xs, dir, this.features);
    await this.setState(XenbusState.InitWait);
    this.watch = await xs.watch(`${fe}/state`);
    void this.watchLoop(this.watch);
    this.unsubscribeResize = this.opts.device.onResize(() => this.enqueue(() => this.writeSectors()));
  }

  private async watchLoop(w: XsWatch): Promise<void> {
    try {
      for await (const _ of w) this.enqueue(() => this.onFrontendChanged());
    } catch {
      // connection gone
    }
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      this.lastError = String(err);
      if (log.enabled) log(`${this.opts.backend}: error: ${this.lastError}`);
    });
  }

  private async setState(s: XenbusState): Promise<void> {
    if (log.enabled) log(`${this.opts.backend}: state ${xenbusStateName(this.state)} -> ${xenbusStateName(s)}`);
    this.state = s;
    await this.platform.xenstore.write(`${this.opts.backend}/state`, String(s));
  }

  private async onFrontendChanged(): Promise<void> {
    const front = parseXenbusState(await this.platform.xenstore.tryRead(`${this.frontendPath}/state`));
    const action = onFrontendState(this.state, front);
    if (log.enabled) log(`${this.opts.backend}: frontend state ${xenbusStateName(front)} while ${xenbusStateName(this.state)}: ${action}`);
    switch (action) {
      case BackAction.None:
        return;
      case BackAction.Connect:
        return this.connect();
      case BackAction.Close:
        await this.stopRings();
        return this.setState(XenbusState.Closing);
      case BackAction.Closed:
        await this.stopRings();
        return this.setState(XenbusState.Closed);
      case BackAction.Reprobe:
        await this.stopRings();
        return this.setState(XenbusState.InitWait);
    }
  }

  private async connect(): Promise<void> {
    try {
      await this.mapRings();
    } catch (err) {
      // A frontend with bad keys cannot hurt us: refuse, say why, close.
      await this.stopRings();
      this.lastError = err instanceof Error ? err.message : String(err);
      if (log.enabled) log(`${this.opts.backend}: refused the frontend's ring: ${this.lastError}`);
      await this.platform.xenstore.write(`${this.opts.backend}/error`, this.lastError).catch(() => undefined);
      await this.setState(XenbusState.Closed);
      return;
    }
    await this.writeSectors(true);
    await this.setState(XenbusState.Connected);
  }

  private async writeSectors(all = false): Promise<void> {
    const info = this.opts.device.info();
    const geometry = {
      sectors512: info.sizeSectors * BigInt(info.sectorSize / 512),
      sectorSize: info.sectorSize,
      physicalSectorSize: info.physicalSectorSize,
      readOnly: this.readOnly,
    };
    if (all) {
      await writeConnectKeys(this.platform.xenstore, this.opts.backend, this.features, geometry);
      return;
    }
    if (this.state !== XenbusState.Connected) return; // the next connect writes it
    await this.platform.xenstore.write(`${this.opts.backend}/sectors`, String(geometry.sectors512));
    // Rewrite our (unchanged) state so the frontend's watch fires, as Linux's xen_vbd_resize does.
    await this.setState(XenbusState.Connected);
  }

  private get readOnly(): boolean {
    return this.opts.readOnly === true || !this.opts.device.info().readWrite;
  }

  /** Read the frontend's keys (all untrusted) and start a server per queue. */
  private async mapRings(): Promise<void> {
    const xs = this.platform.xenstore;
    const fe = this.frontendPath;
    const num = async (path: string, max: bigint, dflt?: bigint): Promise<number> => {
      const v = await xs.tryRead(path);
      if (v === undefined) {
        if (dflt === undefined) throw new ProtocolError(`frontend key ${path} is missing`);
        return Number(dflt);
      }
      return Number(parseUnsigned(v, path, max));
    };
    const order = await num(`${fe}/ring-page-order`, BigInt(this.features.maxRingPageOrder), 0n);
    const nq = await num(`${fe}/multi-queue-num-queues`, BigInt(this.features.maxQueues), 1n);
    if (nq < 1) throw new ProtocolError('multi-queue-num-queues must be at least 1');
    const proto = (await xs.tryRead(`${fe}/protocol`)) ?? XEN_IO_PROTO_ABI_X86_64;
    let abi: Abi;
    if (proto === XEN_IO_PROTO_ABI_X86_64) abi = Abi.X86_64;
    else if (proto === XEN_IO_PROTO_ABI_X86_32) abi = Abi.X86_32;
    else throw new ProtocolError(`unsupported protocol ${JSON.stringify(proto.slice(0, 32))}`);
    const persistent = this.features.persistent && (await num(`${fe}/feature-persistent`, 1n, 0n)) === 1;
    if (log.enabled) log(`${this.opts.backend}: frontend dom${this.frontendId} negotiated ring-page-order ${order}, ${nq} queue(s), ${proto}, persistent ${persistent}`);
    for (let q = 0; q < nq; q++) {
      const dir = nq === 1 ? fe : `${fe}/queue-${q}`;
      const refs: number[] = [];
      if (order === 0) refs.push(await num(`${dir}/ring-ref`, 0xffffffffn));
      else for (let i = 0; i < 1 << order; i++) refs.push(await num(`${dir}/ring-ref${i}`, 0xffffffffn));
      const port = await num(`${dir}/event-channel`, 0xffffffffn);
      this.servers.push(
        new RingServer(this.opts.engine, this.platform, this.opts.device, {
          frontend: this.frontendId,
          ringRefs: refs,
          remotePort: port,
          abi,
          persistent,
          features: this.features,
          readOnly: this.readOnly,
          health: this.health,
          syncIo: this.opts.syncIo === true,
        }, (why) => this.enqueue(() => this.fatal(why))),
      );
    }
  }

  /** The frontend broke its ring: stop serving it. */
  private async fatal(why: string): Promise<void> {
    this.lastError = why;
    if (log.enabled) log(`${this.opts.backend}: frontend broke its ring: ${why}`);
    await this.stopRings();
    await this.platform.xenstore.write(`${this.opts.backend}/error`, why).catch(() => undefined);
    await this.setState(XenbusState.Closed);
  }

  private async stopRings(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const s of servers) await s.stop();
  }

  /** Stop serving and close (the backend domain is going away). */
  async stop(): Promise<void> {
    this.unsubscribeResize?.();
    await this.chain;
    await this.stopRings();
    const w = this.watch;
    this.watch = undefined;
    await w?.unwatch().catch(() => undefined);
    await this.setState(XenbusState.Closed).catch(() => undefined);
  }

  /** Why the store failed a flush, if it did: every request since is answered BLKIF_RSP_ERROR. */
  get flushFailure(): string | undefined {
    return this.health.flushFailure;
  }

  /** Rings currently served (for tests). */
  get queueCount(): number {
    return this.servers.length;
  }
}
