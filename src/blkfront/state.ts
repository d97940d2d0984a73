/**
 * Two separate state enums, as Linux's blkfront keeps them: the xenbus
 * protocol state (wire values, XenbusState in blkif/constants) and the
 * driver's own state. What to do when the backend's state changes is one
 * exhaustive switch, tested as a table.
 */
import { XenbusState } from '../blkif/constants.js';

export const enum DriverState {
  /** Waiting for the backend to offer InitWait. */
  Connecting = 'connecting',
  /** Ring set up, Initialised written; waiting for the backend's Connected. */
  Initialised = 'initialised',
  Connected = 'connected',
  /** The backend went away: requests are kept; waiting for a backend to come back. */
  Suspended = 'suspended',
  /** disconnect() is closing the device per xenbus; backend changes are its business. */
  Closing = 'closing',
  /** The peer broke the protocol: everything pending was rejected. Final. */
  Failed = 'failed',
  /** disconnect() ran. Final. */
  Closed = 'closed',
}

export const enum Action {
  None = 'none',
  /** Grant the ring, bind the event channel, write our keys, go Initialised. */
  Setup = 'setup',
  /** Read the backend's info and features, go Connected, (re)issue requests. */
  Connect = 'connect',
  /** While connected: re-read `sectors` (resize). */
  Refresh = 'refresh',
  /** Tear down the ring but keep requests; wait for a backend. */
  Suspend = 'suspend',
  /** Suspend, then set up again at once (backend restarted behind our back). */
  Restart = 'restart',
}

/** What the frontend does when the backend's state node reads `backend`. */
export function onBackendState(driver: DriverState, backend: XenbusState): Action {
  switch (driver) {
    case DriverState.Closing:
    case DriverState.Failed:
    case DriverState.Closed:
      return Action.None;
    case DriverState.Connecting:
    case DriverState.Suspended:
      switch (backend) {
        case XenbusState.InitWait:
          return Action.Setup;
        case XenbusState.Connected:
          // A backend that skipped InitWait (or we missed it): set up now,
          // the Connected that follows our Initialised completes the job.
          return Action.Setup;
        default:
          return Action.None;
      }
    case DriverState.Initialised:
      switch (backend) {
        case XenbusState.Connected:
          return Action.Connect;
        case XenbusState.Closing:
        case XenbusState.Closed:
        case XenbusState.Unknown:
        case XenbusState.Initialising: // the backend restarted under us
          return Action.Suspend;
        default:
          return Action.None;
      }
    case DriverState.Connected:
      switch (backend) {
        case XenbusState.Connected:
          return Action.Refresh;
        case XenbusState.Closing:
        case XenbusState.Closed:
        case XenbusState.Unknown:
        case XenbusState.Initialising:
          return Action.Suspend;
        case XenbusState.InitWait:
          // A new backend is already waiting for us.
          return Action.Restart;
        default:
          return Action.None;
      }
  }
}

/** Parse a state node. Anything that is not a known state reads as Unknown. */
export function parseXenbusState(value: string | undefined): XenbusState {
  if (value === undefined || !/^[0-8]$/.test(value.trim())) return XenbusState.Unknown;
  return Number(value.trim()) as XenbusState;
}
