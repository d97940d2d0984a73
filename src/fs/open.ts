/**
 * Opening whichever file system a BlockDevice holds: ext2/3/4 (superblock
 * magic at byte 1080) or FAT (boot sector at 0). No partition tables: the
 * device is the file system, as with `mkfs.fat -C img` or `mkfs.ext4 img`.
 */
import type { BlockDevice } from '../block/types.js';
import { ByteDisk } from './byte-disk.js';
import { FileSystemError } from './errors.js';
import { looksLikeExt, openExt4 } from './ext4.js';
import { looksLikeFat, openFat } from './fat.js';
import type { FileSystem, FileSystemKind } from './types.js';

export interface OpenFileSystemOptions {
  /** Skip detection. */
  readonly type?: FileSystemKind;
}

/** Detects and mounts. `fs`/`corrupt` when neither is found; the device's errors pass through. */
export async function openFileSystem(device: BlockDevice, options: OpenFileSystemOptions = {}): Promise<FileSystem> {
  const type = options.type ?? (await detectFileSystem(device));
  if (type === undefined) throw new FileSystemError('corrupt', 'the device holds neither an ext2/3/4 nor a FAT file system');
  return type === 'ext4' ? openExt4(device) : openFat(device);
}

/** 'ext4', 'fat', or undefined. */
export async function detectFileSystem(device: BlockDevice): Promise<FileSystemKind | undefined> {
  const disk = new ByteDisk(device);
  if (await looksLikeExt(disk)) return 'ext4';
  if (await looksLikeFat(disk)) return 'fat';
  return undefined;
}
