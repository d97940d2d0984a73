/**
 * The toolstack's part of attaching a disk, as `xl block-attach` does it:
 * create the frontend and backend directories, each owned by its domain and
 * readable by the other, with the keys that name each other.
 *
 *   /local/domain/<fe>/device/vbd/<devid>/        owner fe, read: be
 *       backend, backend-id, state=1, virtual-device, device-type
 *   /local/domain/<be>/backend/vbd/<fe>/<devid>/  owner be, read: fe
 *       frontend, frontend-id, online=1, state=1, params, mode, type, dev,
 *       removable, bootable, device-type
 *       [physical-device, physical-device-path]     when the backend is the
 *                                                   kernel's xen-blkback
 *
 * Linux's xen-blkback (drivers/block/xen-blkback/xenbus.c) goes to InitWait
 * and then waits for `physical-device`: the block device to serve, as
 * "<major>:<minor>" in hex (it parses "%x:%x"), which `xl block-attach`'s
 * hotplug script (/etc/xen/scripts/block) writes after it has set the device
 * up. It also reads `mode` ("r" or "w": "w" means writable), `device-type`
 * ("cdrom" or not), `frontend-id` and `frontend` (xenbus core), and treats
 * `online` = 0 as "remove the device when the frontend closes". Writing
 * `physical-device` in the same transaction as the rest lets blkback open the
 * device as soon as it sees the directory.
 */
import { statSync } from 'node:fs';
import { XenbusState } from '../blkif/constants.js';
import { InvalidArgumentError } from '../errors.js';
import type { DomId, XenStore } from '../platform/types.js';

export interface VbdSpec {
  frontendDomid: DomId;
  backendDomid: DomId;
  /** Xen virtual device number (51712 = xvda). */
  devid: number;
  /** Backend parameter: a path, or any string the backend understands (default: physicalDevice). */
  params?: string;
  readOnly?: boolean;
  /** Name shown in `dev`, e.g. xvda. */
  dev?: string;
  /**
   * A block device (e.g. a loop device, see loop-device.ts) for the kernel's
   * xen-blkback: written as `physical-device` ("major:minor" in hex) and
   * `physical-device-path`, and as `params` when `params` is absent.
   */
  physicalDevice?: string;
  /**
   * Backend directory type (default 'vbd': /local/domain/<be>/backend/vbd/...).
   * The kernel's xen-blkback claims every dom0 `backend/vbd` entry; a
   * userspace backend in dom0 (ours, or qemu's 'qdisk') uses another type so
   * the kernel leaves it alone. Frontends follow the `backend` key, whatever
   * the path.
   */
  backendType?: string;
}

/** A block device's numbers, from stat(2)'s st_rdev (glibc's gnu_dev_major/minor). */
export function blockDeviceNumbers(path: string): { major: number; minor: number } {
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch (cause) {
    throw new InvalidArgumentError('physicalDevice', `cannot stat ${path}: ${(cause as Error).message}`);
  }
  if (!st.isBlockDevice()) throw new InvalidArgumentError('physicalDevice', `${path} is not a block device`);
  const dev = st.rdev;
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** The `physical-device` value blkback parses with "%x:%x". */
export function physicalDeviceKey(path: string): string {
  const { major, minor } = blockDeviceNumbers(path);
  return `${major.toString(16)}:${minor.toString(16)}`;
}

export interface VbdPaths {
  frontend: string;
  backend: string;
}

export function vbdPaths(spec: Pick<VbdSpec, 'frontendDomid' | 'backendDomid' | 'devid' | 'backendType'>): VbdPaths {
  const type = spec.backendType ?? 'vbd';
  if (!/^[a-z][a-z0-9_-]*$/.test(type)) throw new InvalidArgumentError('backendType', `must be a xenstore path element, got ${JSON.stringify(type)}`);
  return {
    frontend: `/local/domain/${spec.frontendDomid}/device/vbd/${spec.devid}`,
    backend: `/local/domain/${spec.backendDomid}/backend/${type}/${spec.frontendDomid}/${spec.devid}`,
  };
}

/** Create both directories in one transaction (dom0's connection). */
export async function createVbd(xs: XenStore, spec: VbdSpec): Promise<VbdPaths> {
  checkVbdSpec(spec);
  const { frontend, backend } = vbdPaths(spec);
  const fe = spec.frontendDomid;
  const be = spec.backendDomid;
  // Resolved before anything is written: a bad path changes nothing.
  const physical = spec.physicalDevice === undefined ? undefined : physicalDeviceKey(spec.physicalDevice);
  await xs.transaction(async (tx) => {
    await tx.rm(frontend).catch(() => undefined);
    await tx.rm(backend).catch(() => undefined);
    await tx.mkdir(frontend);
    await tx.setPermissions(frontend, [{ domid: fe, perm: 'n' }, { domid: be, perm: 'r' }]);
    await tx.mkdir(backend);
    await tx.setPermissions(backend, [{ domid: be, perm: 'n' }, { domid: fe, perm: 'r' }]);
    const f: Record<string, string> = {
      backend,
      'backend-id': String(be),
      state: String(XenbusState.Initialising),
      'virtual-device': String(spec.devid),
      'device-type': 'disk',
    };
    const b: Record<string, string> = {
      frontend,
      'frontend-id': String(fe),
      online: '1',
      state: String(XenbusState.Initialising),
      params: spec.params ?? spec.physicalDevice ?? '',
      mode: spec.readOnly ? 'r' : 'w',
      type: 'phy',
      dev: spec.dev ?? 'xvda',
      removable: '0',
      bootable: '1',
      'device-type': 'disk',
    };
    if (physical !== undefined) {
      b['physical-device'] = physical;
      b['physical-device-path'] = spec.physicalDevice!;
    }
    for (const [k, v] of Object.entries(f)) await tx.write(`${frontend}/${k}`, v);
    for (const [k, v] of Object.entries(b)) await tx.write(`${backend}/${k}`, v);
  });
  return { frontend, backend };
}

/** Bad specs are an `invalid-argument` naming the field, before xenstore is touched. */
function checkVbdSpec(spec: VbdSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new InvalidArgumentError('spec', 'must be an object');
  for (const field of ['frontendDomid', 'backendDomid'] as const) {
    const v = spec[field];
    if (!Number.isInteger(v) || v < 0 || v >= 0x7ff0) throw new InvalidArgumentError(field, `must be a domain id in 0..32751, got ${String(v)}`);
  }
  if (!Number.isInteger(spec.devid) || spec.devid <= 0 || spec.devid > 0xffffffff) {
    throw new InvalidArgumentError('devid', `must be a virtual device number (51712 = xvda), got ${String(spec.devid)}`);
  }
  // params names what the backend serves; with physicalDevice it defaults to that path.
  if (spec.params !== undefined ? typeof spec.params !== 'string' : typeof spec.physicalDevice !== 'string') {
    throw new InvalidArgumentError('params', `must be a string (or give physicalDevice), got ${typeof spec.params}`);
  }
  if (spec.dev !== undefined && (typeof spec.dev !== 'string' || !/^[a-z][a-z0-9]*$/.test(spec.dev))) {
    throw new InvalidArgumentError('dev', `must be a device name like xvda, got ${String(spec.dev)}`);
  }
}

/** Remove both directories (after the devices closed). */
export async function destroyVbd(xs: XenStore, paths: VbdPaths): Promise<void> {
  await xs.rm(paths.frontend).catch(() => undefined);
  await xs.rm(paths.backend).catch(() => undefined);
}
