/**
 * Volume group metadata: the config tree of one metadata text, read into a
 * typed, checked model (lib/format_text/import_vsn1.c names the fields).
 * Units follow the text: extent_size, pe_start, dev_size and stripe_size
 * are 512-byte sectors; extents are counted in extents.
 *
 *   vgname {
 *     id = "…"  seqno = N  status = [...]  extent_size = S  max_lv = M …
 *     physical_volumes { pv0 { id = "…"  pe_start = P  pe_count = C  dev_size = D … } … }
 *     logical_volumes {
 *       lvname { id = "…"  status = [...]  segment_count = K
 *         segment1 { start_extent = 0  extent_count = E  type = "striped"
 *                    stripe_count = 1  stripes = ["pv0", 0] } … } … }
 *   }
 *   contents = "Text Format Volume Group"  version = 1  description = "…" …
 *
 * Everything that could make an LV map outside its PV is checked here
 * (areas past pe_count, extents used twice, segments with gaps), so an
 * absurd metadata text is a CorruptMetadataError, never a wild write.
 */
import { isSection, lookup, parseConfig, type ConfigScalar, type ConfigSection } from './config.js';
import { CorruptMetadataError } from './errors.js';

export const CONTENTS = 'Text Format Volume Group';
const U32 = 0xffffffffn;

export interface PhysicalVolume {
  /** Key in physical_volumes, referenced by segments (`pv0`). */
  readonly name: string;
  /** Dashed uuid, as in the PV label. */
  readonly id: string;
  /** The device path hint LVM2 wrote, if any. */
  readonly device?: string;
  readonly status: readonly string[];
  /** Sectors; absent in old metadata. */
  readonly devSize?: bigint;
  /** First sector of extent 0. */
  readonly peStart: bigint;
  readonly peCount: number;
}

/** One stripe's place: `extent` on PV `pv`. */
export interface Area {
  readonly pv: string;
  readonly extent: number;
}

export interface Segment {
  readonly startExtent: number;
  readonly extentCount: number;
  /** `striped` (linear is striped with one stripe), or another LVM2 type we do not map. */
  readonly type: string;
  /** Areas of a `striped` segment; each holds extentCount / areas.length extents. */
  readonly areas: readonly Area[];
  /** Sectors per stripe chunk, for more than one area. */
  readonly stripeSize?: number;
}

export interface LogicalVolume {
  readonly name: string;
  readonly id: string;
  readonly status: readonly string[];
  readonly segments: readonly Segment[];
  readonly extentCount: number;
}

export interface VolumeGroupMetadata {
  readonly name: string;
  readonly id: string;
  readonly seqno: number;
  readonly status: readonly string[];
  /** Sectors per extent. */
  readonly extentSize: number;
  readonly maxLv: number;
  readonly pvs: readonly PhysicalVolume[];
  readonly lvs: readonly LogicalVolume[];
  /** The whole parsed text (VG section and header), for edits that keep what we do not model. */
  readonly tree: ConfigSection;
}

const bad = (where: string, msg: string): never => {
  throw new CorruptMetadataError('metadata', `${where}: ${msg}`);
};

function section(s: ConfigSection, key: string, where: string, optional = false): ConfigSection | undefined {
  const v = lookup(s, key);
  if (v === undefined) return optional ? undefined : bad(where, `missing section ${key}`);
  return isSection(v) ? v : bad(where, `${key} is not a section`);
}

function int(s: ConfigSection, key: string, where: string, max: bigint, optional: true): bigint | undefined;
function int(s: ConfigSection, key: string, where: string, max: bigint, optional?: false): bigint;
function int(s: ConfigSection, key: string, where: string, max: bigint, optional = false): bigint | undefined {
  const v = lookup(s, key);
  if (v === undefined) return optional ? undefined : bad(where, `missing ${key}`);
  if (typeof v !== 'bigint') return bad(where, `${key} is not an integer`);
  if (v < 0n || v > max) return bad(where, `${key} = ${v} is out of range [0, ${max}]`);
  return v;
}

