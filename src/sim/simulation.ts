/**
 * The whole simulated machine in one object: a hypervisor (shared memory,
 * grant tables, event channels), a xenstored, dom0 (this thread: toolstack
 * and frontends), and one backend domain (a worker thread running blkback)
 * per disk.
 *
 *   const sim = await Simulation.start();
 *   const disk = await sim.createDisk({ sizeBytes: 64 << 20, path: 'disk.img' });
 *   const dev = await sim.attach(disk);           // a BlockDevice
 *   await dev.write(0n, [data]); await dev.read(0n, [buf]);
 *   await sim.restartBackend(disk);               // dev reconnects by itself
 *   await sim.stop();
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import type { BackendFeatures } from '../blkback/features.js';
import { Blkfront, type BlkfrontOptions } from '../blkfront/blkfront.js';
import { createVbd, destroyVbd, type VbdPaths } from '../blkfront/toolstack.js';
import { XenbusState } from '../blkif/constants.js';
import { checkSectorSize } from '../block/validate.js';
import { DriverState } from '../blkfront/state.js';
import { DisconnectedError, InvalidArgumentError, IoError, LockedError } from '../errors.js';
import { reviveError } from '../util/wire-error.js';
import { keepAlive } from '../util/keep-alive.js';
import type { SimPlatform } from '../platform/sim/domain.js';
import { Hypervisor } from '../platform/sim/hypervisor.js';
import { createEngine } from '../ring/index.js';
import { Abi } from '../ring/engine.js';
import { compiledModule } from '../util/compiled.js';
import { XenstoreServer } from '../xenstore/server/server.js';
import type { BackendCommand, BackendDomainData, BackendReply } from './backend-domain.js';
import { prepareBacking } from './backing.js';

export interface SimulationOptions {
  /** Also serve xenstored on this unix socket (for Xen's own tools). */
  xenstoreSocket?: string;
  /** Pages in the shared pool (default 32768 = 128 MiB), split between domains. */
  poolPages?: number;
  /** Domain slots, dom0 included (default 4). */
  maxDomains?: number;
  /** Grant-table frames per domain, 512 grants each (default 32). */
  grantFrames?: number;
}

export interface DiskOptions {
  /**
   * Disk size. Required for a memory disk and for a file to be created; a
   * host block device gives its own size (if given, it must match).
   */
  sizeBytes?: number;
  /**
   * Serve this regular file (created sparse with sizeBytes if missing, grown
   * if smaller) or host block device; else a memory disk. A path served
   * read-write is served once (`locked` otherwise; read-only disks may share
   * one); the backend holds the image lock (README "Storage rules").
   */
  path?: string;
  readOnly?: boolean;
  sectorSize?: number;
  features?: Partial<BackendFeatures>;
  /** Engine the backend uses (default wasm). */
  backendEngine?: 'wasm' | 'js';
}

export interface SimDisk {
  readonly devid: number;
  readonly backendDomid: number;
  readonly paths: VbdPaths;
  readonly options: DiskOptions;
}

export interface AttachOptions extends Partial<Omit<BlkfrontOptions, 'engine' | 'frontend' | 'abi'>> {
  engine?: 'wasm' | 'js';
  abi?: 'x86_64-abi' | 'x86_32-abi';
}

interface DiskRecord {
  disk: SimDisk;
  /** The running backend domain, once it said ready. */
  worker?: Worker;
  /**
   * The one frontend attached (or attaching) to this disk; forgotten once it
   * disconnects, so a simulation attaching and detaching for days holds only
   * what is attached now.
   */
  device?: Blkfront | 'attaching';
  /** Backend operations (kill, restart, resize) run one at a time, in call order. */
  lock: Promise<void>;
  /** realpath of the backing store, if a path. */
  backingKey?: string;
}

const XVDA = 202 << 8;
const ENGINES = ['wasm', 'js'];

