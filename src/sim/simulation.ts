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
import type { Worker } from 'node:worker_threads';
import type { BackendFeatures } from '../blkback/features.js';
import { Blkfront, type BlkfrontOptions } from '../blkfront/blkfront.js';
import { createVbd, destroyVbd, type VbdPaths } from '../blkfront/toolstack.js';
import { XenbusState } from '../blkif/constants.js';
import { InvalidArgumentError, LockedError, XenpvError } from '../errors.js';
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
  worker?: Worker;
  /** Attached and not yet disconnected (a disconnected device is forgotten at once). */
  devices: Set<Blkfront>;
  /** restart/kill/resize of this disk run one after another, in call order. */
  ops: Promise<void>;
  /** realpath of the backing store, if a path. */
  backingKey?: string;
}

const XVDA = 202 << 8;

export class Simulation {
  private readonly disks = new Map<number, DiskRecord>();
  private nextDisk = 0;
  private nextDomid = 1;

  private constructor(
    readonly hypervisor: Hypervisor,
    readonly xenstored: XenstoreServer,
    readonly dom0: SimPlatform,
  ) {}

  static async start(opts: SimulationOptions = {}): Promise<Simulation> {
    const xenstored = new XenstoreServer();
    const hypervisor = Hypervisor.create({
      poolPages: opts.poolPages ?? 32768,
      maxDomains: opts.maxDomains ?? 4,
      grantFrames: opts.grantFrames ?? 32,
      scratchBytes: 32 << 20,
      xenstore: xenstored,
    });
    const dom0 = hypervisor.createDomain('dom0', undefined, { domid: 0 });
    if (opts.xenstoreSocket) await xenstored.listen(opts.xenstoreSocket);
    return new Simulation(hypervisor, xenstored, dom0);
  }

  /** Start a backend domain serving a new disk, and write its xenstore directories. */
  async createDisk(opts: DiskOptions): Promise<SimDisk> {
    if (opts.sizeBytes !== undefined || !opts.path) {
      if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes! <= 0) {
        throw new InvalidArgumentError('sizeBytes', `must be a positive integer, got ${opts.sizeBytes}`);
      }
    }
    const backing = opts.path ? await prepareBacking(opts.path, opts.sizeBytes) : undefined;
    if (backing) {
      for (const r of this.disks.values()) {
        // Readers may share a store (as their shared image locks do); a writer is alone.
        if (r.backingKey === backing.key && !(r.disk.options.readOnly && opts.readOnly)) {
          throw new LockedError(opts.path!, `${opts.path} is already served by disk ${r.disk.devid} of this simulation`);
        }
      }
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
    const disk: SimDisk = { devid, backendDomid, paths, options: opts };
    const rec: DiskRecord = { disk, devices: new Set(), ops: Promise.resolve(), backingKey: backing?.key };
    this.disks.set(devid, rec);
    await this.startBackend(rec);
    return disk;
  }

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
    rec.worker = dom.worker;
    await expectReply(dom.worker, 'ready');
  }

  /** Attach a frontend (in dom0) to the disk: a connected BlockDevice. */
  async attach(disk: SimDisk, opts: AttachOptions = {}): Promise<Blkfront> {
    const rec = this.record(disk);
    const { engine, abi, ...rest } = opts;
    const dev = await Blkfront.attach(this.dom0, {
      ...rest,
      engine: createEngine(engine ?? 'wasm', this.dom0.memory),
      frontend: disk.paths.frontend,
      abi: abi === 'x86_32-abi' ? Abi.X86_32 : Abi.X86_64,
    });
    rec.devices.add(dev);
    // Forgotten once disconnected: a simulation attaching and detaching for
    // days holds only what is attached now.
    void dev.closed.then(() => rec.devices.delete(dev));
    return dev;
  }

  /** Devices attached to `disk` (or to any disk) and not yet disconnected. */
  attachedCount(disk?: SimDisk): number {
    if (disk) return this.record(disk).devices.size;
    let n = 0;
    for (const rec of this.disks.values()) n += rec.devices.size;
    return n;
  }

  /** Run `op` after every restart/kill/resize of the disk issued before it. */
  private serialised(disk: SimDisk, op: (rec: DiskRecord) => Promise<void>): Promise<void> {
    const rec = this.record(disk);
    const run = rec.ops.then(() => op(rec));
    rec.ops = run.catch(() => undefined);
    return run;
  }

  /**
   * Destroy the disk's backend domain and start a new one (same domid) on
   * the same backing store. Attached frontends keep their requests and
   * reconnect by themselves. Calls on one disk (restart, kill, resize) run
   * one after another: two restarts at once restart it twice.
   */
  restartBackend(disk: SimDisk): Promise<void> {
    return this.serialised(disk, async (rec) => {
      await this.kill(rec);
      await this.startBackend(rec);
    });
  }

  /**
   * Destroy the disk's backend domain without replacement (a crashed driver
   * domain). Frontends suspend and keep their requests until a backend comes
   * back or they are disconnected.
   */
  killBackend(disk: SimDisk): Promise<void> {
    return this.serialised(disk, (rec) => this.kill(rec));
  }

  private async kill(rec: DiskRecord): Promise<void> {
    const { disk } = rec;
    if (!rec.worker) return;
    rec.worker = undefined;
    await this.hypervisor.destroyDomain(disk.backendDomid);
    // The toolstack marks the dead backend Closed, as xl does on device teardown.
    await this.dom0.xenstore.write(`${disk.paths.backend}/state`, String(XenbusState.Closed));
  }

  /** Grow or shrink the disk while attached (the frontend sees a resize event). */
  resizeDisk(disk: SimDisk, sizeBytes: number): Promise<void> {
    return this.serialised(disk, (rec) => command(rec.worker!, { type: 'resize', sizeBytes }));
  }

  private record(disk: SimDisk): DiskRecord {
    const rec = this.disks.get(disk.devid);
    if (!rec) throw new InvalidArgumentError('disk', `disk ${disk.devid} is not part of this simulation`);
    return rec;
  }

  /** Disconnect every device, stop every backend domain, close xenstored. */
  async stop(): Promise<void> {
    for (const rec of this.disks.values()) {
      await rec.ops;
      for (const dev of [...rec.devices]) await dev.disconnect().catch(() => undefined);
      if (rec.worker) {
        await command(rec.worker, { type: 'stop' }).catch(() => undefined);
        await this.hypervisor.destroyDomain(rec.disk.backendDomid).catch(() => undefined);
      }
      await destroyVbd(this.dom0.xenstore, rec.disk.paths);
    }
    this.disks.clear();
    await this.hypervisor.shutdown();
    await this.xenstored.close();
  }
}

function expectReply(worker: Worker, want: BackendReply['type']): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: BackendReply): void => {
      cleanup();
      if (m.type === want) resolve();
      else if (m.type === 'error' && m.code === 'locked' && m.path) reject(new LockedError(m.path, `backend domain: ${m.message}`));
      else reject(new XenpvError((m.type === 'error' && m.code) || 'io', `backend domain: ${m.type === 'error' ? m.message : m.type}`));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new XenpvError('io', `backend domain exited (${code})`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new XenpvError('io', `backend domain failed: ${err.message}`, { cause: err }));
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

function command(worker: Worker, cmd: BackendCommand): Promise<void> {
  const p = expectReply(worker, 'done');
  worker.postMessage(cmd);
  return p;
}
