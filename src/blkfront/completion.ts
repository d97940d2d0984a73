/**
 * What a ring request's wire status means for its caller and the device:
 * one table, so the rules live in one place.
 *
 *   BLKIF_RSP_OKAY                 the request's part of the call is done
 *   BLKIF_RSP_EOPNOTSUPP           `unsupported`; stop offering the feature
 *   error on a flush / barrier     `io`, and the device fails closed: a failed
 *                                  flush is never forgotten (README "Storage rules")
 *   any other error                `io` for this call only
 */
import { BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY } from '../blkif/constants.js';
import { IoError, UnsupportedError, type XenpvError } from '../errors.js';
import type { RingRequest } from './request.js';

export interface Outcome {
  /** Reject the call with this (undefined: the request succeeded). */
  error?: XenpvError;
  /** The backend cannot do this operation after all: stop offering it. */
  disableOp?: boolean;
  /** Fail the whole device with `error`. */
  failDevice?: boolean;
}

export function outcomeOf(req: RingRequest, status: number): Outcome {
  if (status === BLKIF_RSP_OKAY) return {};
  if (status === BLKIF_RSP_EOPNOTSUPP) {
    return { error: new UnsupportedError(`backend answered EOPNOTSUPP to operation ${req.op}`), disableOp: true };
  }
  if (req.op === BLKIF_OP_FLUSH_DISKCACHE || req.op === BLKIF_OP_WRITE_BARRIER) {
    // The backend's store may have dropped acknowledged writes, so no later
    // flush may say they are safe: the device fails closed with this error.
    const error = new IoError(
      `backend failed a flush (operation ${req.op}): writes acknowledged since the last successful flush may be lost; ` +
        'the device is failed until it is disconnected and attached again',
    );
    return { error, failDevice: true };
  }
  return { error: new IoError(`backend failed operation ${req.op} at sector ${req.wireSector}`) };
}
