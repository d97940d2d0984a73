/**
 * A logical volume as a BlockDevice: each request is cut at segment and
 * stripe-chunk boundaries and sent to the PV devices at
 *
 *   byte = (pe_start + area.extent × extent_size) × 512 + offset in the area
 *
 * For a segment of N > 1 stripes with chunks of `stripe_size` sectors,
 * chunk c of the segment lies on stripe c mod N, row ⌊c / N⌋ of that
 * stripe's area (dm-stripe's layout).
 *
 * The mapping can change under the device (the VG extends or shrinks the
 * LV): `remap()` swaps it between requests and emits the resize event; a
 * request uses the mapping it started with. `drain()` waits for those.
 */
import type { BlockDevice, BlockInfo, ResizeListener } from '../block/types.js';
import { ResizeNotifier } from '../block/resize.js';
import { checkConnected, validateDiscard, validateFlush, validateRead, validateWrite } from '../block/validate.js';
import { UnsupportedError } from '../errors.js';
import { SECTOR } from './layout.js';
import type { Segment } from './metadata.js';

export interface PvTarget {
  readonly device: BlockDevice;
  /** pe_start, 512-byte sectors. */
  readonly peStart: bigint;
}

export interface LvMap {
  /** Sectors per extent. */
  readonly extentSize: number;
  readonly segments: readonly Segment[];
  readonly extentCount: number;
  readonly pvs: ReadonlyMap<string, PvTarget>;
}

export interface Piece {
  readonly device: BlockDevice;
  /** Byte offset on the PV device. */
  readonly at: bigint;
  readonly length: bigint;
}

/** Where bytes [offset, offset + length) of the LV lie on its PVs. */
export function mapBytes(map: LvMap, offset: bigint, length: bigint): Piece[] {
  const es = BigInt(map.extentSize) * BigInt(SECTOR);
  const out: Piece[] = [];
  let pos = offset;
  const end = offset + length;
  for (const seg of map.segments) {
    const segStart = BigInt(seg.startExtent) * es;
    const segEnd = segStart + BigInt(seg.extentCount) * es;
    while (pos < end && pos >= segStart && pos < segEnd) {
      const off = pos - segStart;
      const n = BigInt(seg.areas.length);
      let area = seg.areas[0]!;
      let inArea = off;
      let room = segEnd - pos;
      if (n > 1n) {
        const ss = BigInt(seg.stripeSize!) * BigInt(SECTOR);
        const chunk = off / ss;
        const within = off % ss;
        area = seg.areas[Number(chunk % n)]!;
        inArea = (chunk / n) * ss + within;
        room = ss - within;
      }
      const pv = map.pvs.get(area.pv)!;
      const len = [room, end - pos].reduce((a, b) => (a < b ? a : b));
      out.push({ device: pv.device, at: (pv.peStart + BigInt(area.extent) * BigInt(map.extentSize)) * BigInt(SECTOR) + inArea, length: len });
      pos += len;
    }
  }
  return out;
}

/** Fails with `unsupported` unless every boundary of `map` falls on a sector of `sectorSize`. */
export function checkAlignment(map: LvMap, sectorSize: number): void {
  const s = BigInt(sectorSize);
  const ok = (bytes: bigint): boolean => bytes % s === 0n;
  if (!ok(BigInt(map.extentSize) * 512n)) throw new UnsupportedError(`extent size ${map.extentSize} sectors is not a multiple of the ${sectorSize}-byte device sector`);
  for (const [name, pv] of map.pvs) {
    if (!ok(pv.peStart * 512n)) throw new UnsupportedError(`pe_start of ${name} is not a multiple of the ${sectorSize}-byte device sector`);
  }
  for (const seg of map.segments) {
    if (seg.stripeSize !== undefined && !ok(BigInt(seg.stripeSize) * 512n)) {
      throw new UnsupportedError(`stripe size ${seg.stripeSize} sectors is not a multiple of the ${sectorSize}-byte device sector`);
    }
  }
}

export class LogicalVolumeDevice implements BlockDevice {
  #map: LvMap;
  #info: BlockInfo;
  readonly #readOnly: boolean;
  readonly #sectorSize: number;
  #connected = true;
  #closing: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #resize = new ResizeNotifier();
  readonly #onDisconnect: () => void;

