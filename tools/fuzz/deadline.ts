/**
 * Every case has a deadline. Two layers, because a JavaScript timer cannot
 * interrupt synchronous code:
 *
 * - `runWithDeadline` races an async case against a timer (a case waiting
 *   forever on a reply that never comes), and fails a synchronous case that
 *   returned but took longer than its budget.
 * - `Watchdog` is a worker thread that watches a heartbeat in shared memory;
 *   if one case stays in flight for `hangMs` (a Wasm loop that never ends),
 *   it prints which case hung and how to replay it, then kills the process:
 *   nothing else can stop a thread spinning in Wasm.
 */
import { Worker } from 'node:worker_threads';
import { FuzzViolation } from './target.js';

export class DeadlineExceeded extends FuzzViolation {
  constructor(ms: number, elapsed: number) {
    super(`case exceeded its deadline of ${ms} ms (ran ${Math.round(elapsed)} ms): hang`);
    this.name = 'DeadlineExceeded';
  }
}

/** Run `fn`, failing if it does not settle within `ms`. */
export async function runWithDeadline(fn: () => void | Promise<void>, ms: number): Promise<void> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = fn();
    if (result && typeof (result as Promise<void>).then === 'function') {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineExceeded(ms, performance.now() - start)), ms);
      });
      await Promise.race([result, timeout]);
    }
  } finally {
    if (timer) clearTimeout(timer);
  }
  const elapsed = performance.now() - start;
  if (elapsed > ms) throw new DeadlineExceeded(ms, elapsed);
}

// Heartbeat words (Int32): [0] case number, [1] 1 while a case runs,
// [2] ms since the watchdog's epoch when the current case started,
// [3] 1 while shrinking (then [0] is the case that first failed).
const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const hb = new Int32Array(workerData.sab);
const { epoch, hangMs, banner } = workerData;
setInterval(() => {
  if (Atomics.load(hb, 1) !== 1) return;
  const started = Atomics.load(hb, 2);
  const now = Date.now() - epoch;
  if (now - started < hangMs) return;
  const n = Atomics.load(hb, 0);
  const shrinking = Atomics.load(hb, 3) === 1;
  fs.writeSync(2, '\\nfuzz: HANG: ' + (shrinking ? 'while shrinking the failure of case #' : 'case #') + n + ', a case has run ' + (now - started) + ' ms (limit ' + hangMs + ' ms) and cannot be interrupted.\\n' +
    banner.replace('{n}', String(n)) + '\\n');
  process.kill(process.pid, 'SIGKILL');
}, Math.min(250, hangMs)); // keeps the watchdog thread alive until stop()
`;

export class Watchdog {
  private readonly hb = new Int32Array(new SharedArrayBuffer(16));
  private readonly epoch = Date.now();
  private readonly worker: Worker;

  /** `banner` is printed on a hang; `{n}` becomes the case number (= the fast-check path of a first-pass case). */
  constructor(hangMs: number, banner: string) {
    this.worker = new Worker(WATCHDOG_SOURCE, {
      eval: true,
      workerData: { sab: this.hb.buffer, epoch: this.epoch, hangMs, banner },
    });
    this.worker.unref();
  }

  /** A case starts: `caseIndex` is its number in the search (the failing one's while shrinking). */
  enter(caseIndex: number, shrinking = false): void {
    Atomics.store(this.hb, 0, caseIndex);
    Atomics.store(this.hb, 3, shrinking ? 1 : 0);
    Atomics.store(this.hb, 2, Date.now() - this.epoch);
    Atomics.store(this.hb, 1, 1);
  }

  leave(): void {
    Atomics.store(this.hb, 1, 0);
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
