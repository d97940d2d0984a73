/** File systems over any BlockDevice: FAT (fatfs) and ext2/3/4 (ext2fs, libext2fs in Wasm). */
export type { FileSystem, FileSystemKind, FsStats, ReadStreamOptions } from './types.js';
export { FileSystemError } from './errors.js';
export type { FsReason } from './errors.js';
export { openFileSystem, detectFileSystem } from './open.js';
export type { OpenFileSystemOptions } from './open.js';
export { openFat } from './fat.js';
export { openExt4 } from './ext4.js';
export { mkfs } from './mkfs.js';
export type { MkfsOptions } from './mkfs.js';
export { ByteDisk } from './byte-disk.js';
export { normalizeFsPath } from './paths.js';