export class Simulation {
  private readonly disks = new Map<number, DiskRecord>();
  private nextDisk = 0;
  private nextDomid = 1;
  /** Calls in progress: stop() lets them settle before it tears down. */
  private readonly busy = new Set<Promise<unknown>>();
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly hypervisor: Hypervisor,
    readonly xenstored: XenstoreServer,
    readonly dom0: SimPlatform,
  ) {}

  static start(opts: SimulationOptions = {}): Promise<Simulation> {
    return keepAlive(Simulation.start_(opts));
  }

  private static async start_(opts: SimulationOptions): Promise<Simulation> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', `must be an object, got ${opts === null ? 'null' : typeof opts}`);
    const socket = opts.xenstoreSocket;
    if (socket !== undefined && (typeof socket !== 'string' || socket.length === 0 || socket.includes('\0'))) {
      throw new InvalidArgumentError('xenstoreSocket', 'must be a non-empty path without NUL');
    }
    const xenstored = new XenstoreServer();
    const hypervisor = Hypervisor.create({
      poolPages: opts.poolPages ?? 32768,
      maxDomains: opts.maxDomains ?? 4,
      grantFrames: opts.grantFrames ?? 32,
      scratchBytes: 32 << 20,
      xenstore: xenstored,
    });
    const dom0 = hypervisor.createDomain('dom0', undefined, { domid: 0 });
    if (socket !== undefined) {
      try {
        // Unref'd: a forgotten sim.stop() must not keep the process alive.
        await xenstored.listen(socket, { unref: true });
      } catch (err) {
        await hypervisor.shutdown().catch(() => undefined);
        await xenstored.close().catch(() => undefined);
        throw err;
      }
    }
    return new Simulation(hypervisor, xenstored, dom0);
  }

  /** Run a public call: refused once stop() began, tracked until it settles, process kept alive meanwhile. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.stopping) return Promise.reject(new DisconnectedError('simulation is stopped'));
    const p = keepAlive(fn());
    const settled = p.then(() => undefined, () => undefined);
    this.busy.add(settled);
    void settled.then(() => this.busy.delete(settled));
    return p;
  }

  /** Run `fn` after the disk's earlier backend operations. */
  private locked<T>(rec: DiskRecord, fn: () => Promise<T>): Promise<T> {
    const p = rec.lock.then(fn);
    rec.lock = p.then(() => undefined, () => undefined);
    return p;
  }

  /** Start a backend domain serving a new disk, and write its xenstore directories. */
  createDisk(opts: DiskOptions): Promise<SimDisk> {
    return this.run(() => this.createDisk_(opts));
  }

  private async createDisk_(opts: DiskOptions): Promise<SimDisk> {
    checkDiskOptions(opts);
    const backing = opts.path !== undefined ? await prepareBacking(opts.path, opts.sizeBytes) : undefined;
    if (backing) {
      for (const r of this.disks.values()) {
        // Readers may share a store (as their shared image locks do); a writer is alone.
        if (r.backingKey === backing.key && !(r.disk.options.readOnly && opts.readOnly)) {
          throw new LockedError(opts.path!, `${opts.path} is already served by ${diskName(r.disk)} of this simulation`);
        }
      }
      checkSizeAgainstSector(backing.sizeBytes, opts.sectorSize);
      opts = { ...opts, sizeBytes: backing.sizeBytes };
    }
    const n = this.nextDisk++;
    const devid = XVDA + n * 16;
    const backendDomid = this.nextDomid++;
    const paths = await createVbd(this.dom0.xenstore, {
      frontendDomid: 0,
      backendDomid,
      devid,
      params: opts.path ?? `memory:${opts.sizeBytes}`,
      readOnly: opts.readOnly,
      dev: `xvd${String.fromCharCode(97 + n)}`,
    });
    const disk: SimDisk = { devid, backendDomid, paths, options: { ...opts } };
    const rec: DiskRecord = { disk, lock: Promise.resolve(), backingKey: backing?.key };
    try {
      await this.startBackend(rec);
    } catch (err) {
      // Undo in reverse: the domain (startBackend released it), the directories.
      await destroyVbd(this.dom0.xenstore, paths);
      throw err;
    }
    this.disks.set(devid, rec);
    return disk;
  }

  /** Start the disk's backend domain; on failure its domain is destroyed again (slot, ports, grants released). */
  private async startBackend(rec: DiskRecord): Promise<void> {
    const { disk } = rec;
    const data: BackendDomainData = {
      backend: disk.paths.backend,
      path: disk.options.path,
      sizeBytes: disk.options.sizeBytes!,
      sectorSize: disk.options.sectorSize,
      readOnly: disk.options.readOnly,
      features: disk.options.features,
      engine: disk.options.backendEngine,
    };
    const dom = this.hypervisor.createDomain(`blkback-${disk.devid}`, {
      module: compiledModule(import.meta.url, 'sim/backend-domain.js'),
      data,
    }, { domid: disk.backendDomid });
    try {
      await expectReply(dom.worker, 'ready', diskName(disk));
    } catch (err) {
      await this.hypervisor.destroyDomain(disk.backendDomid).catch(() => undefined);
      throw err;
    }
    rec.worker = dom.worker;
  }

  /**
   * Attach a frontend (in dom0) to the disk: a connected BlockDevice. One
   * frontend per disk, as on Xen: a second attach while the first device is
   * attached is refused (`invalid-argument`); after its disconnect() it works.
   */
  attach(disk: SimDisk, opts: AttachOptions = {}): Promise<Blkfront> {
    return this.run(() => this.attach_(disk, opts));
  }

  private async attach_(disk: SimDisk, opts: AttachOptions): Promise<Blkfront> {
    const rec = this.record(disk);
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'must be an object');
    const { engine, abi, ...rest } = opts;
    if (engine !== undefined && !ENGINES.includes(engine)) {
      throw new InvalidArgumentError('engine', `must be 'wasm' or 'js', got ${String(engine)}`);
    }
    if (abi !== undefined && abi !== 'x86_64-abi' && abi !== 'x86_32-abi') {
      throw new InvalidArgumentError('abi', `must be 'x86_64-abi' or 'x86_32-abi', got ${String(abi)}`);
    }
    const cur = rec.device;
    if (cur === 'attaching' || (cur !== undefined && !isFinished(cur))) {
      throw new InvalidArgumentError('disk', `${diskName(disk)} is already attached: disconnect() that device first`);
    }
    rec.device = 'attaching';
    try {
      const dev = await Blkfront.attach(this.dom0, {
        ...rest,
        engine: createEngine(engine ?? 'wasm', this.dom0.memory),
        frontend: disk.paths.frontend,
        abi: abi === 'x86_32-abi' ? Abi.X86_32 : Abi.X86_64,
      });
      rec.device = dev;
      void dev.closed.then(() => {
        if (rec.device === dev) rec.device = undefined;
      });
      return dev;
    } catch (err) {
      rec.device = undefined;
      throw err;
    }
  }

  /** Devices attached to `disk` (or to any disk) and not yet disconnected. */
  attachedCount(disk?: SimDisk): number {
    const count = (rec: DiskRecord) => (rec.device instanceof Blkfront ? 1 : 0);
    if (disk) return count(this.record(disk));
    let n = 0;
    for (const rec of this.disks.values()) n += count(rec);
    return n;
  }

  /**
   * Destroy the disk's backend domain and start a new one (same domid) on
   * the same backing store. Attached frontends keep their requests and
   * reconnect by themselves.
   */
  restartBackend(disk: SimDisk): Promise<void> {
    return this.run(async () => {
      const rec = this.record(disk);
      await this.locked(rec, async () => {
        await this.kill(rec);
        await this.startBackend(rec);
      });
    });
  }

  /**
   * Destroy the disk's backend domain without replacement (a crashed driver
   * domain). Frontends suspend and keep their requests until a backend comes
   * back or they are disconnected. Does nothing if the backend is not running.
   */
  killBackend(disk: SimDisk): Promise<void> {
    return this.run(async () => {
      const rec = this.record(disk);
      await this.locked(rec, () => this.kill(rec));
    });
  }

  private async kill(rec: DiskRecord): Promise<void> {
    const { disk } = rec;
    if (!rec.worker) return;
    rec.worker = undefined;
    await this.hypervisor.destroyDomain(disk.backendDomid);
    // The toolstack marks the dead backend Closed, as xl does on device teardown.
    await this.dom0.xenstore.write(`${disk.paths.backend}/state`, String(XenbusState.Closed));
  }

  /**
   * Grow or shrink the disk while attached (the frontend sees a resize
   * event). `sizeBytes` is a positive multiple of the disk's sector size;
   * the backend must be running (`disconnected` after killBackend).
   */
  resizeDisk(disk: SimDisk, sizeBytes: number): Promise<void> {
    return this.run(async () => {
      const rec = this.record(disk);
      const sectorSize = rec.disk.options.sectorSize ?? 512;
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % sectorSize !== 0) {
        throw new InvalidArgumentError('sizeBytes', `must be a positive multiple of the sector size ${sectorSize}, got ${sizeBytes}`);
      }
      await this.locked(rec, async () => {
        if (!rec.worker) throw new DisconnectedError(`${diskName(disk)}: backend domain is not running`);
        await command(rec.worker, { type: 'resize', sizeBytes }, diskName(disk));
      });
    });
  }

  /**
   * Event-loop utilisation of the disk's backend thread (as
   * performance.eventLoopUtilization: pass an earlier value for a delta).
   * Benchmarks use it to tell a busy backend from a waiting one.
   */
  backendEventLoopUtilization(disk: SimDisk, prev?: EventLoopUtilization): EventLoopUtilization {
    const w = this.record(disk).worker;
    if (!w) throw new DisconnectedError(`${diskName(disk)}: backend domain is not running`);
    return w.performance.eventLoopUtilization(prev);
  }

  private record(disk: SimDisk): DiskRecord {
    const devid = (disk as SimDisk | undefined)?.devid;
    const rec = this.disks.get(devid as number);
    if (!rec || rec.disk !== disk) {
      throw new InvalidArgumentError('disk', `${devid === undefined ? String(disk) : `disk ${devid}`} is not a disk of this simulation`);
    }
    return rec;
  }

  /**
   * Disconnect every device, stop every backend domain, close xenstored.
   * Calls in progress settle first; calls made after are refused
   * (`disconnected`). Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= keepAlive(this.stop_());
    return this.stopping;
  }

  private async stop_(): Promise<void> {
    await Promise.all([...this.busy]);
    for (const rec of this.disks.values()) {
      await rec.lock;
      if (rec.device instanceof Blkfront) await rec.device.disconnect().catch(() => undefined);
      if (rec.worker) {
        // Bounded: a backend that does not answer is destroyed anyway.
        await withDeadline(command(rec.worker, { type: 'stop' }, diskName(rec.disk)), 3_000).catch(() => undefined);
        rec.worker = undefined;
        await this.hypervisor.destroyDomain(rec.disk.backendDomid).catch(() => undefined);
      }
      await destroyVbd(this.dom0.xenstore, rec.disk.paths);
    }
    this.disks.clear();
    await this.hypervisor.shutdown();
    await this.xenstored.close();
  }
}

/** How messages name a disk: `xvda (devid 51712)`. */
function diskName(disk: SimDisk): string {
  const n = (disk.devid - XVDA) / 16;
  return Number.isInteger(n) && n >= 0 && n < 26 ? `xvd${String.fromCharCode(97 + n)} (devid ${disk.devid})` : `disk ${disk.devid}`;
}

