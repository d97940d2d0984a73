/**
 * The `xen` flavour of openBlockDevice: `xen:xvda`, `xen:51712`.
 *
 *   openBlockDevice('xen:xvda')                        real Xen: openLinuxPlatform()
 *   openBlockDevice('xen:51712', { platform })         any Platform (e.g. Simulation's dom0)
 *   openBlockDevice('xen:xvdb', { create: { params: '/dev/vg/disk' } })
 *                                                      write the vbd directories first, as
 *                                                      `xl block-attach` would (and remove
 *                                                      them on disconnect)
 *
 * It attaches Blkfront to /local/domain/<frontendDomid>/device/vbd/<devid>;
 * frontendDomid defaults to the platform's domid, backendDomid to 0 (dom0's
 * blkback). A platform this flavour opened itself is closed when the device
 * disconnects, or when the attach fails.
 *
 * Importing this module registers the flavour (once per registry).
 */
import { Blkfront, type BlkfrontOptions, type BlkfrontStats } from './blkfront.js';
import { createVbd, destroyVbd, vbdPaths, type VbdPaths } from './toolstack.js';
import { InvalidArgumentError, ProtocolError, ReadOnlyError } from '../errors.js';
import { openLinuxPlatform, type LinuxPlatformOptions } from '../platform/linux/platform.js';
import type { DomId, Platform } from '../platform/types.js';
import { createEngine } from '../ring/index.js';
import { flavours, registerFlavour, type OpenOptions } from '../block/registry.js';
import type { BlockDevice, BlockInfo, ResizeListener } from '../block/types.js';

/** What `create` writes (the rest of VbdSpec comes from the spec and the domids). */
export interface XenCreateSpec {
  /** Backend parameter: a path, or any string the backend understands (default: physicalDevice). */
  readonly params?: string;
  /**
   * A block device for the kernel's xen-blkback (e.g. attachLoop(file).path):
   * written as `physical-device`, which blkback waits for before it connects.
   */
  readonly physicalDevice?: string;
  /** Name shown in `dev`, e.g. xvda. */
  readonly dev?: string;
}

/**
 * Options of the `xen` flavour. openBlockDevice passes its OpenOptions
 * through; `create` here is a vbd spec, not the file flavour's `{ sizeBytes }`
 * (cast when calling openBlockDevice from TypeScript, or call
 * openXenBlockDevice directly).
 */
export interface XenOpenOptions extends Omit<OpenOptions, 'create'> {
  /** Platform to attach through; default openLinuxPlatform(linux). */
  readonly platform?: Platform;
  /** Options for the platform opened when `platform` is absent. */
  readonly linux?: LinuxPlatformOptions;
  /** Domain serving the disk (default 0). */
  readonly backendDomid?: DomId;
  /** Domain whose device directory is used (default the platform's domid). */
  readonly frontendDomid?: DomId;
  /** Write the vbd's xenstore directories first (and remove them on disconnect). */
  readonly create?: XenCreateSpec;
  /** Data-path engine (default wasm). */
  readonly engine?: 'wasm' | 'js';
  /** Blkfront tuning (rings, queues, persistent grants, timeouts). */
  readonly blkfront?: Partial<Omit<BlkfrontOptions, 'engine' | 'frontend' | 'abi'>>;
}

const DOMID_MAX = 0x7fef;

function domidOption(field: string, v: unknown, dflt: DomId): DomId {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > DOMID_MAX) {
    throw new InvalidArgumentError(field, `must be a domain id in [0, ${DOMID_MAX}], got ${String(v)}`);
  }
  return v;
}

function nonEmpty(v: unknown): boolean {
  return typeof v === 'string' && v !== '';
}

function isPlatform(p: unknown): p is Platform {
  const q = p as Partial<Platform> | null;
  return typeof q === 'object' && q !== null && q.memory instanceof WebAssembly.Memory &&
    typeof q.xenstore === 'object' && typeof q.evtchn === 'object' && typeof q.grants === 'object' &&
    typeof q.domid === 'number';
}

/** Blkfront plus what this flavour must undo on disconnect; honours `readOnly`. */
class XenBlockDevice implements BlockDevice {
  private closing: Promise<void> | undefined;

  constructor(
    readonly blkfront: Blkfront,
    private readonly readOnly: boolean,
    private readonly teardown: () => Promise<void>,
  ) {}

