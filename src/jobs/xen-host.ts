/**
 * Real Xen behind an unprivileged job child (master.ts without `sim`): the
 * master, root in dom0, does the toolstack's part and opens what needs
 * privilege, and the child only ever holds descriptors.
 *
 * ```
 *  master (root, dom0)                                  child (nobody)
 *  open /dev/xen/evtchn, gntalloc [, gntdev] ─ fds 5,6,7 ─► openLinuxPlatform({ fds })
 *  connection to xenstored ◄── XenstoreProxy ◄── fd 4 ────── XenstoreClient
 *  loop device over the backing file, vbd directories          blkfront on the vbd
 *  (frontend dom0, backend dom0: the kernel's xen-blkback)
 * ```
 * The master closes its copies of the device descriptors once the child has
 * them, so they live in the child alone: when it dies the kernel unbinds its
 * ports and ends its grants. What the kernel cannot know about is undone by
 * release(): the proxy's connection (its watches, transactions) is closed by
 * the master, and each vbd is taken down as the toolstack does for a dead
 * frontend (backend `online` 0, frontend state Closed, blkback follows to
 * Closed and lets go of the device; then both directories are removed and
 * the loop device detached).
 */
import { closeSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { XenbusState } from '../blkif/constants.js';
import { attachLoop, loopDevicesOf, type LoopDevice } from '../blkfront/loop-device.js';
import { createVbd, destroyVbd, vbdPaths, type VbdPaths } from '../blkfront/toolstack.js';
import { parseSpec } from '../block/registry.js';
import { InvalidArgumentError } from '../errors.js';
import { openXenDevice, XEN_DEVICE_DIR } from '../platform/linux/platform.js';
import type { XenstoreClient } from '../xenstore/client.js';
import { connectUnixSocket, connectXenstoreSocket, defaultSocketPath } from '../xenstore/transport/socket.js';
import type { XsTransport } from '../xenstore/transport/types.js';
import { connectXenbusDevice, openXenbusDevice, XENBUS_DEVICE } from '../xenstore/transport/xenbus.js';
import { JobError } from './errors.js';

/** The domain the master (and so its child) runs in, and the one serving the vbds. */
export const DOM0 = 0;

export interface XenDeviceSpec {
  /** The job's name for it. */
  readonly name: string;
  readonly devid: number;
  /** `file:PATH`: a regular file (served through a loop device) or a block device. */
  readonly backing: string;
  readonly readOnly: boolean;
}

export interface XenHostOptions {
  /** Pass /dev/xen/gntdev too (a child that maps other domains' grants). */
  readonly gntdev: boolean;
  readonly log?: (line: string) => void;
  /** How long release() waits for blkback and the loop device (default 10000 ms each). */
  readonly releaseTimeoutMs?: number;
}

interface HostVbd {
  readonly spec: XenDeviceSpec;
  readonly paths: VbdPaths;
  readonly file: string;
  readonly loop?: LoopDevice;
}

/** The master's descriptors for the child (its own copies, closed by closeFds()). */
export interface XenFds {
  readonly evtchn: number;
  readonly gntalloc: number;
  readonly gntdev?: number;
}

export class XenHost {
  private fdsOpen = true;
  private released = false;

  private constructor(
    readonly fds: XenFds,
    private readonly xs: XenstoreClient,
    private readonly vbds: HostVbd[],
    private readonly opts: XenHostOptions,
  ) {}

  /**
   * Open the devices, attach a loop device per file backing and create each
   * vbd. On any failure what was done is undone and the error is a
   * JobError `open-failed` naming the device.
   */
  static async open(devices: readonly XenDeviceSpec[], opts: XenHostOptions): Promise<XenHost> {
    const fds: number[] = [];
    const undo: Array<() => Promise<unknown> | unknown> = [];
    try {
      const evtchn = openXenDevice(join(XEN_DEVICE_DIR, 'evtchn'));
      fds.push(evtchn);
      const gntalloc = openXenDevice(join(XEN_DEVICE_DIR, 'gntalloc'));
      fds.push(gntalloc);
      const gntdev = opts.gntdev ? openXenDevice(join(XEN_DEVICE_DIR, 'gntdev')) : undefined;
      if (gntdev !== undefined) fds.push(gntdev);
      const xs = await connectToolstack();
      undo.push(() => xs.close());
      const vbds: HostVbd[] = [];
      for (const d of devices) {
        const v = await serve(xs, d).catch((err: unknown) => {
          throw new JobError('open-failed', `device ${d.name} (xen:${d.devid}, backing ${d.backing}): ${(err as Error).message}`, { cause: err, device: d.name });
        });
        vbds.push(v);
        undo.push(() => takeDown(xs, v, opts, true));
      }
      return new XenHost({ evtchn, gntalloc, gntdev }, xs, vbds, opts);
    } catch (err) {
      for (const f of undo.reverse()) await Promise.resolve().then(f).catch(() => undefined);
      for (const fd of fds) closeSync(fd);
      throw err;
    }
  }

  /** The xenstore directories the child may touch: each vbd's frontend and backend. */
  allow(): string[] {
    return this.vbds.flatMap((v) => [v.paths.frontend, v.paths.backend]);
  }

  /** A connection of the child's own to dom0's xenstored (the proxy's upstream). */
  connectUpstream(): Promise<XsTransport> {
    return existsSync(defaultSocketPath()) ? connectUnixSocket() : openXenbusDevice(XENBUS_DEVICE);
  }

  /** Close the master's copies of the device descriptors (the child has its own now, or never will). */
  closeFds(): void {
    if (!this.fdsOpen) return;
    this.fdsOpen = false;
    for (const fd of [this.fds.evtchn, this.fds.gntalloc, this.fds.gntdev]) if (fd !== undefined) closeSync(fd);
  }

  /** After the child is gone: take every vbd down, detach the loop devices, close the toolstack connection. */
  async release(): Promise<void> {
    this.closeFds();
    if (this.released) return;
    this.released = true;
    for (const v of [...this.vbds].reverse()) {
      try { await takeDown(this.xs, v, this.opts, false); } catch (err) {
        this.opts.log?.(`releasing ${v.paths.backend}: ${(err as Error).message}`);
      }
    }
    await this.xs.close();
  }
}

/** dom0's xenstored as the toolstack reaches it: its socket, else /dev/xen/xenbus. */
function connectToolstack(): Promise<XenstoreClient> {
  return existsSync(defaultSocketPath()) ? connectXenstoreSocket() : connectXenbusDevice(XENBUS_DEVICE);
}

async function serve(xs: XenstoreClient, d: XenDeviceSpec): Promise<HostVbd> {
  const { flavour, target } = parseSpec(d.backing);
  if (flavour !== 'file') throw new InvalidArgumentError('backing', `must be file:PATH (a file or a block device) for the kernel's blkback, got ${d.backing}`);
  const paths = vbdPaths({ frontendDomid: DOM0, backendDomid: DOM0, devid: d.devid });
  // Never take over a vbd someone else made (createVbd would replace it).
  if (await xs.tryRead(paths.frontend) !== undefined || await xs.tryRead(paths.backend) !== undefined) {
    throw new JobError('open-failed', `${paths.frontend} or ${paths.backend} already exists: the vbd is in use`, { device: d.name });
  }
  let st;
  try { st = statSync(target); } catch (err) {
    throw new InvalidArgumentError('backing', `cannot stat ${target}: ${(err as Error).message}`);
  }
  const loop = st.isBlockDevice() ? undefined : await attachLoop(target, { readOnly: d.readOnly });
  try {
    await createVbd(xs, {
      frontendDomid: DOM0, backendDomid: DOM0, devid: d.devid, physicalDevice: loop?.path ?? target, readOnly: d.readOnly,
    });
  } catch (err) {
    await loop?.detach().catch(() => undefined);
    throw err;
  }
  return { spec: d, paths, file: target, loop };
}

/**
 * Take a vbd down as the toolstack does once its frontend is gone: backend
 * `online` 0 first (so blkback unregisters the device once Closed, instead
 * of waiting for a new frontend), then frontend state Closed; wait for
 * blkback to reach Closed (or its directory to go); remove both
 * directories; detach the loop device and wait until the kernel has let go
 * of it (blkback releases it when the device is unregistered).
 */
async function takeDown(xs: XenstoreClient, v: HostVbd, opts: XenHostOptions, quiet: boolean): Promise<void> {
  const limit = opts.releaseTimeoutMs ?? 10_000;
  const { frontend, backend } = v.paths;
  await xs.write(`${backend}/online`, '0').catch(() => undefined);
  await xs.write(`${frontend}/state`, String(XenbusState.Closed)).catch(() => undefined);
  const closed = await waitForKey(xs, `${backend}/state`, (s) => s === undefined || s === String(XenbusState.Closed), limit);
  if (!closed && !quiet) opts.log?.(`kernel blkback did not reach Closed on ${backend} within ${limit} ms; removing the vbd anyway`);
  await destroyVbd(xs, v.paths);
  if (v.loop) {
    await v.loop.detach();
    const end = Date.now() + limit;
    // Detaching a loop device blkback still holds only marks it for
    // autoclear; the kernel detaches it when blkback closes it. No event
    // tells us that, so poll losetup (bounded).
    while ((await loopDevicesOf(v.file)).includes(v.loop.path)) {
      if (Date.now() > end) { opts.log?.(`${v.loop.path} still attached to ${v.file} after ${limit} ms`); break; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Watch `path` until `ok(value)` holds (undefined: absent); false on timeout. */
async function waitForKey(xs: XenstoreClient, path: string, ok: (v: string | undefined) => boolean, ms: number): Promise<boolean> {
  const w = await xs.watch(path);
  const timer = setTimeout(() => void w.unwatch().catch(() => undefined), ms);
  try {
    // A watch fires once when set, then on every change: re-read each time.
    for await (const _ of w) {
      if (ok(await xs.tryRead(path).catch(() => undefined))) return true;
    }
    return false;
  } finally {
    clearTimeout(timer);
    await w.unwatch().catch(() => undefined);
  }
}
