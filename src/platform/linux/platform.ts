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
 */
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, UnsupportedError } from '../../errors.js';
import { XenstoreError } from '../../xenstore/errors.js';
import { Arena, createSharedLayout, type MemoryPlan, type SharedLayout } from '../../memory/layout.js';
import type { XenstoreClient } from '../../xenstore/client.js';
import { connectXenstoreSocket, defaultSocketPath } from '../../xenstore/transport/socket.js';
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

/** open(O_RDWR) of a Xen device; a typed error saying what is wrong. */
function openDevice(path: string): number {
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

export async function openLinuxPlatform(opts: LinuxPlatformOptions = {}): Promise<LinuxPlatform> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'must be an object');
  const dir = opts.deviceDir ?? XEN_DEVICE_DIR;
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError('deviceDir', `must be a folder path, got ${typeof dir}`);
  const paths = { evtchn: join(dir, 'evtchn'), gntalloc: join(dir, 'gntalloc'), gntdev: join(dir, 'gntdev') };
  // Checked before anything is opened, so the answer on a machine without Xen is this one.
  for (const p of [paths.evtchn, paths.gntalloc]) if (!existsSync(p)) throw missing(p);
  // Then the addon (ioctls, mapping granted pages): a NativeError saying what to install.
  loadAddon();

  const opened: number[] = [];
  const cleanup: (() => unknown)[] = [];
  try {
    const evtchnFd = openDevice(paths.evtchn);
    opened.push(evtchnFd);
    const gntallocFd = openDevice(paths.gntalloc);
    opened.push(gntallocFd);
    const xenstore = await connectXenstore(opts.xenstore, dir);
    cleanup.push(() => xenstore.close());
    const domid = await readDomid(xenstore);
    const layout = opts.layout ?? createSharedLayout(opts.memory ?? {});
    const evtchn = new LinuxEventChannels(domid, evtchnDeviceOnFd(evtchnFd));
    opened.splice(opened.indexOf(evtchnFd), 1); // the event channels own it now
    cleanup.push(() => evtchn.dispose());
    const grants = new LinuxGrantTable(domid, layout, grantDevicesOnFds(layout, gntallocFd, () => openDevice(paths.gntdev)));
    opened.splice(opened.indexOf(gntallocFd), 1);
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
