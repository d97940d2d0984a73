/**
 * The two xenbus state tables, row by row: what blkfront does for each
 * (driver state, backend state) and what blkback does for each (our state,
 * frontend state). The expected rows are written from xen/io/blkif.h's
 * handshake and Linux's reconnect sequence (frontend Closed → backend Closed
 * → frontend Initialising → backend InitWait), not from the code.
 */
import { describe, expect, it } from 'vitest';
import { BackAction, onFrontendState } from '../src/blkback/blkback.js';
import { Action, DriverState, onBackendState, parseXenbusState } from '../src/blkfront/state.js';

const S = { Unknown: 0, Initialising: 1, InitWait: 2, Initialised: 3, Connected: 4, Closing: 5, Closed: 6, Reconfiguring: 7, Reconfigured: 8 } as const;
type Name = keyof typeof S;
const ALL = Object.keys(S) as Name[];

/** Rows not listed are Action.None. */
const FRONT: Record<DriverState, Partial<Record<Name, Action>>> = {
  [DriverState.Connecting]: { InitWait: Action.Setup, Connected: Action.Reset, Closing: Action.Reset, Closed: Action.Rearm },
  [DriverState.Suspended]: { InitWait: Action.Setup, Connected: Action.Reset, Closing: Action.Reset, Closed: Action.Rearm },
  [DriverState.Initialised]: {
    Connected: Action.Connect,
    Closing: Action.Suspend,
    Closed: Action.Suspend,
    Unknown: Action.Suspend,
    Initialising: Action.Suspend,
  },
  [DriverState.Connected]: {
    Connected: Action.Refresh,
    Closing: Action.Suspend,
    Closed: Action.Suspend,
    Unknown: Action.Suspend,
    Initialising: Action.Suspend,
    InitWait: Action.Suspend,
  },
  [DriverState.Closing]: {},
  [DriverState.Failed]: {},
  [DriverState.Closed]: {},
};

describe('blkfront: backend state changes', () => {
  for (const [driver, row] of Object.entries(FRONT) as [DriverState, Partial<Record<Name, Action>>][]) {
    for (const b of ALL) {
      const want = row[b] ?? Action.None;
      it(`${driver} + backend ${b} → ${want}`, () => {
        expect(onBackendState(driver, S[b])).toBe(want);
      });
    }
  }

  it('never sets up from a backend that is already Connected (it would serve a ring nobody set up)', () => {
    for (const driver of Object.keys(FRONT) as DriverState[]) expect(onBackendState(driver, S.Connected)).not.toBe(Action.Setup);
  });

  it('reads anything that is not a state 0..8 as Unknown', () => {
    for (const v of [undefined, '', '9', 'junk', '-1', '4x', ' 44']) expect(parseXenbusState(v)).toBe(S.Unknown);
    expect(parseXenbusState(' 4 ')).toBe(S.Connected);
  });
});

const BACK: Partial<Record<Name, Partial<Record<Name, BackAction>>>> = {
  // our state → frontend state → action
  InitWait: { Initialised: BackAction.Connect, Closing: BackAction.Close, Closed: BackAction.Closed, Unknown: BackAction.Closed },
  Connected: { Closing: BackAction.Close, Closed: BackAction.Closed, Unknown: BackAction.Closed, Initialising: BackAction.Reprobe },
  Closing: { Closed: BackAction.Closed, Unknown: BackAction.Closed, Initialising: BackAction.Reprobe },
  Closed: { Initialising: BackAction.Reprobe },
};

describe('blkback: frontend state changes', () => {
  for (const [back, row] of Object.entries(BACK) as [Name, Partial<Record<Name, BackAction>>][]) {
    for (const f of ALL) {
      const want = row[f] ?? BackAction.None;
      it(`${back} + frontend ${f} → ${want}`, () => {
        expect(onFrontendState(S[back], S[f])).toBe(want);
      });
    }
  }
});
