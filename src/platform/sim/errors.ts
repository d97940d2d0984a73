/**
 * Typed errors of the simulated hypervisor. Codes are the stable ones of
 * src/errors.ts: `grant` for grant-table refusals, `evtchn` for event-channel
 * refusals. `reason` says which check failed, for callers and tests that
 * need more than the code.
 */
import { XenpvError } from '../../errors.js';

export type GrantRefusal =
  | 'bad-gref' //        gref out of range or reserved
  | 'not-granted' //     entry lacks GTF_permit_access (never granted, or revoked)
  | 'wrong-domain' //    entry names another domain than the one asking
  | 'read-only' //       writable access asked of a GTF_readonly entry
  | 'busy' //            end access while the peer has the page mapped
  | 'bad-frame' //       entry's frame is not a page of the granting domain
  | 'no-domain' //       granting domain does not exist
  | 'exhausted' //       out of grant references or pool pages
  | 'bad-range'; //      copy offset/length outside the page

export class GrantError extends XenpvError {
  readonly reason: GrantRefusal;
  constructor(reason: GrantRefusal, message: string) {
    super('grant', `${reason}: ${message}`);
    this.reason = reason;
  }
}

export type EvtchnRefusal =
  | 'bad-port' //        port out of range or not open here
  | 'not-unbound' //     bind to a remote port that is not unbound
  | 'wrong-domain' //    bind to a port allocated for another domain
  | 'no-domain' //       remote domain does not exist
  | 'exhausted' //       no free port
  | 'disposed'; //       the channel set was disposed

export class EvtchnError extends XenpvError {
  readonly reason: EvtchnRefusal;
  constructor(reason: EvtchnRefusal, message: string) {
    super('evtchn', `${reason}: ${message}`);
    this.reason = reason;
  }
}
