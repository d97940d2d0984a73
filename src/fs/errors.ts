/**
 * What a file system refuses, as one typed error (code `fs`) with a stable
 * `reason`. The device's own errors (`read-only`, `io`, ...) are not wrapped.
 */
import { XenpvError } from '../errors.js';

export type FsReason =
  | 'not-found'        // ENOENT
  | 'exists'           // EEXIST
  | 'not-a-directory'  // ENOTDIR
  | 'is-a-directory'   // EISDIR
  | 'not-empty'        // ENOTEMPTY
  | 'no-space'         // ENOSPC
  | 'invalid-path'     // a path that is not absolute, has '..', NUL, ...
  | 'corrupt'          // the on-disk structures are not a valid file system
  | 'too-small'        // the file system claims more sectors than the device has
  | 'unsupported';     // the library does not offer this operation

export class FileSystemError extends XenpvError {
  readonly reason: FsReason;
  readonly path: string | undefined;
  constructor(reason: FsReason, message: string, options?: { path?: string; cause?: unknown }) {
    super('fs', message, options);
    this.reason = reason;
    this.path = options?.path;
  }
}

const ERRNO_REASON: Record<string, FsReason> = {
  ENOENT: 'not-found',
  NOENT: 'not-found',
  EEXIST: 'exists',
  EXIST: 'exists',
  ENOTDIR: 'not-a-directory',
  NOTDIR: 'not-a-directory',
  EISDIR: 'is-a-directory',
  ISDIR: 'is-a-directory',
  ENOTEMPTY: 'not-empty',
  ENOSPC: 'no-space',
  NOSPC: 'no-space',
  ENAMETOOLONG: 'invalid-path',
  NAMETOOLONG: 'invalid-path',
  EINVAL: 'invalid-path',
  ENOSYS: 'unsupported',
  NOSYS: 'unsupported',
};

/**
 * Turns what a library threw into our error: the device error the adapter
 * recorded first (it is the cause of a library's EIO), then errno codes.
 */
export function mapLibraryError(err: unknown, path: string | undefined, deviceError: () => XenpvError | undefined): XenpvError {
  if (err instanceof XenpvError) return err;
  const dev = deviceError();
  if (dev !== undefined) return dev;
  const code = (err as { code?: unknown } | null)?.code;
  const reason = typeof code === 'string' ? ERRNO_REASON[code] : undefined;
  const where = path === undefined ? '' : `${path}: `;
  if (reason !== undefined) return new FileSystemError(reason, `${where}${String(code)}`, { path, cause: err });
  return new FileSystemError('corrupt', `${where}${(err as Error)?.message ?? String(err)}`, { path, cause: err });
}
