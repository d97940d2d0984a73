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
 */
import { XenbusState } from '../blkif/constants.js';
import type { DomId, XenStore } from '../platform/types.js';
import { InvalidArgumentError } from '../errors.js';

export interface VbdSpec {
  frontendDomid: DomId;
  backendDomid: DomId;
  /** Xen virtual device number (51712 = xvda). */
  devid: number;
  /** Backend parameter: a path, or any string the backend understands. */
  params: string;
  readOnly?: boolean;
  /** Name shown in `dev`, e.g. xvda. */
  dev?: string;
}

export interface VbdPaths {
  frontend: string;
  backend: string;
}

export function vbdPaths(spec: Pick<VbdSpec, 'frontendDomid' | 'backendDomid' | 'devid'>): VbdPaths {
  return {
    frontend: `/local/domain/${spec.frontendDomid}/device/vbd/${spec.devid}`,
    backend: `/local/domain/${spec.backendDomid}/backend/vbd/${spec.frontendDomid}/${spec.devid}`,
  };
}

/** Create both directories in one transaction (dom0's connection). */
export async function createVbd(xs: XenStore, spec: VbdSpec): Promise<VbdPaths> {
  checkVbdSpec(spec);
  const { frontend, backend } = vbdPaths(spec);
  const fe = spec.frontendDomid;
  const be = spec.backendDomid;
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
      params: spec.params,
      mode: spec.readOnly ? 'r' : 'w',
      type: 'phy',
      dev: spec.dev ?? 'xvda',
      removable: '0',
      bootable: '1',
      'device-type': 'disk',
    };
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
  if (typeof spec.params !== 'string') throw new InvalidArgumentError('params', `must be a string, got ${typeof spec.params}`);
  if (spec.dev !== undefined && (typeof spec.dev !== 'string' || !/^[a-z][a-z0-9]*$/.test(spec.dev))) {
    throw new InvalidArgumentError('dev', `must be a device name like xvda, got ${String(spec.dev)}`);
  }
}

/** Remove both directories (after the devices closed). */
export async function destroyVbd(xs: XenStore, paths: VbdPaths): Promise<void> {
  await xs.rm(paths.frontend).catch(() => undefined);
  await xs.rm(paths.backend).catch(() => undefined);
}
