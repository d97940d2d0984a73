/**
 * openLinuxPlatform(): the Platform of a Node process in a Xen domain
 * (normally dom0), over the kernel's Xen devices:
 *
 *   /dev/xen/evtchn     event channels      (xen-evtchn)
 *   /dev/xen/gntalloc   grant our pages     (xen-gntalloc)
 *   /dev/xen/gntdev     map a peer's pages  (xen-gntdev; opened on first use)
 *   xenstored           /var/run/xenstored/socket, or /dev/xen/xenbus
 *
 * The shared memory is this process's own (createSharedLayout); its pool
 * pages are where granted and mapped pages get placed.
 *
 * `fds` instead of paths: a process without the right to open /dev/xen
 * (a job child the privileged master spawned, src/jobs/master.ts) builds its
 * platform from descriptors it inherited. Nothing is opened by path then:
 *
 *   openLinuxPlatform({ fds: { evtchn: 5, gntalloc: 6, xenstore: 4 }, domid: 0 })
 *
 * The platform owns the descriptors from then on: close() (or a failed
 * open) closes them, and the kernel frees the ports and grants they held.
 */
import { closeSync, existsSync, fstatSync, openSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { InvalidArgumentError, UnsupportedError } from '../../errors.js';
import { XenstoreError } from '../../xenstore/errors.js';
import { Arena, createSharedLayout, type MemoryPlan, type SharedLayout } from '../../memory/layout.js';
import { XenstoreClient } from '../../xenstore/client.js';
import { connectXenstoreSocket, defaultSocketPath, socketTransport } from '../../xenstore/transport/socket.js';
import { connectXenbusDevice, XENBUS_DEVICE } from '../../xenstore/transport/xenbus.js';
import type { DomId, Platform } from '../types.js';
import { evtchnDeviceOnFd } from './evtchn-device.js';
import { LinuxEventChannels } from './evtchn.js';
import { grantDevicesOnFds } from './grant-devices.js';
import { LinuxGrantTable } from './grant-table.js';
import { loadAddon } from '../../native/load.js';

export const XEN_DEVICE_DIR = '/dev/xen';

export interface LinuxPlatformOptions {
  /** Shared memory to use (its pool receives granted/mapped pages); else one is made from `memory`. */
  layout?: SharedLayout;
  /** Plan for a new shared memory when `layout` is not given. */
  memory?: MemoryPlan;
  /**
   * How to reach xenstored: 'socket' (xenstored's unix socket, $XENSTORED_PATH
   * honoured), 'xenbus' (/dev/xen/xenbus), or a path (a character device is
   * used as xenbus, anything else as a socket). Default: the socket if it
   * exists, else xenbus.
   */
  xenstore?: 'socket' | 'xenbus' | string;
  /** Where the Xen devices are (default /dev/xen). */
  deviceDir?: string;
  /** Already open descriptors to use instead of opening paths (see above); taken over. */
  fds?: LinuxPlatformFds;
  /** Our domain id, when known (skips reading the `domid` key, which a proxied xenstore may refuse). */
  domid?: DomId;
}

export interface LinuxPlatformFds {
  /** /dev/xen/evtchn, open O_RDWR. */
  readonly evtchn: number;
  /** /dev/xen/gntalloc, open O_RDWR. */
  readonly gntalloc: number;
  /** /dev/xen/gntdev, open O_RDWR; without it, mapping a peer's grants fails typed (a frontend never does). */
  readonly gntdev?: number;
  /** A connected stream socket speaking the xenstore wire protocol (else xenstore is reached as `xenstore` says). */
  readonly xenstore?: number;
}

/** The Linux Platform, with `close()` to release devices and xenstore. */
export interface LinuxPlatform extends Platform {
  readonly layout: SharedLayout;
  readonly evtchn: LinuxEventChannels;
  readonly grants: LinuxGrantTable;
  close(): Promise<void>;
}

function missing(path: string): UnsupportedError {
  return new UnsupportedError(
    `no Xen here: ${path} is missing (is this a Xen dom0 with xen-evtchn/xen-gntalloc loaded?)`,
  );
}

/** open(O_RDWR) of a Xen device; a typed error saying what is wrong (the master opens them for its children). */
export function openXenDevice(path: string): number {
  try {
    return openSync(path, 'r+');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') throw missing(path);
    throw new UnsupportedError(`cannot open ${path}: ${(cause as Error).message}${code === 'EACCES' ? ' (run as root)' : ''}`, { cause });
  }
}

async function connectXenstore(how: LinuxPlatformOptions['xenstore'], deviceDir: string): Promise<XenstoreClient> {
  const xenbus = deviceDir === XEN_DEVICE_DIR ? XENBUS_DEVICE : join(deviceDir, 'xenbus');
  if (how === 'socket') return connectXenstoreSocket();
  if (how === 'xenbus') return connectXenbusDevice(xenbus);
  if (how !== undefined) {
    let charDevice = false;
    try { charDevice = statSync(how).isCharacterDevice(); } catch { /* connect reports it */ }
    return charDevice ? connectXenbusDevice(how) : connectXenstoreSocket(how);
  }
  return existsSync(defaultSocketPath()) ? connectXenstoreSocket() : connectXenbusDevice(xenbus);
}

/** Our domain id: xenstore's relative `domid` key (under our home), 0 (dom0) when absent. */
async function readDomid(xs: XenstoreClient): Promise<DomId> {
  const text = await xs.tryRead('domid');
  if (text === undefined) return 0;
  if (!/^\d{1,5}$/.test(text) || Number(text) >= 0x7ff0) {
    throw new XenstoreError('EINVAL', `xenstore key domid holds ${JSON.stringify(text)}, not a domain id`);
  }
  return Number(text);
}

/** The descriptors given, checked: each an open character device (xenstore: a socket). */
function checkFds(fds: LinuxPlatformFds): void {
  if (typeof fds !== 'object' || fds === null) throw new InvalidArgumentError('fds', 'must be { evtchn, gntalloc, gntdev?, xenstore? }');
  for (const key of ['evtchn', 'gntalloc', 'gntdev', 'xenstore'] as const) {
    const fd = fds[key];
    if (fd === undefined && (key === 'gntdev' || key === 'xenstore')) continue;
    if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new InvalidArgumentError(`fds.${key}`, `must be a file descriptor, got ${String(fd)}`);
    }
    let st;
    try { st = fstatSync(fd); } catch (cause) {
      throw new InvalidArgumentError(`fds.${key}`, `${fd} is not an open descriptor (${(cause as Error).message})`);
    }
    const ok = key === 'xenstore' ? st.isSocket() : st.isCharacterDevice();
    if (!ok) throw new InvalidArgumentError(`fds.${key}`, `${fd} is not ${key === 'xenstore' ? 'a socket' : 'a character device'}`);
  }
}

