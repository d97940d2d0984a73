/**
 * A volume group over one or more PV BlockDevices: what `openVolumeGroup`
 * returns. It lists the LVs, opens each linear or striped LV as a
 * BlockDevice, and creates, extends, shrinks and removes linear LVs by
 * writing new metadata to every metadata area of the VG (src/lvm/commit.ts).
 *
 * Changes run one at a time (a promise chain); each either commits
 * completely or writes nothing and rejects with a typed error.
 */
import { InvalidArgumentError, ReadOnlyError, UnsupportedError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';
import { allocate, appendRuns, areaAfter, freeExtentCount, isLinear, truncateSegments } from './allocate.js';
import { commitText, type MdaTarget } from './commit.js';
import { lookup, parseConfig, type ConfigSection } from './config.js';
import { addLv, draft, metadataText, removeLv, setSegments } from './edit.js';
import { CorruptMetadataError } from './errors.js';
import { SECTOR } from './layout.js';
import { LogicalVolumeDevice, type LvMap, type PvTarget } from './lv-device.js';
import { interpretMetadata, parseMetadata, vgSection, type LogicalVolume, type Segment, type VolumeGroupMetadata } from './metadata.js';
import { readPv, type PvRead } from './scan.js';

/** A size: whole extents, or bytes (rounded up to whole extents). */
export type LvSize = { readonly extents: number } | { readonly bytes: bigint | number };

export interface LogicalVolumeInfo {
  readonly name: string;
  readonly id: string;
  readonly extentCount: number;
  readonly sizeBytes: bigint;
  /** Every segment is linear: the LV can be extended and shrunk here. */
  readonly linear: boolean;
  /** The LV can be opened as a BlockDevice (linear or striped, all PVs present). */
  readonly mappable: boolean;
  readonly status: readonly string[];
  readonly segments: readonly Segment[];
}

export interface OpenLvOptions {
  readonly readOnly?: boolean;
}

const LV_NAME = /^[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,126}$/;
const RESERVED_PREFIX = ['pvmove', 'snapshot'];
const RESERVED_PART = ['_cdata', '_cmeta', '_corig', '_cpool', '_cvol', '_wcorig', '_mimage', '_mlog', '_rimage', '_rmeta', '_tdata', '_tmeta', '_vdata', '_imeta', '_iorig', '_pmspare', '_vorigin'];

/** LVM2's rules for a new LV name (validate_name, apply_lvname_restrictions). */
export function checkLvName(name: unknown): string {
  if (typeof name !== 'string' || !LV_NAME.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError('name', `${JSON.stringify(String(name))} is not an LV name (1-127 of A-Z a-z 0-9 + _ . -, not starting with -)`);
  }
  const bad = RESERVED_PREFIX.find((p) => name.startsWith(p)) ?? RESERVED_PART.find((p) => name.includes(p));
  if (bad !== undefined) throw new InvalidArgumentError('name', `names with "${bad}" are reserved by LVM2`);
  return name;
}

export class VolumeGroup {
  #meta: VolumeGroupMetadata;
  #targets: MdaTarget[];
  readonly #pvDevices: ReadonlyMap<string, BlockDevice>;
  readonly #sectorSize: number;
  readonly #open = new Map<string, Set<LogicalVolumeDevice>>();
  #queue: Promise<unknown> = Promise.resolve();
  /** A metadata area whose header is unreadable: a change could not reach it, so none is made. */
  readonly #brokenArea: CorruptMetadataError | undefined;

  /** @internal use openVolumeGroup */
  constructor(
    meta: VolumeGroupMetadata,
    targets: MdaTarget[],
    pvDevices: ReadonlyMap<string, BlockDevice>,
    sectorSize: number,
    brokenArea?: CorruptMetadataError,
  ) {
    this.#brokenArea = brokenArea;
    this.#meta = meta;
    this.#targets = targets;
    this.#pvDevices = pvDevices;
    this.#sectorSize = sectorSize;
  }

  get name(): string {
    return this.#meta.name;
  }
  get id(): string {
    return this.#meta.id;
  }
  get seqno(): number {
    return this.#meta.seqno;
  }
  /** Bytes per extent. */
  get extentBytes(): bigint {
    return BigInt(this.#meta.extentSize) * BigInt(SECTOR);
  }
  /** The checked metadata now in force. */
  get metadata(): VolumeGroupMetadata {
    return this.#meta;
  }
  get freeExtents(): number {
    return freeExtentCount(this.#meta);
  }
  /** Names of PVs of the VG that were not among the devices given. */
  get missingPvs(): string[] {
    return this.#meta.pvs.filter((p) => !this.#pvDevices.has(p.name)).map((p) => p.name);
  }

  /** The LVs, in metadata order. */
  lvs(): LogicalVolumeInfo[] {
    return this.#meta.lvs.map((lv) => this.#describe(lv));
  }

  lv(name: string): LogicalVolumeInfo {
    return this.#describe(this.#find(name));
  }

  #describe(lv: LogicalVolume): LogicalVolumeInfo {
    const mappable = lv.segments.every((s) => s.type === 'striped' && s.areas.every((a) => this.#pvDevices.has(a.pv)));
    return {
      name: lv.name,
      id: lv.id,
      extentCount: lv.extentCount,
      sizeBytes: BigInt(lv.extentCount) * this.extentBytes,
      linear: isLinear(lv),
      mappable,
      status: lv.status,
      segments: lv.segments,
    };
  }

  #find(name: string): LogicalVolume {
    const lv = this.#meta.lvs.find((l) => l.name === name);
    if (lv === undefined) throw new InvalidArgumentError('name', `VG ${this.name} has no LV ${JSON.stringify(String(name))}`);
    return lv;
  }

  #map(lv: LogicalVolume): LvMap {
    const pvs = new Map<string, PvTarget>();
    for (const seg of lv.segments) {
      if (seg.type !== 'striped') throw new UnsupportedError(`LV ${lv.name} has a ${seg.type} segment; only linear and striped LVs are mapped`);
      for (const a of seg.areas) {
        const device = this.#pvDevices.get(a.pv);
        if (device === undefined) throw new UnsupportedError(`LV ${lv.name} uses ${a.pv}, whose device was not given`);
        pvs.set(a.pv, { device, peStart: this.#meta.pvs.find((p) => p.name === a.pv)!.peStart });
      }
    }
    return { extentSize: this.#meta.extentSize, segments: lv.segments, extentCount: lv.extentCount, pvs };
  }

  /** Opens LV `name` as a BlockDevice. Its disconnect() leaves the PV devices open. */
  async openLogicalVolume(name: string, options: OpenLvOptions = {}): Promise<LogicalVolumeDevice> {
    const lv = this.#find(name);
    const readOnly = options.readOnly === true || !lv.status.includes('WRITE');
    const set = this.#open.get(name) ?? new Set();
    const dev: LogicalVolumeDevice = new LogicalVolumeDevice(this.#map(lv), {
      readOnly,
      sectorSize: this.#sectorSize,
      onDisconnect: () => void set.delete(dev),
    });
    set.add(dev);
    this.#open.set(name, set);
    return dev;
  }

  #extents(size: LvSize, field: string): number {
    let n: bigint;
    if (typeof size === 'object' && size !== null && 'extents' in size) {
      if (!Number.isSafeInteger(size.extents)) throw new InvalidArgumentError(field, `extents must be an integer, got ${String(size.extents)}`);
      n = BigInt(size.extents);
    } else if (typeof size === 'object' && size !== null && 'bytes' in size && (typeof size.bytes === 'bigint' || Number.isSafeInteger(size.bytes))) {
      n = (BigInt(size.bytes) + this.extentBytes - 1n) / this.extentBytes;
    } else {
      throw new InvalidArgumentError(field, 'must be { extents } or { bytes }');
    }
    if (n <= 0n || n > 0xffffffffn) throw new InvalidArgumentError(field, `${n} extents is not in [1, 2^32)`);
    return Number(n);
  }

  /** Refuses changes LVM2 itself would refuse, or that we cannot make safely. */
  #checkChangeable(): void {
    if (!this.#meta.status.includes('WRITE')) throw new ReadOnlyError(`VG ${this.name} is not writable (status ${this.#meta.status.join(',')})`);
    if (this.#brokenArea !== undefined) {
      throw new CorruptMetadataError(this.#brokenArea.part, `no change is made while a metadata area is unreadable: ${this.#brokenArea.message}`);
    }
    const missing = this.missingPvs;
    if (missing.length > 0) throw new UnsupportedError(`VG ${this.name} is missing ${missing.join(', ')}: open it with every PV to change it`);
    const { vg } = vgSection(this.#meta.tree);
    if (lookup(vg, 'lock_type') !== undefined) throw new UnsupportedError(`VG ${this.name} is a shared (lvmlockd) VG`);
    for (const lv of this.#meta.lvs) {
      const other = lv.segments.find((s) => !['striped', 'error', 'zero'].includes(s.type));
      if (other !== undefined) throw new UnsupportedError(`VG ${this.name} holds a ${other.type} LV (${lv.name}); xenpv changes only VGs of linear, striped, error and zero LVs`);
    }
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Commits `tree` as the next metadata; on success it becomes the VG's state. */
  async #commit(tree: ConfigSection, description: string, now: Date): Promise<void> {
    const text = metadataText(tree, description, now);
    // Read our own text back the way LVM2 will, before writing it anywhere.
    const next = parseMetadata(text);
    this.#targets = await commitText(this.#targets, text, this.name);
    this.#meta = next;
  }

  /** Open devices of `name` take the committed mapping (after an extend: the new extents are the LV's now). */
  #remapOpen(name: string): void {
    const lv = this.#meta.lvs.find((l) => l.name === name);
    for (const dev of this.#open.get(name) ?? []) if (lv !== undefined) dev.remap(this.#map(lv));
  }

  /** Creates linear LV `name` of `size`. */
  createLogicalVolume(name: string, size: LvSize): Promise<LogicalVolumeInfo> {
    return this.#serial(async () => {
      checkLvName(name);
      const count = this.#extents(size, 'size');
      this.#checkChangeable();
      if (this.#meta.lvs.some((l) => l.name === name)) throw new InvalidArgumentError('name', `VG ${this.name} already has an LV ${name}`);
      const visible = this.#meta.lvs.filter((l) => l.status.includes('VISIBLE')).length;
      if (this.#meta.maxLv > 0 && visible >= this.#meta.maxLv) throw new UnsupportedError(`VG ${this.name} allows at most ${this.#meta.maxLv} LVs`);
      const segments = appendRuns([], allocate(this.#meta, count));
      const now = new Date();
      const d = draft(this.#meta.tree);
      addLv(d.lvs(), name, segments, now);
      await this.#commit(d.tree, `Write from xenpv lvcreate ${name} (${count} extents).`, now);
      return this.lv(name);
    });
  }

  /** Grows linear LV `name` to `size` (more than it has now). */
  extendLogicalVolume(name: string, size: LvSize): Promise<LogicalVolumeInfo> {
    return this.#serial(async () => {
      const lv = this.#find(name);
      const count = this.#extents(size, 'size');
      this.#checkChangeable();
      if (!isLinear(lv)) throw new UnsupportedError(`LV ${name} is not linear`);
      if (count <= lv.extentCount) throw new InvalidArgumentError('size', `${count} extents is not more than LV ${name}'s ${lv.extentCount}`);
      const segments = appendRuns(lv.segments, allocate(this.#meta, count - lv.extentCount, areaAfter(lv)));
      const now = new Date();
      const d = draft(this.#meta.tree);
      setSegments(lookup(d.lvs(), name) as ConfigSection, segments);
      await this.#commit(d.tree, `Write from xenpv lvextend ${name} (${count} extents).`, now);
      this.#remapOpen(name);
      return this.lv(name);
    });
  }

  /** Cuts linear LV `name` down to `size` (less than it has now, at least one extent); the tail's data is gone. */
  shrinkLogicalVolume(name: string, size: LvSize): Promise<LogicalVolumeInfo> {
    return this.#serial(async () => {
      const lv = this.#find(name);
      const count = this.#extents(size, 'size');
      this.#checkChangeable();
      if (!isLinear(lv)) throw new UnsupportedError(`LV ${name} is not linear`);
      if (count >= lv.extentCount) throw new InvalidArgumentError('size', `${count} extents is not less than LV ${name}'s ${lv.extentCount}`);
      const segments = truncateSegments(lv.segments, count);
      const now = new Date();
      const d = draft(this.#meta.tree);
      setSegments(lookup(d.lvs(), name) as ConfigSection, segments);
      // Open devices stop at the new end before the extents are freed, and
      // requests already admitted on the old mapping finish first.
      const open = [...(this.#open.get(name) ?? [])];
      const shrunk = { ...this.#map(lv), segments, extentCount: count };
      const before = open.map((dev) => dev.map);
      open.forEach((dev) => dev.remap(shrunk));
      await Promise.all(open.map((dev) => dev.drain()));
      try {
        await this.#commit(d.tree, `Write from xenpv lvreduce ${name} (${count} extents).`, now);
      } catch (err) {
        open.forEach((dev, i) => dev.remap(before[i]!));
        throw err;
      }
      return this.lv(name);
    });
  }

  /** Removes LV `name`; refused while a device opened on it is connected. */
  removeLogicalVolume(name: string): Promise<void> {
    return this.#serial(async () => {
      this.#find(name);
      this.#checkChangeable();
      if ((this.#open.get(name)?.size ?? 0) > 0) throw new InvalidArgumentError('name', `LV ${name} is open: disconnect its devices first`);
      const now = new Date();
      const d = draft(this.#meta.tree);
      removeLv(d.vg, d.lvs(), name);
      await this.#commit(d.tree, `Write from xenpv lvremove ${name}.`, now);
    });
  }
}

/** The newest readable copy of the metadata among `pvs`' areas. */
function bestCopy(pvs: readonly PvRead[]): VolumeGroupMetadata {
  let best: VolumeGroupMetadata | undefined;
  let firstError: CorruptMetadataError | undefined;
  for (const pv of pvs) {
    for (const m of pv.mdas) {
      if (m.error) firstError ??= m.error;
      if (m.text === undefined) continue;
      let meta: VolumeGroupMetadata;
      try {
        meta = interpretMetadata(parseConfig(m.text));
      } catch (err) {
        if (err instanceof CorruptMetadataError) {
          firstError ??= err;
          continue;
        }
        throw err;
      }
      if (best !== undefined && best.id !== meta.id) {
        throw new InvalidArgumentError('devices', `the devices hold two different VGs (${best.name}, ${meta.name})`);
      }
      if (best === undefined || meta.seqno > best.seqno) best = meta;
    }
  }
  if (best !== undefined) return best;
  if (firstError !== undefined) throw firstError;
  throw new InvalidArgumentError('device', 'the physical volume holds no volume group metadata (not in a VG)');
}

/**
 * Reads the VG on `devices` (its PVs; one device or several). Rejects with
 * `invalid-argument` for a device that is not a PV or a PV in no VG,
 * `corrupt` when no metadata copy is readable or the newest one is
 * inconsistent, and with the devices' own errors.
 */
export async function openVolumeGroup(devices: BlockDevice | readonly BlockDevice[]): Promise<VolumeGroup> {
  const list = Array.isArray(devices) ? [...devices] : [devices as BlockDevice];
  if (list.length === 0) throw new InvalidArgumentError('devices', 'no device given');
  const reads: PvRead[] = [];
  for (const d of list) reads.push(await readPv(d));
  const meta = bestCopy(reads);
  const sectorSize = list[0]!.info().sectorSize;
  const pvDevices = new Map<string, BlockDevice>();
  const targets: MdaTarget[] = [];
  for (const r of reads) {
    const pv = meta.pvs.find((p) => p.id === r.label.uuid);
    if (pv === undefined) throw new InvalidArgumentError('devices', `PV ${r.label.uuid} is not in VG ${meta.name}`);
    if (pvDevices.has(pv.name)) throw new InvalidArgumentError('devices', `PV ${r.label.uuid} (${pv.name}) is given twice`);
    if (r.device.info().sectorSize !== sectorSize) throw new UnsupportedError('the PVs have different sector sizes');
    const bytes = r.device.info().sizeSectors * BigInt(r.device.info().sectorSize);
    const end = (pv.peStart + BigInt(pv.peCount) * BigInt(meta.extentSize)) * BigInt(SECTOR);
    if (end > bytes) throw new CorruptMetadataError('metadata', `${pv.name}'s extents end at byte ${end}, past the end of its ${bytes}-byte device`);
    pvDevices.set(pv.name, r.device);
    for (const m of r.mdas) if (!m.ignored && m.header !== undefined) targets.push({ device: r.device, header: m.header });
  }
  const broken = reads.flatMap((r) => r.mdas.filter((m) => m.header === undefined).map((m) => m.error!));
  return new VolumeGroup(meta, targets, pvDevices, sectorSize, broken[0]);
}
