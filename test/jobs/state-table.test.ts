/**
 * The job transition table, row by row. The expected rows are written here
 * from the lifecycle the issue asks for (open devices, start, restart on a
 * crash by policy, stop on request or device failure, flush and disconnect),
 * not read from the table under test: every (state, event) pair is checked,
 * and every pair not listed must be refused.
 */
import { describe, expect, it } from 'vitest';
import { JobEvent as E, JobState as S, isFinal, nextState } from '../../src/jobs/state.js';

const EXPECTED: Record<S, Partial<Record<E, S>>> = {
  [S.Idle]: { [E.Open]: S.Opening },
  [S.Opening]: { [E.Opened]: S.Starting, [E.OpenFailed]: S.Failed, [E.StopRequested]: S.Stopping },
  [S.Starting]: {
    [E.Started]: S.Running, [E.StartFailed]: S.Backoff, [E.Completed]: S.Stopping,
    [E.StopRequested]: S.Stopping, [E.DeviceFailed]: S.Stopping,
  },
  [S.Running]: { [E.Crashed]: S.Backoff, [E.Completed]: S.Stopping, [E.StopRequested]: S.Stopping, [E.DeviceFailed]: S.Stopping },
  [S.Backoff]: { [E.RetryDue]: S.Starting, [E.GiveUp]: S.Stopping, [E.StopRequested]: S.Stopping, [E.DeviceFailed]: S.Stopping },
  [S.Stopping]: { [E.Stopped]: S.Stopped },
  [S.Stopped]: {},
  [S.Failed]: {},
};

const STATES = Object.values(S);
const EVENTS = Object.values(E);

describe('job state table', () => {
  for (const state of STATES) {
    for (const event of EVENTS) {
      const want = EXPECTED[state][event];
      it(`${state} + ${event} -> ${want ?? 'refused'}`, () => {
        expect(nextState(state, event)).toBe(want);
      });
    }
  }

  it('only stopped and failed are final, and nothing leaves them', () => {
    expect(STATES.filter(isFinal).sort()).toEqual([S.Failed, S.Stopped].sort());
    for (const s of STATES.filter(isFinal)) for (const e of EVENTS) expect(nextState(s, e)).toBeUndefined();
  });

  it('every non-final state can reach stopped or failed', () => {
    for (const start of STATES) {
      const seen = new Set<S>([start]);
      const todo = [start];
      while (todo.length) {
        const s = todo.pop()!;
        for (const e of EVENTS) {
          const n = nextState(s, e);
          if (n !== undefined && !seen.has(n)) { seen.add(n); todo.push(n); }
        }
      }
      expect([...seen].some(isFinal), `${start} reaches a final state`).toBe(true);
    }
  });
});
