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
 * (taken as file:PATH). Exit codes: 0 ok, 1 failure, 2 usage (as every
 * command: tools/command.ts), a device that is not a PV of a VG included.
 */
import { parseSize } from '../src/block/registry.js';
import { openVolumeGroup, type LvSize, type VolumeGroup } from '../src/lvm/volume-group.js';
import { defineCommand, defineGroup, EXIT_OK, usageError, type Output } from './command.js';
import { DeviceOpener } from './devices.js';

const DEVICES = `DEVICE... are the physical volumes of the VG (every one, to change it): device
specs (file:/dev/sdb, xen:xvdb) or paths.`;

const SIZE = {
  size: { type: 'string', arg: 'SIZE', help: 'new size, e.g. 64MiB (units B, KiB, MiB, GiB; rounded up to extents)' },
  extents: { type: 'string', arg: 'N', help: 'new size in extents' },
} as const;

function sizeOf(values: { size?: string; extents?: string }): LvSize {
  if ((values.size === undefined) === (values.extents === undefined)) throw usageError('--size', 'give exactly one of --size and --extents');
  if (values.extents !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values.extents)) throw usageError('--extents', `${values.extents} is not a positive integer`);
    return { extents: Number(values.extents) };
  }
  return { bytes: parseSize(values.size!, '--size') };
}

/** Open the VG on the devices (read-only for ls), run `fn`, disconnect them whatever happens. */
async function withVolumeGroup(args: string[], readOnly: boolean, fn: (vg: VolumeGroup) => Promise<void>): Promise<number> {
  const opener = await DeviceOpener.create();
  try {
    const devices = [];
    for (const d of args) devices.push(await opener.open(d, { readOnly }));
    await fn(await openVolumeGroup(devices));
    return EXIT_OK;
  } finally {
    await opener.close();
  }
}

function list(vg: VolumeGroup, out: Output): void {
  const lvs = vg.lvs();
  const json = {
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
  out.result(json, () => [
    `VG ${vg.name}  seqno ${vg.seqno}  extent ${vg.extentBytes} B  free ${vg.freeExtents} extents`,
    ...lvs.map((l) => {
      const where = l.segments
        .map((s) => (s.areas.length === 0 ? s.type : s.areas.map((a) => `${a.pv}:${a.extent}-${a.extent + s.extentCount / s.areas.length - 1}`).join('+')))
        .join(' ');
      return `  ${l.name.padEnd(16)} ${String(l.sizeBytes).padStart(14)} B  ${String(l.extentCount).padStart(8)} ext  ${where}`;
    }),
  ].join('\n'));
}

const ls = defineCommand({
  name: 'lvm ls',
  synopsis: '[--json] DEVICE...',
  summary: 'list the VG and its logical volumes',
  description: `List the volume group on DEVICE... (opened read-only) and its logical volumes:
name, size, extents, and where each segment lies (pv:first-last extent).
${DEVICES}`,
  reports: true,
  positionals: { min: 1, max: Infinity },
  options: {},
}, async ({ positionals, out }) => withVolumeGroup(positionals, true, async (vg) => list(vg, out)));

type Change = 'create' | 'extend' | 'shrink';

/** create, extend, shrink: NAME, a new size, the PVs; one line on stderr when done. */
function change(action: Change, summary: string, description: string, apply: (vg: VolumeGroup, name: string, size: LvSize) => Promise<unknown>) {
  return defineCommand({
    name: `lvm ${action}`,
    synopsis: 'NAME (--size SIZE | --extents N) DEVICE...',
    summary,
    description: `${description}
The change writes new metadata to every metadata area, as LVM2 does; the LVM2
tools read the result.
${DEVICES}`,
    positionals: { min: 2, max: Infinity },
    options: SIZE,
  }, async ({ values, positionals: [name, ...devices], out }) => {
    const size = sizeOf(values); // checked before any device is opened
    return withVolumeGroup(devices, false, async (vg) => {
      await apply(vg, name!, size);
      out.note(`xenpv lvm: ${action} ${name}: done (VG ${vg.name} seqno ${vg.seqno})`);
    });
  });
}

const create = change('create', 'create a linear LV of that size',
  'Create the linear logical volume NAME, of SIZE rounded up to whole extents (its\ncontent is not zeroed).',
  (vg, name, size) => vg.createLogicalVolume(name, size));
const extend = change('extend', 'grow an LV to the new total size',
  "Grow the logical volume NAME to the new total size (in place when the extents\nafter it are free).",
  (vg, name, size) => vg.extendLogicalVolume(name, size));
const shrink = change('shrink', "shrink an LV to the new total size (its tail is discarded)",
  "Shrink the logical volume NAME to the new total size; the LV's tail is given\nback to the VG.",
  (vg, name, size) => vg.shrinkLogicalVolume(name, size));

const remove = defineCommand({
  name: 'lvm remove',
  synopsis: 'NAME DEVICE...',
  summary: 'remove an LV',
  description: `Remove the logical volume NAME, giving its extents back to the VG.\n${DEVICES}`,
  positionals: { min: 2, max: Infinity },
  options: {},
}, async ({ positionals: [name, ...devices], out }) => withVolumeGroup(devices, false, async (vg) => {
  await vg.removeLogicalVolume(name!);
  out.note(`xenpv lvm: remove ${name}: done (VG ${vg.name} seqno ${vg.seqno})`);
}));

export const main = defineGroup({
  name: 'lvm',
  description: `List or change the logical volumes of the LVM2 volume group whose physical
volumes are DEVICE..., with src/lvm (no LVM2 tools or device-mapper needed).`,
  commands: { ls, create, extend, shrink, remove },
});
