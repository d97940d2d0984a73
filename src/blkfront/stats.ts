/**
 * Blkfront's counters. One QueueCounters per queue index, kept by the device
 * across reconnects (the RingQueue of that index changes; its counts go on).
 * Counting is a few integer increments per batch and one histogram record
 * per completed request; timestamps are taken once per batch.
 */
import { LatencyHistogram, type LatencySummary } from '../util/histogram.js';
import type { DriverState } from './state.js';

export class QueueCounters {
  /** Ring requests pushed onto the ring. */
  requests = 0;
  /** Ring requests the backend answered (any status). */
  completed = 0;
  /** Answers with an error status (BLKIF_RSP_ERROR / EOPNOTSUPP). */
  errors = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** Bytes blkfront copied between callers' buffers and granted pages (0 for I/O buffers). */
  bytesCopied = 0;
  /** Event-channel kicks we sent (only when the ring's event index asked). */
  notificationsSent = 0;
  /** Events the backend sent us. */
  notificationsReceived = 0;
  /** Push-to-response time of each answered request, in microseconds. */
  readonly latencyUs = new LatencyHistogram();
}

export interface QueueStats {
  requests: number;
  completed: number;
  errors: number;
  bytesRead: number;
  bytesWritten: number;
  bytesCopied: number;
  notificationsSent: number;
  notificationsReceived: number;
  latencyUs: LatencySummary;
}

export function queueStats(c: QueueCounters): QueueStats {
  return {
    requests: c.requests,
    completed: c.completed,
    errors: c.errors,
    bytesRead: c.bytesRead,
    bytesWritten: c.bytesWritten,
    bytesCopied: c.bytesCopied,
    notificationsSent: c.notificationsSent,
    notificationsReceived: c.notificationsReceived,
    latencyUs: c.latencyUs.summary(),
  };
}

/** Caller operations accepted by read/write/flush/discard (before splitting into ring requests). */
export interface OperationCounts {
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
}

/**
 * Counters for users, tests and tools (`stats()`). Operation counts are the
 * calls accepted; bytes, requests, notifications and latency come from ring
 * requests, summed over queues and also given per queue.
 */
export interface BlkfrontStats extends OperationCounts {
  state: DriverState;
  inFlight: number;
  waiting: number;
  reconnects: number;
  /** Grants the backend still maps after we ended them; retried until it lets go. */
  deferredGrants: number;
  /** Bytes of ring requests the backend completed OK. */
  bytesRead: number;
  bytesWritten: number;
  /** Bytes copied between callers' buffers and granted pages (I/O buffers avoid it). */
  bytesCopied: number;
  /** Live I/O buffers' pages (allocateBuffer). */
  ioBufferPages: number;
  /** Ring requests pushed (a call may be split into several), and answered with an error. */
  requests: number;
  errors: number;
  notificationsSent: number;
  notificationsReceived: number;
  /** Per queue (index = queue number): counts and push-to-response latency percentiles (µs). */
  queues: QueueStats[];
}


type Summed = 'bytesRead' | 'bytesWritten' | 'bytesCopied' | 'requests' | 'errors' | 'notificationsSent' | 'notificationsReceived';

/** Totals over queues, and each queue's own figures. */
export function summarise(counters: readonly QueueCounters[]): Pick<BlkfrontStats, Summed | 'queues'> {
  const queues = counters.map(queueStats);
  const sum = (k: Summed): number => queues.reduce((n, q) => n + q[k], 0);
  return {
    bytesRead: sum('bytesRead'),
    bytesWritten: sum('bytesWritten'),
    bytesCopied: sum('bytesCopied'),
    requests: sum('requests'),
    errors: sum('errors'),
    notificationsSent: sum('notificationsSent'),
    notificationsReceived: sum('notificationsReceived'),
    queues,
  };
}