export async function openLinuxPlatform(opts: LinuxPlatformOptions = {}): Promise<LinuxPlatform> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'must be an object');
  if (opts.domid !== undefined && (!Number.isInteger(opts.domid) || opts.domid < 0 || opts.domid >= 0x7ff0)) {
    throw new InvalidArgumentError('domid', `must be a domain id in 0..32751, got ${String(opts.domid)}`);
  }
  if (opts.fds !== undefined) {
    checkFds(opts.fds);
    loadAddon();
    const f = opts.fds;
    const noGntdev = (): number => {
      throw new UnsupportedError('no /dev/xen/gntdev descriptor was passed to this process (only a backend maps other domains\' grants)');
    };
    return assemble(opts, [f.evtchn, f.gntalloc, ...(f.gntdev !== undefined ? [f.gntdev] : [])], f.evtchn, f.gntalloc,
      f.gntdev ?? noGntdev,
      () => (f.xenstore !== undefined
        ? new XenstoreClient(socketTransport(new Socket({ fd: f.xenstore, readable: true, writable: true })))
        : connectXenstore(opts.xenstore, opts.deviceDir ?? XEN_DEVICE_DIR)));
  }
  const dir = opts.deviceDir ?? XEN_DEVICE_DIR;
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError('deviceDir', `must be a folder path, got ${typeof dir}`);
  const paths = { evtchn: join(dir, 'evtchn'), gntalloc: join(dir, 'gntalloc'), gntdev: join(dir, 'gntdev') };
  // Checked before anything is opened, so the answer on a machine without Xen is this one.
  for (const p of [paths.evtchn, paths.gntalloc]) if (!existsSync(p)) throw missing(p);
  // Then the addon (ioctls, mapping granted pages): a NativeError saying what to install.
  loadAddon();

  const opened: number[] = [];
  try {
    opened.push(openXenDevice(paths.evtchn));
    opened.push(openXenDevice(paths.gntalloc));
  } catch (err) {
    for (const fd of opened) closeSync(fd);
    throw err;
  }
  return assemble(opts, opened, opened[0]!, opened[1]!, () => openXenDevice(paths.gntdev), () => connectXenstore(opts.xenstore, dir));
}

/**
 * The platform over open evtchn and gntalloc descriptors (`opened`: every
 * descriptor it now owns, closed again if this fails).
 */
async function assemble(
  opts: LinuxPlatformOptions, opened: number[], evtchnFd: number, gntallocFd: number,
  gntdev: number | (() => number), xenstoreOf: () => Promise<XenstoreClient> | XenstoreClient,
): Promise<LinuxPlatform> {
  const cleanup: (() => unknown)[] = [];
  try {
    const xenstore = await xenstoreOf();
    cleanup.push(() => xenstore.close());
    const domid = opts.domid ?? await readDomid(xenstore);
    const layout = opts.layout ?? createSharedLayout(opts.memory ?? {});
    const evtchn = new LinuxEventChannels(domid, evtchnDeviceOnFd(evtchnFd));
    opened.splice(opened.indexOf(evtchnFd), 1); // the event channels own it now
    cleanup.push(() => evtchn.dispose());
    const grants = new LinuxGrantTable(domid, layout, grantDevicesOnFds(layout, gntallocFd, gntdev));
    // The grant devices own gntalloc and, once opened or given, gntdev.
    opened.splice(0);
    return {
      domid,
      memory: layout.memory,
      layout,
      scratch: new Arena(layout.scratchBase, layout.scratchBytes),
      xenstore,
      evtchn,
      grants,
      async close() {
        grants.dispose();
        evtchn.dispose();
        await xenstore.close();
        await evtchn.closed;
      },
    };
  } catch (err) {
    for (const f of cleanup.reverse()) await Promise.resolve().then(f).catch(() => undefined);
    for (const fd of opened) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
    throw err;
  }
}
