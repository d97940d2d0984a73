/**
 * A job's life as one enum and one transition table. Every (state, event)
 * pair is either a row of TRANSITIONS or refused: `nextState` returns the
 * next state, or `undefined` when the event is not valid in that state (the
 * runner treats that as "ignore", never as a crash).
 *
 * ```
 *            Open            Opened            Started
 *   Idle ─────────► Opening ────────► Starting ────────► Running
 *                     │ OpenFailed      │ StartFailed      │ Crashed
 *                     ▼                 ▼                  ▼
 *                   Failed            Backoff ◄────────────┘
 *                                       │ RetryDue ─► Starting
 *                                       │ GiveUp ──► Stopping
 *   Opening/Starting/Running/Backoff ── StopRequested | DeviceFailed ──► Stopping
 *   Starting/Running ── Completed ──► Stopping
 *   Stopping ── Stopped ──► Stopped         (job stopped, devices flushed and disconnected)
 * ```
 * Why the job ended (request, device failure, crash, completion) is kept by
 * the runner as its outcome, not as more states.
 */
export enum JobState {
  Idle = 'idle',
  /** Opening the declared devices through the registry. */
  Opening = 'opening',
  /** The job's start() is running. */
  Starting = 'starting',
  Running = 'running',
  /** Crashed; waiting before the next start (restart policy). */
  Backoff = 'backoff',
  /** Stopping the job, then flushing and disconnecting its devices. */
  Stopping = 'stopping',
  /** Everything released; final. */
  Stopped = 'stopped',
  /** Could not open its devices; final (what was opened is closed). */
  Failed = 'failed',
}

export enum JobEvent {
  Open = 'open',
  Opened = 'opened',
  OpenFailed = 'open-failed',
  Started = 'started',
  StartFailed = 'start-failed',
  /** The running job failed (ctx.fail, or a rejected start of a restart). */
  Crashed = 'crashed',
  RetryDue = 'retry-due',
  /** No restart left after a crash (policy never, or retries used up). */
  GiveUp = 'give-up',
  /** SIGTERM, SIGINT, `xenpv stop`, or runner.stop(). */
  StopRequested = 'stop-requested',
  /** A device under the job failed (protocol error, disconnected). */
  DeviceFailed = 'device-failed',
  /** The job said it is done (ctx.done()). */
  Completed = 'completed',
  /** Devices flushed and disconnected (or given up on). */
  Stopped = 'stopped',
}

const STOP_ROWS = {
  [JobEvent.StopRequested]: JobState.Stopping,
  [JobEvent.DeviceFailed]: JobState.Stopping,
} as const;

/** The one transition table. A missing entry is a refused event. */
export const TRANSITIONS: Readonly<Record<JobState, Readonly<Partial<Record<JobEvent, JobState>>>>> = {
  [JobState.Idle]: { [JobEvent.Open]: JobState.Opening },
  [JobState.Opening]: {
    [JobEvent.Opened]: JobState.Starting,
    [JobEvent.OpenFailed]: JobState.Failed,
    // Devices opened so far are closed on the way out.
    [JobEvent.StopRequested]: JobState.Stopping,
  },
  [JobState.Starting]: {
    [JobEvent.Started]: JobState.Running,
    [JobEvent.StartFailed]: JobState.Backoff,
    [JobEvent.Completed]: JobState.Stopping,
    ...STOP_ROWS,
  },
  [JobState.Running]: {
    [JobEvent.Crashed]: JobState.Backoff,
    [JobEvent.Completed]: JobState.Stopping,
    ...STOP_ROWS,
  },
  [JobState.Backoff]: {
    [JobEvent.RetryDue]: JobState.Starting,
    [JobEvent.GiveUp]: JobState.Stopping,
    ...STOP_ROWS,
  },
  [JobState.Stopping]: { [JobEvent.Stopped]: JobState.Stopped },
  [JobState.Stopped]: {},
  [JobState.Failed]: {},
};

/** The state after `event` in `state`, or undefined when the event is refused there. */
export function nextState(state: JobState, event: JobEvent): JobState | undefined {
  return TRANSITIONS[state][event];
}

/** Final states: nothing more happens. */
export function isFinal(state: JobState): boolean {
  return state === JobState.Stopped || state === JobState.Failed;
}
