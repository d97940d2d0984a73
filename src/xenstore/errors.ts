/**
 * xenstore errors. xenstored answers a failed request with an XS_ERROR
 * message whose payload is the errno *name* (`ENOENT\0`, see xsd_errors[] in
 * xen/io/xs_wire.h); the client turns that into a XenstoreError carrying the
 * name, so callers switch on `err.errno` rather than parsing messages.
 */
import { XenpvError } from '../errors.js';

/** Errno names xenstored sends (xsd_errors[] order), plus oxenstored's EQUOTA. */
export const XSD_ERRORS = [
  'EINVAL', 'EACCES', 'EEXIST', 'EISDIR', 'ENOENT', 'ENOMEM', 'ENOSPC', 'EIO',
  'ENOTEMPTY', 'ENOSYS', 'EROFS', 'EBUSY', 'EAGAIN', 'EISCONN', 'E2BIG', 'EPERM',
  'EQUOTA',
] as const;
export type XsErrno = (typeof XSD_ERRORS)[number];

export class XenstoreError extends XenpvError {
  /** The errno name, e.g. 'ENOENT'. An unknown name from a peer is kept as sent. */
  readonly errno: XsErrno | string;
  constructor(errno: XsErrno | string, message?: string, options?: { cause?: unknown }) {
    super('xenstore', message ? `${errno}: ${message}` : errno, options);
    this.errno = errno;
  }
}

export function isXenstoreError(err: unknown, errno?: XsErrno): err is XenstoreError {
  return err instanceof XenstoreError && (errno === undefined || err.errno === errno);
}
