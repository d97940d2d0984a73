/**
 * Making a file system on a BlockDevice. Neither library can: `ext2fs`
 * (npm) exports no mkfs, and fatfs has none. So the image is made by the
 * Debian tools (`mkfs.fat` from dosfstools, `mkfs.ext4` from e2fsprogs) in a
 * sparse temporary file the size of the device, and its non-zero blocks are
 * copied onto the device (zeros included, so nothing of an old file system survives).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvalidArgumentError, ReadOnlyError, UnsupportedError } from '../errors.js';
import type { BlockDevice } from '../block/types.js';
import type { FileSystemKind } from './types.js';

const run = promisify(execFile);
const COPY = 1 << 20;

export interface MkfsOptions {
  /** Volume label. */
  readonly label?: string;
  /** FAT only: 12, 16 or 32 (default: mkfs.fat chooses by size). */
  readonly fatBits?: 12 | 16 | 32;
}

/** Formats `device` as `type`, with the device's sector size. Overwrites the whole device. */
export async function mkfs(device: BlockDevice, type: FileSystemKind, options: MkfsOptions = {}): Promise<void> {
  const info = device.info();
  if (!info.readWrite) throw new ReadOnlyError();
  const size = Number(info.sizeSectors) * info.sectorSize;
  if (options.label !== undefined && !/^[A-Za-z0-9 _-]{0,11}$/.test(options.label)) {
    throw new InvalidArgumentError('label', 'at most 11 letters, digits, space, _ or -');
  }
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-mkfs-'));
  const img = join(dir, 'fs.img');
  try {
    const fh = await open(img, 'w');
    await fh.truncate(size);
    await fh.close();
    const args =
      type === 'fat'
        ? ['-S', String(info.sectorSize), ...(options.fatBits ? ['-F', String(options.fatBits)] : []), ...(options.label ? ['-n', options.label] : []), img]
        : ['-q', '-F', '-b', String(Math.max(4096, info.sectorSize)), ...(options.label ? ['-L', options.label] : []), img];
    const tool = type === 'fat' ? 'mkfs.fat' : 'mkfs.ext4';
    try {
      await run(tool, args);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') throw new UnsupportedError(`${tool} is not installed (apt-get install ${type === 'fat' ? 'dosfstools' : 'e2fsprogs'})`);
      throw new InvalidArgumentError('device', `${tool} refused a ${size}-byte device: ${(e.stderr ?? e.message).trim()}`);
    }
    await copyImage(img, device, size);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Copies the image onto the device in 1 MiB pieces, then flushes. */
async function copyImage(img: string, device: BlockDevice, size: number): Promise<void> {
  const ss = device.info().sectorSize;
  const fh = await open(img, 'r');
  try {
    const buf = new Uint8Array(COPY);
    for (let pos = 0; pos < size; pos += COPY) {
      const n = Math.min(COPY, size - pos);
      const piece = buf.subarray(0, n);
      const { bytesRead } = await fh.read(piece, 0, n, pos);
      piece.fill(0, bytesRead);
      await device.write(BigInt(pos / ss), [piece]);
    }
  } finally {
    await fh.close();
  }
  if (device.info().features.flush) await device.flush();
}
