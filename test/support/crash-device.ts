/**
 * A BlockDevice that models power loss, for crash tests of anything built
 * on BlockDevice. Reads see every completed write (like a page cache);
 * only `flush` makes writes durable. `dieAfter(n)` lets n more writes or
 * flushes through, then the device loses power: the operation that trips
 * and everything after it reject with `io`.
 *
 * `crashImage(rand)` is what a disk could hold after the power loss: the
 * durable image plus, for each write since the last flush, independently
 * (disks reorder unflushed writes): all of it, none of it, or a torn part
 * (some of its sectors, in any pattern, and maybe one sector of garbage).
 *
 * `lie: true` makes `flush` a no-op that still reports success, for the
 * tests that must see a checksum catch what ordering cannot.
 */
import { IoError } from '../../src/errors.js';
import type { BlockDevice, BlockInfo } from '../../src/block/types.js';

interface Pending {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

export class CrashDevice implements BlockDevice {
  readonly #live: Uint8Array;
  readonly #durable: Uint8Array;
  #pending: Pending[] = [];
  #budget = Infinity;
  #dead = false;
  readonly #info: BlockInfo;
  /** Writes and flushes that completed. */
  ops = 0;

  constructor(image: Uint8Array, readonly sectorSize = 512, private readonly options: { lie?: boolean; dropWritesAt?: (offset: number) => boolean } = {}) {
    this.#live = image.slice();
    this.#durable = image.slice();
    this.#info = {
      readWrite: true,
      sectorSize,
      physicalSectorSize: sectorSize,
      sizeSectors: BigInt(image.length / sectorSize),
      features: { flush: true, barrier: false, discard: false },
      media: 'disk',
    };
  }

  get dead(): boolean {
    return this.#dead;
  }

  dieAfter(n: number): void {
    this.#budget = n;
  }

  info(): BlockInfo {
    return this.#info;
  }

  #check(sector: bigint, bytes: number): number {
    const off = Number(sector) * this.sectorSize;
    if (off < 0 || off + bytes > this.#live.length || bytes % this.sectorSize !== 0) throw new IoError(`crash-device: bad range ${sector}+${bytes}`);
    return off;
  }

  #spend(): void {
    if (this.#dead) throw new IoError('crash-device: power lost');
    if (this.#budget-- <= 0) {
      this.#dead = true;
      throw new IoError('crash-device: power lost');
    }
  }

  async read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    await Promise.resolve();
    if (this.#dead) throw new IoError('crash-device: power lost');
    let off = this.#check(sector, buffers.reduce((a, b) => a + b.length, 0));
    for (const b of buffers) {
      b.set(this.#live.subarray(off, off + b.length));
      off += b.length;
    }
  }

  async write(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    await Promise.resolve();
    this.#spend();
    let off = this.#check(sector, buffers.reduce((a, b) => a + b.length, 0));
    for (const b of buffers) {
      if (this.options.dropWritesAt?.(off) !== true) {
        this.#live.set(b, off);
        this.#pending.push({ offset: off, bytes: b.slice() });
      }
      off += b.length;
    }
    this.ops++;
  }

  async flush(): Promise<void> {
    await Promise.resolve();
    this.#spend();
    if (!this.options.lie) {
      for (const p of this.#pending) this.#durable.set(p.bytes, p.offset);
      this.#pending = [];
    }
    this.ops++;
  }

  async discard(): Promise<void> {
    throw new IoError('crash-device: no discard');
  }

  async disconnect(): Promise<void> {
    this.#dead = true;
  }

  onResize(): () => void {
    return () => undefined;
  }

  /** The visible image (what reads return now). */
  liveImage(): Uint8Array {
    return this.#live.slice();
  }

  /** One possible disk after power loss now (see the file comment). */
  crashImage(rand: () => number): Uint8Array {
    const img = this.#durable.slice();
    const S = this.sectorSize;
    for (const p of this.#pending) {
      const r = rand();
      if (r < 0.3) continue; // never reached the medium
      if (r < 0.6) {
        img.set(p.bytes, p.offset);
        continue;
      }
      // Torn: each sector independently, and perhaps one sector of garbage.
      const sectors = p.bytes.length / S;
      for (let s = 0; s < sectors; s++) if (rand() < 0.5) img.set(p.bytes.subarray(s * S, (s + 1) * S), p.offset + s * S);
      if (rand() < 0.5) {
        const s = Math.floor(rand() * sectors);
        const cut = Math.floor(rand() * S);
        for (let i = cut; i < S; i++) img[p.offset + s * S + i] = Math.floor(rand() * 256);
      }
    }
    return img;
  }
}
