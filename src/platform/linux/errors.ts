/**
 * Turning the native layer's errno into the platform's typed errors: the
 * Linux platform throws the same GrantError / EvtchnError (codes `grant`,
 * `evtchn`) as the simulation, with the NativeError (errno, syscall) as the
 * `cause`. Argument refusals (InvalidArgumentError) pass through unchanged.
 */
import { constants } from 'node:os';
import { XenpvError } from '../../errors.js';
import { NativeError } from '../../native/errors.js';
import { EvtchnError, GrantError, type EvtchnRefusal, type GrantRefusal } from '../sim/errors.js';

const E = constants.errno;

/** errno name for messages (`EINVAL`), or the number. */
export function errnoName(errno: number | undefined): string {
  if (errno === undefined) return 'no errno';
  for (const [name, value] of Object.entries(E)) if (value === errno) return name;
  return `errno ${errno}`;
}

function withCause<T extends Error>(err: T, cause: unknown): T {
  (err as { cause?: unknown }).cause = cause;
  return err;
}

/** Grant-table failure: ENOMEM/ENOSPC exhaust, anything else the hypervisor refused. */
export function grantError(what: string, err: unknown, fallback: GrantRefusal = 'not-granted'): XenpvError {
  if (!(err instanceof NativeError)) return err instanceof XenpvError ? err : new GrantError(fallback, `${what}: ${String(err)}`);
  const reason: GrantRefusal = err.errno === E.ENOMEM || err.errno === E.ENOSPC ? 'exhausted' : fallback;
  return withCause(new GrantError(reason, `${what}: ${err.syscall ?? 'native'} failed with ${errnoName(err.errno)} (${err.message})`), err);
}

/**
 * Event-channel failure. Xen answers ESRCH for a domain that does not exist,
 * ENOSPC when out of ports, EINVAL for a port that is not (or not ours to
 * bind); the evtchn device answers ENOTCONN/EINVAL for a port not bound here.
 */
export function evtchnError(what: string, err: unknown, einval: EvtchnRefusal = 'bad-port'): XenpvError {
  if (!(err instanceof NativeError)) return err instanceof XenpvError ? err : new EvtchnError(einval, `${what}: ${String(err)}`);
  let reason: EvtchnRefusal;
  switch (err.errno) {
    case E.ESRCH: reason = 'no-domain'; break;
    case E.ENOSPC:
    case E.ENOMEM: reason = 'exhausted'; break;
    case E.EPERM:
    case E.EACCES: reason = 'wrong-domain'; break;
    default: reason = einval;
  }
  return withCause(new EvtchnError(reason, `${what}: ${err.syscall ?? 'native'} failed with ${errnoName(err.errno)} (${err.message})`), err);
}
