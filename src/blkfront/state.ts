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
  /**
   * The backend left Connected: tear the rings down but keep every request,
   * write Closed (acknowledging a closing backend, as xenbus_frontend_closed
   * does), and wait for a backend to come back.
   */
  Suspend = 'suspend',
  /**
   * A backend is Connected or Closing but not with us (it predates our
   * handshake: a restarted frontend, a stale backend): write Closed so it
   * closes, instead of connecting to a ring nobody set up for it.
   */
  Reset = 'reset',
  /** The backend is Closed: write Initialising, which makes it offer InitWait again. */
  Rearm = 'rearm',
}

/**
 * What the frontend does when the backend's state node reads `backend`.
 *
 * Reconnection follows Linux's blkback: frontend Closed → backend Closed →
 * frontend Initialising → backend InitWait → Setup. A backend's Connected
 * is only trusted after our own Initialised (we set up only from InitWait).
 */
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
        case XenbusState.Closing:
          return Action.Reset;
        case XenbusState.Closed:
          return Action.Rearm;
        case XenbusState.Unknown:
        case XenbusState.Initialising:
        case XenbusState.Initialised:
        case XenbusState.Reconfiguring:
        case XenbusState.Reconfigured:
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
        case XenbusState.InitWait: // what we set up from; seen again on a re-read
        case XenbusState.Initialised:
        case XenbusState.Reconfiguring:
        case XenbusState.Reconfigured:
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
        case XenbusState.InitWait: // a new backend is already waiting
          return Action.Suspend;
        case XenbusState.Initialised:
        case XenbusState.Reconfiguring:
        case XenbusState.Reconfigured:
          return Action.None;
      }
  }
}

/** Parse a state node. Anything that is not a known state reads as Unknown. */
export function parseXenbusState(value: string | undefined): XenbusState {
  if (value === undefined || !/^[0-8]$/.test(value.trim())) return XenbusState.Unknown;
  return Number(value.trim()) as XenbusState;
}

const XENBUS_STATE_NAMES = ['Unknown', 'Initialising', 'InitWait', 'Initialised', 'Connected', 'Closing', 'Closed', 'Reconfiguring', 'Reconfigured'];

/** `Connected` for 4: for logs (XenbusState is a const enum, without names at run time). */
export function xenbusStateName(s: number): string {
  return XENBUS_STATE_NAMES[s] ?? `state ${s}`;
}