function isFinished(dev: Blkfront): boolean {
  const s = dev.stats().state;
  return s === DriverState.Closed || s === DriverState.Failed;
}

function checkDiskOptions(opts: DiskOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', `must be an object, got ${opts === null ? 'null' : typeof opts}`);
  // A path may give its own size (an existing file, a block device).
  if (opts.sizeBytes !== undefined || opts.path === undefined) {
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes! <= 0) {
      throw new InvalidArgumentError('sizeBytes', `must be a positive integer, got ${opts.sizeBytes}`);
    }
    checkSizeAgainstSector(opts.sizeBytes!, opts.sectorSize);
  } else {
    checkSectorSize(opts.sectorSize ?? 512);
  }
  if (opts.path !== undefined && (typeof opts.path !== 'string' || opts.path.length === 0 || opts.path.includes('\0'))) {
    throw new InvalidArgumentError('path', 'must be a non-empty string without NUL');
  }
  if (opts.readOnly !== undefined && typeof opts.readOnly !== 'boolean') {
    throw new InvalidArgumentError('readOnly', `must be a boolean, got ${typeof opts.readOnly}`);
  }
  if (opts.backendEngine !== undefined && !ENGINES.includes(opts.backendEngine)) {
    throw new InvalidArgumentError('backendEngine', `must be 'wasm' or 'js', got ${String(opts.backendEngine)}`);
  }
  if (opts.features !== undefined && (typeof opts.features !== 'object' || opts.features === null)) {
    throw new InvalidArgumentError('features', 'must be an object');
  }
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DisconnectedError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function checkSizeAgainstSector(sizeBytes: number, sectorSizeOpt: number | undefined): void {
  const sectorSize = checkSectorSize(sectorSizeOpt ?? 512);
  if (sizeBytes % sectorSize !== 0) {
    throw new InvalidArgumentError('sizeBytes', `${sizeBytes} is not a multiple of the sector size ${sectorSize}`);
  }
}

/** The backend domain's next answer; its error comes back as the typed error the domain threw. */
function expectReply(worker: Worker, want: BackendReply['type'], name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: BackendReply): void => {
      cleanup();
      if (m.type === want) resolve();
      else if (m.type === 'error') reject(reviveError(m.error, `backend domain of ${name}`));
      else reject(new IoError(`backend domain of ${name}: unexpected answer ${m.type}`));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new IoError(`backend domain of ${name} exited (${code})`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new IoError(`backend domain of ${name} failed: ${err.message}`, { cause: err }));
    };
    const cleanup = (): void => {
      worker.off('message', onMsg);
      worker.off('exit', onExit);
      worker.off('error', onError);
    };
    worker.on('message', onMsg);
    worker.on('exit', onExit);
    worker.on('error', onError);
  });
}

function command(worker: Worker, cmd: BackendCommand, name: string): Promise<void> {
  const p = expectReply(worker, 'done', name);
  worker.postMessage(cmd);
  return p;
}
