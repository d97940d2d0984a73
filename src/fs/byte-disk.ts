/**
 * Byte-addressed access to a BlockDevice, for libraries that read and write
 * (buffer, offset, length, position): ext2fs's disk interface, and fatfs's
 * sector callbacks when the file system's sector size differs from the
 * device's.
 *
 *   position ─┐                              ┌─ position + length
 *   ... |head sector|  whole sectors ...  |tail sector| ...
 *        read-modify-write               read-modify-write
 *
 * Whole sectors go to the device in one call straight from the caller's
 * buffer; a partial head or tail sector is read, patched and written back.
 * Calls are serialised (one at a time) so two read-modify-writes of the
 * same sector never interleave.
 *
 * Libraries turn any callback failure into a bare EIO; the first device
 * error is kept (`lastError`) so the adapter can report the typed one.
 *
 * Read-ahead (optional, for libraries that read one block at a time, as
 * libext2fs does): a read shorter than the window that misses it loads the
 * window starting at that read; reads inside it are copied from memory.
 * Every write and discard through this ByteDisk drops an overlapping
 * window first, so it never serves stale bytes (it is the device's only
 * user while a file system is mounted).
 */
import { OutOfRangeError, XenpvError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';

/** Byte reads and writes, as ByteDisk offers them (and a wrapper that watches writes can). */
export type SectorIo = Pick<ByteDisk, 'read' | 'write'>;

export class ByteDisk {
  readonly sectorSize: number;
  readonly sizeBytes: number;
  /** The first device error since the last `takeError()`. */
  private error: XenpvError | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  private window: { start: number; bytes: Uint8Array } | undefined;

  /** `readAhead`: window size in bytes (0: none). */
  constructor(readonly device: BlockDevice, private readonly readAhead = 0) {
    const info = device.info();
    this.sectorSize = info.sectorSize;
    this.sizeBytes = Number(info.sizeSectors) * info.sectorSize;
  }

  get writable(): boolean {
    return this.device.info().readWrite;
  }

  /** Returns and clears the recorded device error. */
  takeError(): XenpvError | undefined {
    const e = this.error;
    this.error = undefined;
    return e;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const out = buffer.subarray(offset, offset + length);
    if (this.readAhead === 0 || length >= this.readAhead) return this.serial(() => this.transfer('read', out, position));
    return this.serial(async () => {
      let w = this.window;
      if (w === undefined || position < w.start || position + length > w.start + w.bytes.byteLength) {
        const start = position - (position % this.sectorSize);
        const bytes = new Uint8Array(Math.min(this.readAhead, this.sizeBytes - start));
        if (position + length > start + bytes.byteLength) return this.transfer('read', out, position); // near the end
        await this.transfer('read', bytes, start);
        w = this.window = { start, bytes };
      }
      out.set(w.bytes.subarray(position - w.start, position - w.start + length));
      return length;
    });
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.serial(() => {
      this.dropWindow(position, length);
      return this.transfer('write', buffer.subarray(offset, offset + length), position);
    });
  }

  private dropWindow(position: number, length: number): void {
    const w = this.window;
    if (w !== undefined && position < w.start + w.bytes.byteLength && position + length > w.start) this.window = undefined;
  }

  flush(): Promise<void> {
    return this.serial(async () => {
      if (!this.device.info().features.flush) return;
      await this.record(this.device.flush());
    });
  }

  /** The device's discard where it has one; otherwise nothing (a hint). */
  discard(position: number, length: number): Promise<void> {
    return this.serial(async () => {
      const ss = this.sectorSize;
      const first = Math.ceil(position / ss);
      const end = Math.floor((position + length) / ss);
      const info = this.device.info();
      if (!info.features.discard || !info.readWrite || end <= first) return;
      this.dropWindow(position, length);
      await this.record(this.device.discard(BigInt(first), BigInt(end - first)));
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async record<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof XenpvError) this.error ??= err;
      throw err;
    }
  }

  private async transfer(op: 'read' | 'write', data: Uint8Array, position: number): Promise<number> {
    const len = data.byteLength;
    if (len === 0) return 0;
    if (!Number.isSafeInteger(position) || position < 0 || position + len > this.sizeBytes) {
      const e = new OutOfRangeError(`bytes ${position}+${len} lie outside the ${this.sizeBytes}-byte device`);
      this.error ??= e;
      throw e;
    }
    const ss = this.sectorSize;
    let pos = position;
    let done = 0;
    // Partial head sector.
    const headSkip = pos % ss;
    if (headSkip !== 0) {
      const n = Math.min(ss - headSkip, len);
      await this.partial(op, pos - headSkip, headSkip, data.subarray(0, n));
      pos += n;
      done += n;
    }
    // Whole sectors, straight from/to the caller's buffer.
    const whole = Math.floor((len - done) / ss) * ss;
    if (whole > 0) {
      const part = data.subarray(done, done + whole);
      const sector = BigInt(pos / ss);
      await this.record(op === 'read' ? this.device.read(sector, [part]) : this.device.write(sector, [part]));
      pos += whole;
      done += whole;
    }
    // Partial tail sector.
    if (done < len) await this.partial(op, pos, 0, data.subarray(done));
    return len;
  }

  /** One sector at byte `sectorStart`, of which `piece` covers bytes [skip, skip + piece.length). */
  private async partial(op: 'read' | 'write', sectorStart: number, skip: number, piece: Uint8Array): Promise<void> {
    const sector = new Uint8Array(this.sectorSize);
    const at = BigInt(sectorStart / this.sectorSize);
    await this.record(this.device.read(at, [sector]));
    if (op === 'read') {
      piece.set(sector.subarray(skip, skip + piece.byteLength));
      return;
    }
    sector.set(piece, skip);
    await this.record(this.device.write(at, [sector]));
  }
}