  info(): BlockInfo {
    const info = this.blkfront.info();
    return this.readOnly && info.readWrite ? { ...info, readWrite: false } : info;
  }
  read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    return this.blkfront.read(sector, buffers);
  }
  write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    if (this.readOnly) return Promise.reject(new ReadOnlyError('opened with readOnly'));
    return this.blkfront.write(sector, buffers);
  }
  flush(): Promise<void> {
    return this.blkfront.flush();
  }
  discard(sector: bigint, count: bigint): Promise<void> {
    if (this.readOnly) return Promise.reject(new ReadOnlyError('opened with readOnly'));
    return this.blkfront.discard(sector, count);
  }
  onResize(listener: ResizeListener): () => void {
    return this.blkfront.onResize(listener);
  }
  /** Zero-copy I/O buffers: pages granted to the backend (src/blkfront/io-buffers.ts). */
  allocateBuffer(bytes: number): Promise<Uint8Array> {
    return this.blkfront.allocateBuffer(bytes);
  }
  releaseBuffer(buffer: Uint8Array): Promise<void> {
    return this.blkfront.releaseBuffer(buffer);
  }
  disconnect(): Promise<void> {
    this.closing ??= this.blkfront.disconnect().finally(() => this.teardown());
    return this.closing;
  }
  /** Blkfront's counters: bytes, requests, notifications, latency per queue. */
  stats(): BlkfrontStats {
    return this.blkfront.stats();
  }
}

/** The opener registered as `xen`; `target` is the canonical decimal vdev. */
export async function openXenBlockDevice(target: string, opts: XenOpenOptions | OpenOptions = {}): Promise<BlockDevice> {
  const options = opts as XenOpenOptions;
  const devid = Number(target);
  if (!/^\d+$/.test(target) || !Number.isSafeInteger(devid)) throw new InvalidArgumentError('spec', `xen:${target}: not a vdev number`);
  if (options.platform !== undefined && !isPlatform(options.platform)) {
    throw new InvalidArgumentError('platform', 'must be a Platform (domid, memory, xenstore, evtchn, grants)');
  }
  const backendDomid = domidOption('backendDomid', options.backendDomid, 0);
  const create = options.create;
  if (create !== undefined && (typeof create !== 'object' || create === null || !nonEmpty(create.params ?? create.physicalDevice) ||
      (create.params !== undefined && !nonEmpty(create.params)) || (create.physicalDevice !== undefined && !nonEmpty(create.physicalDevice)))) {
    throw new InvalidArgumentError('create', 'must be { params?: string, physicalDevice?: string, dev?: string } with params or physicalDevice');
  }
  const readOnly = options.readOnly === true;

  const undo: (() => Promise<unknown>)[] = [];
  const runUndo = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch(() => undefined);
  };
  try {
    let platform = options.platform;
    if (platform === undefined) {
      const opened = await openLinuxPlatform(options.linux ?? {});
      undo.push(() => opened.close());
      platform = opened;
    }
    const frontendDomid = domidOption('frontendDomid', options.frontendDomid, platform.domid);
    let paths: VbdPaths = vbdPaths({ frontendDomid, backendDomid, devid });
    if (create !== undefined) {
      paths = await createVbd(platform.xenstore, {
        frontendDomid, backendDomid, devid, params: create.params, physicalDevice: create.physicalDevice, readOnly, dev: create.dev,
      });
      const created = paths;
      undo.push(() => destroyVbd(platform!.xenstore, created));
    } else if (options.backendDomid !== undefined) {
      const id = await platform.xenstore.tryRead(`${paths.frontend}/backend-id`);
      if (id !== undefined && id !== String(backendDomid)) {
        throw new InvalidArgumentError('backendDomid', `${backendDomid}, but ${paths.frontend}/backend-id is ${id}`);
      }
    }
    const dev = await Blkfront.attach(platform, {
      ...options.blkfront,
      engine: createEngine(options.engine ?? 'wasm', platform.memory),
      frontend: paths.frontend,
    });
    return new XenBlockDevice(dev, readOnly, runUndo);
  } catch (err) {
    await runUndo();
    throw err;
  }
}

/** Register `xen` with the registry unless something already did; returns whether this call did. */
export function registerXenFlavour(): boolean {
  if (flavours().includes('xen')) return false;
  registerFlavour('xen', openXenBlockDevice);
  return true;
}

registerXenFlavour();
