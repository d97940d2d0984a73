/**
 * The `lvm` flavour of openBlockDevice: `lvm:<vg>/<lv>` opens LV <lv> of
 * VG <vg> found on the PV device(s) given as the `on` option:
 *
 *   const pv = await openBlockDevice('file:/dev/sdb');
 *   const lv = await openBlockDevice('lvm:vg0/root', { on: pv });
 *   const lv2 = await openBlockDevice('lvm:vg0/data', { on: [pv1, pv2], readOnly: true });
 *
 * Disconnecting the LV leaves the PV devices open (they are the caller's).
 * Importing this module registers the flavour (once per registry).
 */
import { InvalidArgumentError } from '../errors.js';
import { flavours, registerFlavour, type OpenOptions } from '../block/registry.js';
import type { BlockDevice } from '../block/types.js';
import { checkLvName, openVolumeGroup } from './volume-group.js';

export interface LvmOpenOptions extends OpenOptions {
  /** The VG's PV device(s). */
  readonly on: BlockDevice | readonly BlockDevice[];
}

const VG_NAME = /^[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,126}$/;

function isDevice(d: unknown): d is BlockDevice {
  const x = d as Partial<BlockDevice> | null;
  return typeof x === 'object' && x !== null && typeof x.read === 'function' && typeof x.write === 'function' && typeof x.info === 'function';
}

/** Opens `<vg>/<lv>` on `options.on`. */
export async function openLvmBlockDevice(target: string, options: OpenOptions): Promise<BlockDevice> {
  const m = /^([^/]+)\/([^/]+)$/.exec(target);
  if (m === null || !VG_NAME.test(m[1]!)) throw new InvalidArgumentError('spec', `lvm:${target} is not lvm:<vg>/<lv>`);
  checkLvName(m[2]);
  const on = options.on;
  const list = Array.isArray(on) ? on : [on];
  if (list.length === 0 || !list.every(isDevice)) {
    throw new InvalidArgumentError('on', 'lvm: needs { on: device } (the PV BlockDevice, or an array of them)');
  }
  const vg = await openVolumeGroup(list as BlockDevice[]);
  if (vg.name !== m[1]) throw new InvalidArgumentError('spec', `the devices hold VG ${vg.name}, not ${m[1]}`);
  return vg.openLogicalVolume(m[2]!, { readOnly: options.readOnly === true });
}

/** Registers `lvm:` (idempotent). */
export function registerLvmFlavour(): void {
  if (!flavours().includes('lvm')) registerFlavour('lvm', openLvmBlockDevice);
}

registerLvmFlavour();
