/**
 * A write overlay in memory, for mounting a file system on a read-only
 * device with a library that writes while it reads (libext2fs updates
 * atime and the superblock). Writes land here, in 512-byte pieces; reads
 * see them over the device's bytes; nothing ever reaches the device.
 *
 *   read:  device bytes ──patch──▶ pieces written earlier ──▶ caller
 *   write: caller ──▶ pieces (Map: 512-byte index → bytes)
 */
import { InvalidArgumentError } from '../errors.js';
import type { ByteDisk } from './byte-disk.js';

const PIECE = 512;

export class WriteOverlay {
  private readonly pieces = new Map<number, Uint8Array>();

  constructor(private readonly disk: ByteDisk) {}

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const n = await this.disk.read(buffer, offset, length, position);
    if (this.pieces.size === 0) return n;
    const first = Math.floor(position / PIECE);
    const last = Math.floor((position + length - 1) / PIECE);
    for (let i = first; i <= last; i++) {
      const piece = this.pieces.get(i);
      if (piece === undefined) continue;
      const from = Math.max(position, i * PIECE);
      const to = Math.min(position + length, (i + 1) * PIECE);
      buffer.set(piece.subarray(from - i * PIECE, to - i * PIECE), offset + (from - position));
    }
    return n;
  }

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (position % PIECE !== 0 || length % PIECE !== 0) {
      throw new InvalidArgumentError('position', `overlay writes are whole 512-byte pieces (got ${length} bytes at ${position})`);
    }
    for (let at = 0; at < length; at += PIECE) {
      this.pieces.set((position + at) / PIECE, buffer.slice(offset + at, offset + at + PIECE));
    }
    return length;
  }
}