  /** `sectorSize` is that of every PV device (the VG checks they agree). */
  constructor(map: LvMap, options: { readonly readOnly: boolean; readonly sectorSize: number; readonly onDisconnect: () => void }) {
    this.#readOnly = options.readOnly;
    this.#sectorSize = options.sectorSize;
    this.#onDisconnect = options.onDisconnect;
    checkAlignment(map, this.#sectorSize);
    this.#map = map;
    this.#info = this.#describe();
  }

  #describe(): BlockInfo {
    const pvs = [...new Set([...this.#map.pvs.values()].map((p) => p.device))].map((d) => d.info());
    const all = (f: (i: BlockInfo) => boolean): boolean => pvs.length > 0 && pvs.every(f);
    const discard = all((i) => i.features.discard);
    return {
      readWrite: !this.#readOnly && all((i) => i.readWrite),
      sectorSize: this.#sectorSize,
      physicalSectorSize: Math.max(this.#sectorSize, ...pvs.map((i) => i.physicalSectorSize)),
      sizeSectors: (BigInt(this.#map.extentCount) * BigInt(this.#map.extentSize) * 512n) / BigInt(this.#sectorSize),
      features: { flush: all((i) => i.features.flush), barrier: false, discard },
      ...(discard
        ? { discard: { granularity: Math.max(...pvs.map((i) => i.discard?.granularity ?? this.#sectorSize)), alignment: 0, secure: all((i) => i.discard?.secure === true) } }
        : {}),
      media: 'disk',
      removable: false,
    };
  }

  info(): BlockInfo {
    return this.#info;
  }

  /** The mapping now in use. */
  get map(): LvMap {
    return this.#map;
  }

  /** Swaps in a new mapping (after the LV changed size); emits the resize event if the size changed. */
  remap(map: LvMap): void {
    checkAlignment(map, this.#sectorSize);
    const before = this.#info.sizeSectors;
    this.#map = map;
    this.#info = this.#describe();
    if (this.#info.sizeSectors !== before) this.#resize.emit(this.#info);
  }

  /** Resolves once every request admitted so far has settled. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #run(op: () => Promise<void>): Promise<void> {
    let p: Promise<void>;
    try {
      checkConnected(this.#connected);
      p = op();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#inFlight.add(p);
    const done = (): void => void this.#inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Runs `io` for each PV piece of the request, handing it the piece's slices of `buffers`. */
  async #each(sector: bigint, buffers: readonly Uint8Array[], bytes: number, io: (dev: BlockDevice, sector: bigint, parts: Uint8Array[]) => Promise<void>): Promise<void> {
    const ss = BigInt(this.#sectorSize);
    const pieces = mapBytes(this.#map, sector * ss, BigInt(bytes));
    let bi = 0;
    let bo = 0;
    const jobs: Promise<void>[] = [];
    for (const piece of pieces) {
      const parts: Uint8Array[] = [];
      let need = Number(piece.length);
      while (need > 0) {
        const b = buffers[bi]!;
        const n = Math.min(need, b.byteLength - bo);
        parts.push(b.subarray(bo, bo + n));
        need -= n;
        bo += n;
        if (bo === b.byteLength) {
          bi++;
          bo = 0;
        }
      }
      jobs.push(io(piece.device, piece.at / ss, parts));
    }
    await Promise.all(jobs);
  }

  read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    return this.#run(async () => {
      const req = validateRead(this.#info, sector, buffers);
      await this.#each(req.sector, req.buffers, req.bytes, (d, s, parts) => d.read(s, parts));
    });
  }

  write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    return this.#run(async () => {
      const req = validateWrite(this.#info, sector, buffers);
      await this.#each(req.sector, req.buffers, req.bytes, (d, s, parts) => d.write(s, parts));
    });
  }

  flush(): Promise<void> {
    return this.#run(async () => {
      validateFlush(this.#info);
      await Promise.all([...new Set([...this.#map.pvs.values()].map((p) => p.device))].map((d) => d.flush()));
    });
  }

  discard(sector: bigint, count: bigint): Promise<void> {
    return this.#run(async () => {
      const req = validateDiscard(this.#info, sector, count);
      const ss = BigInt(this.#sectorSize);
      const pieces = mapBytes(this.#map, req.sector * ss, req.count * ss);
      await Promise.all(pieces.map((p) => p.device.discard(p.at / ss, p.length / ss)));
    });
  }

  /** Stops the LV device (not its PVs): in-flight requests settle first. Idempotent. */
  disconnect(): Promise<void> {
    if (this.#closing === undefined) {
      this.#connected = false;
      this.#closing = this.drain().then(() => this.#onDisconnect());
    }
    return this.#closing;
  }

  onResize(listener: ResizeListener): () => void {
    return this.#resize.on(listener);
  }
}
