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
import { open } from 'node:fs/promises';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import type { BackendFeatures } from '../blkback/features.js';
import { Blkfront, type BlkfrontOptions } from '../blkfront/blkfront.js';
import { createVbd, destroyVbd, type VbdPaths } from '../blkfront/toolstack.js';
import { XenbusState } from '../blkif/constants.js';
import { InvalidArgumentError, XenpvError } from '../errors.js';
import type { SimPlatform } from '../platform/sim/domain.js';
import { Hypervisor } from '../platform/sim/hypervisor.js';
import { createEngine } from '../ring/index.js';
import { Abi } from '../ring/engine.js';
import { compiledModule } from '../util/compiled.js';
import { XenstoreServer } from '../xenstore/server/server.js';
import type { BackendCommand, BackendDomainData, BackendReply } from './backend-domain.js';

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
  sizeBytes: number;
  /** Serve this file (created with sizeBytes if missing); else a memory disk. */
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
  devices: Set<Blkfront>;
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
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes <= 0) {
      throw new InvalidArgumentError('sizeBytes', `must be a positive integer, got ${opts.sizeBytes}`);
    }
    if (opts.path) await createSparse(opts.path, opts.sizeBytes);
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
    const rec: DiskRecord = { disk, devices: new Set() };
    this.disks.set(devid, rec);
    await this.startBackend(rec);
    return disk;
  }

  private async startBackend(rec: DiskRecord): Promise<void> {
    const { disk } = rec;
    const data: BackendDomainData = {
      backend: disk.paths.backend,
      path: disk.options.path,
      sizeBytes: disk.options.sizeBytes,
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
    return dev;
  }

  /**
   * Destroy the disk's backend domain and start a new one (same domid) on
   * the same backing store. Attached frontends keep their requests and
   * reconnect by themselves.
   */
  async restartBackend(disk: SimDisk): Promise<void> {
    await this.killBackend(disk);
    await this.startBackend(this.record(disk));
  }

  /**
   * Destroy the disk's backend domain without replacement (a crashed driver
   * domain). Frontends suspend and keep their requests until a backend comes
   * back or they are disconnected.
   */
  async killBackend(disk: SimDisk): Promise<void> {
    const rec = this.record(disk);
    if (!rec.worker) return;
    rec.worker = undefined;
    await this.hypervisor.destroyDomain(disk.backendDomid);
    // The toolstack marks the dead backend Closed, as xl does on device teardown.
    await this.dom0.xenstore.write(`${disk.paths.backend}/state`, String(XenbusState.Closed));
  }

  /** Grow or shrink the disk while attached (the frontend sees a resize event). */
  async resizeDisk(disk: SimDisk, sizeBytes: number): Promise<void> {
    const rec = this.record(disk);
    await command(rec.worker!, { type: 'resize', sizeBytes });
  }

  /**
   * Event-loop utilisation of the disk's backend thread (as
   * performance.eventLoopUtilization: pass an earlier value for a delta).
   * Benchmarks use it to tell a busy backend from a waiting one.
   */
  backendEventLoopUtilization(disk: SimDisk, prev?: EventLoopUtilization): EventLoopUtilization {
    const w = this.record(disk).worker;
    if (!w) throw new XenpvError('disconnected', `disk ${disk.devid} has no running backend`);
    return w.performance.eventLoopUtilization(prev);
  }

  private record(disk: SimDisk): DiskRecord {
    const rec = this.disks.get(disk.devid);
    if (!rec) throw new InvalidArgumentError('disk', `disk ${disk.devid} is not part of this simulation`);
    return rec;
  }

  /** Disconnect every device, stop every backend domain, close xenstored. */
  async stop(): Promise<void> {
    for (const rec of this.disks.values()) {
      for (const dev of rec.devices) await dev.disconnect().catch(() => undefined);
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

async function createSparse(path: string, sizeBytes: number): Promise<void> {
  const h = await open(path, 'a+');
  try {
    const st = await h.stat();
    if (st.size < sizeBytes) await h.truncate(sizeBytes);
  } finally {
    await h.close();
  }
}

function expectReply(worker: Worker, want: BackendReply['type']): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: BackendReply): void => {
      cleanup();
      if (m.type === want) resolve();
      else reject(new XenpvError('io', `backend domain: ${m.type === 'error' ? m.message : m.type}`));
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
