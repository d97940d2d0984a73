/**
 * What `xenpv run` exits with, and how a runner's outcome maps to it. The
 * numbers are part of the CLI contract (README "Jobs and the privileged
 * master"); 1 and 2 keep their meaning for every xenpv command.
 */
export enum JobExit {
  /** Stopped on request (signal, `xenpv stop`) or completed; devices flushed and disconnected. */
  Ok = 0,
  /** Any other failure (the master could not start, an internal error). */
  Failure = 1,
  /** Bad command line or bad job module. */
  Usage = 2,
  /** The job crashed and its restart policy gave up. */
  Crashed = 3,
  /** A device failed under the running job; the job was stopped. */
  DeviceFailed = 4,
  /** A declared device could not be opened. */
  OpenFailed = 5,
  /** The job ended as above, but stopping it or releasing a device failed. */
  StopFailed = 6,
  /** The unprivileged child died without reporting an outcome (killed). */
  ChildDied = 7,
}

/** Why a job ended. */
export enum OutcomeKind {
  Requested = 'requested',
  Completed = 'completed',
  Crashed = 'crashed',
  DeviceFailed = 'device-failed',
  OpenFailed = 'open-failed',
}

export interface JobOutcome {
  readonly kind: OutcomeKind;
  /** The error that ended it (crash, device failure, open failure). */
  readonly error?: Error;
  /** Errors while stopping the job or releasing devices. */
  readonly stopErrors: readonly Error[];
  /** Restarts made. */
  readonly restarts: number;
}

/** The exit status for an outcome: a failed stop outranks a clean end, never a failure. */
export function exitStatus(outcome: JobOutcome): JobExit {
  switch (outcome.kind) {
    case OutcomeKind.Requested:
    case OutcomeKind.Completed:
      return outcome.stopErrors.length > 0 ? JobExit.StopFailed : JobExit.Ok;
    case OutcomeKind.Crashed:
      return JobExit.Crashed;
    case OutcomeKind.DeviceFailed:
      return JobExit.DeviceFailed;
    case OutcomeKind.OpenFailed:
      return JobExit.OpenFailed;
  }
}
