/**
 * Extent allocation for linear LVs: which free physical extents a new or
 * growing LV gets, and how a shrinking LV's segments are cut. Pure
 * functions over the metadata model.
 *
 * Policy (a subset of LVM2's "normal"): first the extents right after the
 * LV's last extent, if free (the LV grows in place); then the first free
 * run that holds everything still needed; else free runs in PV and extent
 * order until enough. Only PVs whose status has ALLOCATABLE give extents.
 */
import { NoSpaceError } from './errors.js';
import { usedExtents, type Area, type LogicalVolume, type Segment, type VolumeGroupMetadata } from './metadata.js';

/** A run of `count` extents from `extent` on `pv`. */
export interface Run {
  readonly pv: string;
  readonly extent: number;
  readonly count: number;
}

/** Free runs of every allocatable PV, in PV then extent order. */
export function freeRuns(vg: VolumeGroupMetadata): Run[] {
  const used = usedExtents(vg.lvs);
  const out: Run[] = [];
  for (const pv of vg.pvs) {
    if (!pv.status.includes('ALLOCATABLE')) continue;
    let at = 0;
    for (const u of used.get(pv.name) ?? []) {
      if (u.first > at) out.push({ pv: pv.name, extent: at, count: u.first - at });
      at = Math.max(at, u.end);
    }
    if (pv.peCount > at) out.push({ pv: pv.name, extent: at, count: pv.peCount - at });
  }
  return out;
}

export function freeExtentCount(vg: VolumeGroupMetadata): number {
  return freeRuns(vg).reduce((n, r) => n + r.count, 0);
}

/** Chooses `count` free extents; `after` is the area right after the LV's current end, if any. */
export function allocate(vg: VolumeGroupMetadata, count: number, after?: Area): Run[] {
  let runs = freeRuns(vg);
  const total = runs.reduce((n, r) => n + r.count, 0);
  if (total < count) throw new NoSpaceError(`VG ${vg.name} has ${total} free extents, ${count} needed`);
  const out: Run[] = [];
  let need = count;
  const take = (r: Run, n: number): void => {
    out.push({ pv: r.pv, extent: r.extent, count: n });
    need -= n;
    runs = runs.map((x) => (x === r ? { ...x, extent: x.extent + n, count: x.count - n } : x)).filter((x) => x.count > 0);
  };
  if (after !== undefined) {
    const r = runs.find((x) => x.pv === after.pv && x.extent === after.extent);
    if (r !== undefined) take(r, Math.min(r.count, need));
  }
  if (need > 0) {
    const whole = runs.find((x) => x.count >= need);
    if (whole !== undefined) take(whole, need);
  }
  while (need > 0) take(runs[0]!, Math.min(runs[0]!.count, need));
  return out;
}

/** True iff every segment is linear (`striped` with one area). */
export function isLinear(lv: LogicalVolume): boolean {
  return lv.segments.every((s) => s.type === 'striped' && s.areas.length === 1);
}

/** Appends `runs` to `segments` as linear segments, merging a run that continues the last segment. */
export function appendRuns(segments: readonly Segment[], runs: readonly Run[]): Segment[] {
  const out = [...segments];
  for (const r of runs) {
    const last = out[out.length - 1];
    const a = last?.areas[0];
    if (last !== undefined && last.type === 'striped' && last.areas.length === 1 && a!.pv === r.pv && a!.extent + last.extentCount === r.extent) {
      out[out.length - 1] = { ...last, extentCount: last.extentCount + r.count };
    } else {
      const start = last === undefined ? 0 : last.startExtent + last.extentCount;
      out.push({ startExtent: start, extentCount: r.count, type: 'striped', areas: [{ pv: r.pv, extent: r.extent }] });
    }
  }
  return out;
}

/** The first `count` extents of a linear LV's segments. */
export function truncateSegments(segments: readonly Segment[], count: number): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    if (s.startExtent >= count) break;
    const keep = Math.min(s.extentCount, count - s.startExtent);
    out.push(keep === s.extentCount ? s : { ...s, extentCount: keep });
  }
  return out;
}

/** The area just after a linear LV's last extent (where growing in place continues). */
export function areaAfter(lv: LogicalVolume): Area | undefined {
  const last = lv.segments[lv.segments.length - 1];
  if (last === undefined || last.areas.length !== 1) return undefined;
  return { pv: last.areas[0]!.pv, extent: last.areas[0]!.extent + last.extentCount };
}