function str(s: ConfigSection, key: string, where: string, optional = false): string | undefined {
  const v = lookup(s, key);
  if (v === undefined) return optional ? undefined : bad(where, `missing ${key}`);
  return typeof v === 'string' ? v : bad(where, `${key} is not a string`);
}

function strings(s: ConfigSection, key: string, where: string): string[] {
  const v = lookup(s, key);
  if (v === undefined) return bad(where, `missing ${key}`);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return bad(where, `${key} is not a list of strings`);
  return [...(v as string[])];
}

const ID = /^[0-9A-Za-z!#]{6}(-[0-9A-Za-z!#]{4}){5}-[0-9A-Za-z!#]{6}$/;
function uuid(s: ConfigSection, where: string): string {
  const id = str(s, 'id', where)!;
  return ID.test(id) ? id : bad(where, `id ${JSON.stringify(id)} is not an LVM2 uuid`);
}

/** The first top-level section is the volume group (as _read_vg finds it). */
export function vgSection(tree: ConfigSection): { name: string; vg: ConfigSection } {
  const e = tree.entries.find((x) => isSection(x.value));
  if (e === undefined) return bad('metadata', 'no volume group section');
  return { name: e.key, vg: e.value as ConfigSection };
}

/** Parses and checks one metadata text. */
export function parseMetadata(text: string): VolumeGroupMetadata {
  return interpretMetadata(parseConfig(text));
}

/** Checks and types a parsed metadata tree. */
export function interpretMetadata(tree: ConfigSection): VolumeGroupMetadata {
  const contents = str(tree, 'contents', 'metadata', true);
  if (contents !== undefined && contents !== CONTENTS) bad('metadata', `contents ${JSON.stringify(contents)} is not ${CONTENTS}`);
  const version = int(tree, 'version', 'metadata', U32, true);
  if (version !== undefined && version !== 1n) bad('metadata', `format version ${version} is not 1`);
  const { name, vg } = vgSection(tree);
  const w = `volume group ${name}`;
  const extentSize = Number(int(vg, 'extent_size', w, U32));
  if (extentSize === 0) bad(w, 'extent_size is 0');
  const pvs = readPvs(section(vg, 'physical_volumes', w)!, extentSize, w);
  const byName = new Map(pvs.map((p) => [p.name, p]));
  const lvSection = section(vg, 'logical_volumes', w, true);
  const lvs = lvSection === undefined ? [] : lvSection.entries.map((e) => readLv(e.key, e.value, byName));
  checkNoOverlap(lvs);
  return {
    name,
    id: uuid(vg, w),
    seqno: Number(int(vg, 'seqno', w, U32)),
    status: strings(vg, 'status', w),
    extentSize,
    maxLv: Number(int(vg, 'max_lv', w, U32, true) ?? 0n),
    pvs,
    lvs,
    tree,
  };
}

function readPvs(s: ConfigSection, extentSize: number, where: string): PhysicalVolume[] {
  return s.entries.map((e) => {
    const w = `${where}: physical volume ${e.key}`;
    if (!isSection(e.value)) return bad(w, 'is not a section');
    const pv = e.value;
    const peStart = int(pv, 'pe_start', w, 1n << 55n);
    const peCount = Number(int(pv, 'pe_count', w, U32));
    const devSize = int(pv, 'dev_size', w, 1n << 55n, true);
    if (devSize !== undefined && peStart + BigInt(peCount) * BigInt(extentSize) > devSize) {
      bad(w, `${peCount} extents of ${extentSize} sectors from sector ${peStart} do not fit in dev_size ${devSize}`);
    }
    return { name: e.key, id: uuid(pv, w), device: str(pv, 'device', w, true), status: strings(pv, 'status', w), devSize, peStart, peCount };
  });
}

function readLv(name: string, value: unknown, pvs: ReadonlyMap<string, PhysicalVolume>): LogicalVolume {
  const w = `logical volume ${name}`;
  if (!isSection(value as ConfigSection)) return bad(w, 'is not a section');
  const lv = value as ConfigSection;
  const segs = lv.entries.filter((e) => isSection(e.value));
  const count = Number(int(lv, 'segment_count', w, U32));
  if (count !== segs.length) bad(w, `segment_count ${count} but ${segs.length} segments`);
  let next = 0;
  const segments = segs.map((e) => {
    const seg = readSegment(`${w} ${e.key}`, e.value as ConfigSection, pvs);
    if (seg.startExtent !== next) bad(`${w} ${e.key}`, `starts at extent ${seg.startExtent}, expected ${next}`);
    next += seg.extentCount;
    return seg;
  });
  if (next > 0xffffffff) bad(w, `${next} extents is more than LVM2 can count`);
  return { name, id: uuid(lv, w), status: strings(lv, 'status', w), segments, extentCount: next };
}

function readSegment(w: string, s: ConfigSection, pvs: ReadonlyMap<string, PhysicalVolume>): Segment {
  const startExtent = Number(int(s, 'start_extent', w, U32));
  const extentCount = Number(int(s, 'extent_count', w, U32));
  if (extentCount === 0) bad(w, 'extent_count is 0');
  const type = str(s, 'type', w)!;
  if (type !== 'striped') return { startExtent, extentCount, type, areas: [] };
  const list = lookup(s, 'stripes');
  if (!Array.isArray(list) || list.length === 0 || list.length % 2 !== 0) return bad(w, 'stripes is not a list of "pvN", extent pairs');
  const items = list as readonly ConfigScalar[];
  const stripeCount = Number(int(s, 'stripe_count', w, U32));
  if (stripeCount !== items.length / 2) bad(w, `stripe_count ${stripeCount} but ${items.length / 2} stripes`);
  if (extentCount % stripeCount !== 0) bad(w, `${extentCount} extents do not divide into ${stripeCount} stripes`);
  const per = extentCount / stripeCount;
  const areas: Area[] = [];
  for (let i = 0; i < items.length; i += 2) {
    const pv = items[i];
    const ext = items[i + 1];
    if (typeof pv !== 'string' || typeof ext !== 'bigint') return bad(w, `stripe ${i / 2} is not a "pvN", extent pair`);
    const p = pvs.get(pv);
    if (p === undefined) return bad(w, `stripe ${i / 2} names unknown physical volume ${pv}`);
    if (ext < 0n || ext + BigInt(per) > BigInt(p.peCount)) {
      bad(w, `stripe ${i / 2} extents [${ext}, ${ext + BigInt(per)}) lie outside ${pv}'s ${p.peCount} extents`);
    }
    areas.push({ pv, extent: Number(ext) });
  }
  let stripeSize: number | undefined;
  if (stripeCount > 1) {
    stripeSize = Number(int(s, 'stripe_size', w, U32));
    if (stripeSize === 0) bad(w, 'stripe_size is 0');
  }
  return { startExtent, extentCount, type, areas, stripeSize };
}

/** Extents used on each PV, sorted: [first, end) runs. */
export function usedExtents(lvs: readonly LogicalVolume[]): Map<string, Array<{ first: number; end: number; lv: string }>> {
  const used = new Map<string, Array<{ first: number; end: number; lv: string }>>();
  for (const lv of lvs) {
    for (const seg of lv.segments) {
      const per = seg.areas.length === 0 ? 0 : seg.extentCount / seg.areas.length;
      for (const a of seg.areas) {
        const runs = used.get(a.pv) ?? [];
        runs.push({ first: a.extent, end: a.extent + per, lv: lv.name });
        used.set(a.pv, runs);
      }
    }
  }
  for (const runs of used.values()) runs.sort((a, b) => a.first - b.first);
  return used;
}

function checkNoOverlap(lvs: readonly LogicalVolume[]): void {
  for (const [pv, runs] of usedExtents(lvs)) {
    for (let i = 1; i < runs.length; i++) {
      if (runs[i]!.first < runs[i - 1]!.end) {
        bad(`physical volume ${pv}`, `extent ${runs[i]!.first} is used by both ${runs[i - 1]!.lv} and ${runs[i]!.lv}`);
      }
    }
  }
}
