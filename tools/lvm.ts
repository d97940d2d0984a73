/**
 * `xenpv lvm`: list and change the linear LVs of the VG on one or more PV
 * devices, with src/lvm (no LVM2 tools, no device-mapper needed).
 *
 *   xenpv lvm ls DEVICE...
 *   xenpv lvm create NAME --size SIZE DEVICE...
 *   xenpv lvm extend NAME --size SIZE DEVICE...
 *   xenpv lvm shrink NAME --size SIZE DEVICE...
 *   xenpv lvm remove NAME DEVICE...
 *
 * A DEVICE is a registry spec (file:/dev/sdb, xen:xvdb) or a plain path
 * (taken as file:PATH). Exit codes: 0 ok, 1 failure, 2 usage.
 */
import { parseArgs } from 'node:util';
import { openBlockDevice, parseSize } from '../src/block/registry.js';
import type { BlockDevice } from '../src/block/types.js';
import { XenpvError } from '../src/errors.js';
import { openVolumeGroup, type LvSize, type VolumeGroup } from '../src/lvm/volume-group.js';

const HELP = `usage: xenpv lvm ls DEVICE...
       xenpv lvm create NAME (--size SIZE | --extents N) DEVICE...
       xenpv lvm extend NAME (--size SIZE | --extents N) DEVICE...
       xenpv lvm shrink NAME (--size SIZE | --extents N) DEVICE...
       xenpv lvm remove NAME DEVICE...

List or change the logical volumes of the LVM2 volume group whose physical
volumes are DEVICE... (every PV of the VG, to change it). A DEVICE is a
block device spec (file:/dev/sdb) or a path. Changes write new metadata to
every metadata area, as LVM2 does; the LVM2 tools read the result.
extend/shrink take the new total size; shrink discards the LV's tail.

options:
  --size SIZE     new size, e.g. 64MiB (units B, KiB, MiB, GiB; rounded up to extents)
  --extents N     new size in extents
  --json          ls: print JSON
  -h, --help      show this help`;

const ACTIONS = ['ls', 'create', 'extend', 'shrink', 'remove'] as const;
type Action = (typeof ACTIONS)[number];

class Usage extends Error {}

function spec(arg: string): string {
  return /^[a-z][a-z0-9-]*:/.test(arg) ? arg : `file:${arg}`;
}

function sizeOf(values: { size?: string; extents?: string }): LvSize {
  if ((values.size === undefined) === (values.extents === undefined)) throw new Usage('give exactly one of --size and --extents');
  if (values.extents !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values.extents)) throw new Usage(`--extents ${values.extents} is not a positive integer`);
    return { extents: Number(values.extents) };
  }
  try {
    return { bytes: parseSize(values.size!, 'size') };
  } catch (err) {
    throw new Usage((err as Error).message);
  }
}

function list(vg: VolumeGroup, json: boolean): void {
  const lvs = vg.lvs();
  if (json) {
    const out = {
      vg: vg.name,
      id: vg.id,
      seqno: vg.seqno,
      extentBytes: Number(vg.extentBytes),
      freeExtents: vg.freeExtents,
      lvs: lvs.map((l) => ({
        name: l.name,
        sizeBytes: Number(l.sizeBytes),
        extents: l.extentCount,
        linear: l.linear,
        segments: l.segments.map((s) => ({ start: s.startExtent, extents: s.extentCount, type: s.type, areas: s.areas })),
      })),
    };
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log(`VG ${vg.name}  seqno ${vg.seqno}  extent ${vg.extentBytes} B  free ${vg.freeExtents} extents`);
  for (const l of lvs) {
    const where = l.segments
      .map((s) => (s.areas.length === 0 ? s.type : s.areas.map((a) => `${a.pv}:${a.extent}-${a.extent + s.extentCount / s.areas.length - 1}`).join('+')))
      .join(' ');
    console.log(`  ${l.name.padEnd(16)} ${String(l.sizeBytes).padStart(14)} B  ${String(l.extentCount).padStart(8)} ext  ${where}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        size: { type: 'string' },
        extents: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    console.error(`xenpv lvm: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, ...rest] = positionals;
  let name: string | undefined;
  let size: LvSize | undefined;
  let deviceArgs: string[];
  try {
    if (!ACTIONS.includes(action as Action)) throw new Usage(action === undefined ? 'no action' : `unknown action ${action}`);
    if (action === 'ls') deviceArgs = rest;
    else [name, ...deviceArgs] = rest;
    if (action !== 'ls' && name === undefined) throw new Usage(`${action} needs an LV name`);
    if (action === 'create' || action === 'extend' || action === 'shrink') size = sizeOf(values);
    else if (values.size !== undefined || values.extents !== undefined) throw new Usage(`${action} takes no size`);
    if (deviceArgs.length === 0) throw new Usage('no DEVICE given');
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    console.error(`xenpv lvm: ${err.message}\n\n${HELP}`);
    return 2;
  }

  const devices: BlockDevice[] = [];
  try {
    for (const d of deviceArgs) devices.push(await openBlockDevice(spec(d), { readOnly: action === 'ls' }));
    const vg = await openVolumeGroup(devices);
    switch (action as Action) {
      case 'ls':
        list(vg, values.json === true);
        break;
      case 'create':
        await vg.createLogicalVolume(name!, size!);
        break;
      case 'extend':
        await vg.extendLogicalVolume(name!, size!);
        break;
      case 'shrink':
        await vg.shrinkLogicalVolume(name!, size!);
        break;
      case 'remove':
        await vg.removeLogicalVolume(name!);
        break;
    }
    if (action !== 'ls') console.error(`xenpv lvm: ${action} ${name}: done (VG ${vg.name} seqno ${vg.seqno})`);
    return 0;
  } catch (err) {
    if (!(err instanceof XenpvError)) throw err;
    console.error(`xenpv lvm: ${err.code}: ${err.message}`);
    return 1;
  } finally {
    for (const d of devices) await d.disconnect();
  }
}
