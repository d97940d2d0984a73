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

/** > 0 while errors are made inside `withoutStacks` (see there). */
let stackless = 0;

/**
 * Run `fn` with XenstoreErrors made without a captured stack. For errors
 * whose stack says nothing: the simulated xenstored's (turned into an
 * errno reply at once) and a client's from an XS_ERROR reply (made in a
 * microtask: only the parser's frames). Capturing them was a tenth of a
 * simulated request's CPU. Other errors (an internal bug's TypeError) keep
 * their stacks.
 */
export function withoutStacks<T>(fn: () => T): T {
  stackless++;
  try {
    return fn();
  } finally {
    stackless--;
  }
}

export class XenstoreError extends XenpvError {
  /** The errno name, e.g. 'ENOENT'. An unknown name from a peer is kept as sent. */
  readonly errno: XsErrno | string;
  constructor(errno: XsErrno | string, message?: string, options?: { cause?: unknown }) {
    const limit = Error.stackTraceLimit;
    if (stackless > 0) Error.stackTraceLimit = 0;
    super('xenstore', message ? `${errno}: ${message}` : errno, options);
    Error.stackTraceLimit = limit;
    this.errno = errno;
  }
}

export function isXenstoreError(err: unknown, errno?: XsErrno): err is XenstoreError {
  return err instanceof XenstoreError && (errno === undefined || err.errno === errno);
}
