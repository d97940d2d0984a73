/**
 * Errors of the job layer: one class, code `job`, with a `reason` saying
 * which way the job ended badly, and the device's name when one was at
 * fault. The underlying error is the `cause`.
 */
import { XenpvError } from '../errors.js';

export type JobErrorReason =
  /** A declared device could not be opened. */
  | 'open-failed'
  /** The job's start() rejected, or ctx.fail() was called, with no restart left. */
  | 'crashed'
  /** A device failed under the running job (protocol error, disconnected). */
  | 'device-failed'
  /** stop(), flush or disconnect failed or timed out while stopping. */
  | 'stop-failed'
  /** The job module does not have the shape of a job. */
  | 'bad-module'
  /** An instance of that name is already running. */
  | 'name-in-use'
  /** No running instance of that name. */
  | 'no-instance'
  /** The unprivileged child died or broke the master's protocol. */
  | 'child';

export class JobError extends XenpvError {
  readonly reason: JobErrorReason;
  /** The declared device name this is about, if any. */
  readonly device: string | undefined;
  constructor(reason: JobErrorReason, message: string, options: { cause?: unknown; device?: string } = {}) {
    super('job', message, options);
    this.reason = reason;
    this.device = options.device;
  }
}
