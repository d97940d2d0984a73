/**
 * Errors of the native layer. Argument problems are InvalidArgumentError
 * (code `invalid-argument`, `field` names the argument) and are raised before
 * any system call; a failure of the addon itself or of a system call is
 * NativeError (code `native`).
 */
import { XenpvError } from '../errors.js';

export class NativeError extends XenpvError {
  /** errno of the failed system call, when there was one. */
  readonly errno: number | undefined;
  /** Name of the failed system call (`mmap`, `memfd_create`, ...), when known. */
  readonly syscall: string | undefined;
  constructor(message: string, options?: { cause?: unknown; errno?: number; syscall?: string }) {
    super('native', message, options);
    this.errno = options?.errno;
    this.syscall = options?.syscall;
  }
}

/** Event-channel failures of the cross-process transport (code `evtchn`). */
export class ForeignEvtchnError extends XenpvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('evtchn', message, options);
  }
}
