/**
 * One base class, one subclass per stable `code` (undici style). Every error
 * this package throws on purpose is an XenpvError; callers switch on `code`.
 */
export type ErrorCode =
  | 'disconnected'
  | 'read-only'
  | 'unsupported'
  | 'out-of-range'
  | 'invalid-argument'
  | 'io'
  | 'protocol'
  | 'xenstore'
  | 'grant'
  | 'evtchn'
  | 'native'
  | 'timeout'
  | 'corrupt'
  | 'no-space'
  | 'locked'
  | 'fs'
  | 'job';

export class XenpvError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The device or connection is gone; nothing more can be done on it. */
export class DisconnectedError extends XenpvError {
  constructor(message = 'device is disconnected', options?: { cause?: unknown }) { super('disconnected', message, options); }
}
/** A write or discard on a device that is read-only. */
export class ReadOnlyError extends XenpvError {
  constructor(message = 'device is read-only') { super('read-only', message); }
}
/** The operation is not offered by the peer (or was disabled after EOPNOTSUPP). */
export class UnsupportedError extends XenpvError {
  constructor(message: string, options?: { cause?: unknown }) { super('unsupported', message, options); }
}
/** A sector range outside the device. */
export class OutOfRangeError extends XenpvError {
  constructor(message: string) { super('out-of-range', message); }
}
/** The caller passed something malformed; `field` names what. */
export class InvalidArgumentError extends XenpvError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('invalid-argument', `${field}: ${message}`);
    this.field = field;
  }
}
/** The backend answered BLKIF_RSP_ERROR, or the host I/O failed. */
export class IoError extends XenpvError {
  constructor(message: string, options?: { cause?: unknown }) { super('io', message, options); }
}
/** The peer broke the protocol; the device fails closed. */
export class ProtocolError extends XenpvError {
  constructor(message: string, options?: { cause?: unknown }) { super('protocol', message, options); }
}
/** A deadline passed. */
export class TimeoutError extends XenpvError {
  constructor(message: string) { super('timeout', message); }
}
/** A backing file is locked by another open (image locking); `path` names it. */
export class LockedError extends XenpvError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('locked', message);
    this.path = path;
  }
}

/** Turns a host failure into an `io` error naming what was being done; XenpvErrors pass through. */
export function toIoError(err: unknown, what: string): XenpvError {
  if (err instanceof XenpvError) return err;
  const code = (err as { code?: unknown })?.code;
  const detail = err instanceof Error ? err.message : String(err);
  const prefix = typeof code === 'string' && !detail.startsWith(code) ? `${code}: ` : '';
  return new IoError(`${what}: ${prefix}${detail}`, { cause: err });
}
