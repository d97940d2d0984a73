/**
 * Errors that cross a thread boundary (a simulated domain's worker posting
 * to the main thread) travel as plain data and come back as the typed error
 * they were, re-created here with a one-line message naming where they
 * happened. A worker's stack never reaches a user's message.
 */
import {
  DisconnectedError,
  InvalidArgumentError,
  IoError,
  LockedError,
  OutOfRangeError,
  ProtocolError,
  ReadOnlyError,
  TimeoutError,
  UnsupportedError,
  XenpvError,
} from '../errors.js';
import { EvtchnError, GrantError, type EvtchnRefusal, type GrantRefusal } from '../platform/sim/errors.js';
import { NativeError } from '../native/errors.js';
import { XenstoreError } from '../xenstore/errors.js';

/** What crosses the boundary. */
export interface WireError {
  readonly code?: string;
  readonly message: string;
  /** InvalidArgumentError's field; GrantError/EvtchnError's reason; XenstoreError's errno; LockedError's path. */
  readonly detail?: string;
}

/** Flatten any thrown value (first line of its message only). */
export function toWireError(err: unknown): WireError {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  if (!(err instanceof XenpvError)) return { message: err instanceof Error ? `${err.name}: ${message}` : message };
  const e = err as XenpvError & { field?: string; reason?: string; errno?: string | number };
  let detail: string | undefined;
  if (err instanceof InvalidArgumentError) detail = err.field;
  else if (err instanceof GrantError || err instanceof EvtchnError) detail = err.reason;
  else if (err instanceof XenstoreError) detail = err.errno;
  else if (err instanceof LockedError) detail = err.path;
  else if (typeof e.reason === 'string') detail = e.reason;
  return { code: err.code, message, detail };
}

/** The typed error `w` was, its message prefixed with `where`; unknown errors become `io`. */
export function reviveError(w: WireError, where: string): XenpvError {
  const m = `${where}: ${w.message}`;
  switch (w.code) {
    case 'disconnected': return new DisconnectedError(m);
    case 'read-only': return new ReadOnlyError(m);
    case 'unsupported': return new UnsupportedError(m);
    case 'out-of-range': return new OutOfRangeError(m);
    case 'invalid-argument': {
      // The message already starts with "field: ".
      const field = w.detail ?? 'argument';
      const rest = w.message.startsWith(`${field}: `) ? w.message.slice(field.length + 2) : w.message;
      return new InvalidArgumentError(field, `${rest} (${where})`);
    }
    case 'protocol': return new ProtocolError(m);
    case 'locked': return new LockedError(w.detail ?? '', m);
    case 'timeout': return new TimeoutError(m);
    case 'native': return new NativeError(m);
    case 'xenstore': return new XenstoreError(w.detail ?? 'EIO', m);
    case 'grant': return new GrantError((w.detail ?? 'bad-gref') as GrantRefusal, m);
    case 'evtchn': return new EvtchnError((w.detail ?? 'bad-port') as EvtchnRefusal, m);
    default: return new IoError(m);
  }
}
