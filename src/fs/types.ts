/**
 * The file-system API every adapter offers: a small subset of node's
 * `fs/promises` over paths inside one file system. Paths are absolute,
 * '/'-separated, with no '.' or '..' components (see `normalizeFsPath`).
 *
 * Errors: `FileSystemError` (code `fs`, with a `reason`) for what the file
 * system says (no such file, exists, not a directory, corrupt, full); the
 * device's own typed errors (`read-only`, `io`, `disconnected`, ...) pass
 * through unchanged.
 */
import type { Readable } from 'node:stream';

export type FileSystemKind = 'fat' | 'ext4';

export interface FsStats {
  readonly size: number;
  readonly mtime: Date;
  /** Inode number (ext4); for FAT, 0. */
  readonly ino: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

export interface ReadStreamOptions {
  /** First byte (default 0). */
  readonly start?: number;
  /** Last byte, inclusive, as in node's createReadStream (default: end of file). */
  readonly end?: number;
}

export interface FileSystem {
  readonly kind: FileSystemKind;
  /** False: writeFile, mkdir, unlink, rmdir and rename reject with `read-only`. */
  readonly writable: boolean;
  /** Names in a directory, without '.' and '..', sorted. */
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<FsStats>;
  readFile(path: string): Promise<Buffer>;
  createReadStream(path: string, options?: ReadStreamOptions): Readable;
  /** Creates or replaces a regular file (no bytes: an empty file, or an existing one cut to zero). */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Removes a file (`is-a-directory` for a directory). */
  unlink(path: string): Promise<void>;
  /** Removes an empty directory (`not-empty`, `not-a-directory` otherwise). */
  rmdir(path: string): Promise<void>;
  /** POSIX rename: replaces an existing target file, or an empty target directory when a directory moves. */
  rename(from: string, to: string): Promise<void>;
  /** Writes back what the library holds, flushes the device (not disconnect), and closes. Idempotent. */
  close(): Promise<void>;
}
