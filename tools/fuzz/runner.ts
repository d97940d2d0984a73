/**
 * The fuzz loop: fast-check drives a target's property from a seed, with a
 * per-case deadline, a progress line on stderr, shrinking on failure, and the
 * shrunk case written to test/fixtures/fuzz/<target>/.
 */
import * as fc from 'fast-check';
import { DeadlineExceeded, runWithDeadline, Watchdog } from './deadline.js';
import { saveFixture } from './fixtures.js';
import { toJson } from './serialize.js';
import type { FuzzHarness, FuzzSetupOptions, FuzzTarget } from './target.js';

export interface FuzzOptions {
  seed: number;
  /** Stop after this many cases (default: unbounded when `timeSec` is set, else 1000). */
  runs?: number;
  /** Stop after this many seconds. */
  timeSec?: number;
  /** Replay from this fast-check path (with the same seed). */
  path?: string;
  /** Write the shrunk case under test/fixtures/fuzz (default true). */
  save?: boolean;
  /** Directory for the saved case (default test/fixtures/fuzz/<target>). */
  fixturesDir?: string;
  /** Where progress and reports go (default stderr). */
  log?: (line: string) => void;
  /** Progress line period in ms (0: none). Default 2000. */
  progressMs?: number;
  /** Passed to the target's setup (tests: fresh worlds per case). */
  setup?: FuzzSetupOptions;
  /** Kill the process when one case is stuck this long (sync hang). 0 disables. Default 10 × deadline. */
  watchdogMs?: number;
}

export interface FuzzResult {
  target: string;
  seed: number;
  failed: boolean;
  /** Cases run in the search phase (before shrinking). */
  cases: number;
  shrinks: number;
  elapsedMs: number;
  casesPerSecond: number;
  counterexample?: unknown;
  path?: string;
  error?: string;
  fixture?: string;
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const detail = (e as { detail?: unknown }).detail;
    let s = `${e.name}: ${e.message}`;
    if (detail !== undefined) {
      try { s += `\n${toJson(detail)}`; } catch { s += `\n${String(detail)}`; }
    }
    if (!(e.name === 'FuzzViolation' || e.name === 'DeadlineExceeded') && e.stack) s += `\n${e.stack.split('\n').slice(1, 8).join('\n')}`;
    return s;
  }
  return String(e);
}

export async function runFuzz<T>(target: FuzzTarget<T>, opts: FuzzOptions): Promise<FuzzResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const harness: FuzzHarness<T> = await target.setup(opts.setup);
  const runs = opts.runs ?? (opts.timeSec !== undefined ? Number.MAX_SAFE_INTEGER : 1000);
  const progressMs = opts.progressMs ?? 2000;
  const watchdogMs = opts.watchdogMs ?? target.caseDeadlineMs * 10;
  const watchdog = watchdogMs > 0
    ? new Watchdog(watchdogMs, `fuzz: replay with: xenpv fuzz ${target.name} --seed ${opts.seed} --path {n}`)
    : undefined;

  const start = Date.now();
  let searchCases = 0; // executions before the first failure
  let failedOnce = false;
  let stalls = 0; // cases that overran once but not when re-run
  let lastProgress = start;

  const property = fc.asyncProperty(harness.arbitrary, async (value: T) => {
    // The search's case number is its fast-check path; while shrinking, name the failing case.
    watchdog?.enter(failedOnce ? searchCases - 1 : searchCases, failedOnce);
    if (!failedOnce) searchCases++;
    try {
      try {
        await runWithDeadline(() => harness.runCase(value), target.caseDeadlineMs);
      } catch (e) {
        if (!(e instanceof DeadlineExceeded)) throw e;
        // Confirm a hang by running the case again: on a shared machine a
        // process can be descheduled (or sit in a GC pause) past a deadline.
        stalls++;
        await runWithDeadline(() => harness.runCase(value), target.caseDeadlineMs);
      }
    } catch (e) {
      failedOnce = true;
      throw e;
    } finally {
      watchdog?.leave();
    }
    // Progress from inside the loop: a busy synchronous property starves timers.
    const now = Date.now();
    if (progressMs > 0 && now - lastProgress >= progressMs) {
      lastProgress = now;
      const s = (now - start) / 1000;
      log(`fuzz ${target.name}: ${searchCases} cases, ${Math.round(searchCases / s)} cases/s, ${s.toFixed(0)} s, seed ${opts.seed}`);
    }
  });

  const plugins = opts.timeSec !== undefined ? [fc.interruptAfterTimeLimit(opts.timeSec * 1000)] : [];
  let details: fc.RunDetails<[T]>;
  try {
    details = (await fc.check(property, {
      seed: opts.seed,
      numRuns: runs,
      path: opts.path,
      plugins,
      endOnFailure: false,
    })) as fc.RunDetails<[T]>;
  } finally {
    await watchdog?.stop();
    await harness.dispose?.();
  }
  const elapsedMs = Date.now() - start;
  // fast-check reports `failed` for a run its time limit cut before any case
  // ran (no counterexample, `interrupted`): that is no failure, and no pass either.
  const cutShort = details.failed && !details.counterexample && details.interrupted;
  const result: FuzzResult = {
    target: target.name,
    seed: opts.seed,
    failed: details.failed && !cutShort,
    cases: searchCases,
    shrinks: details.numShrinks,
    elapsedMs,
    casesPerSecond: Math.round(searchCases / Math.max(elapsedMs / 1000, 1e-3)),
  };
  if (stalls) log(`fuzz ${target.name}: ${stalls} case(s) overran the deadline once and passed on re-run (machine stalls)`);
  const coverage = harness.coverage?.();
  if (coverage) log(`fuzz ${target.name}: reached: ${coverage}`);
  if (details.failed && !details.counterexample && !cutShort) {
    result.error = errorText(details.errorInstance ?? new Error('fast-check reported a failure without a case'));
    log(`fuzz ${target.name}: FAILED after ${searchCases} cases, seed ${opts.seed}: ${result.error}`);
    return result;
  }
  if (searchCases === 0) {
    // Nothing was tested: never print OK for that.
    result.error = 'no case ran before the time limit';
    result.failed = true;
    log(`fuzz ${target.name}: FAILED: no case ran (time limit ${opts.timeSec ?? '-'} s), seed ${opts.seed}`);
    return result;
  }
  if (!details.failed || cutShort) {
    log(`fuzz ${target.name}: OK, ${searchCases} cases in ${(elapsedMs / 1000).toFixed(1)} s (${result.casesPerSecond} cases/s), seed ${opts.seed}`);
    return result;
  }
  const value = details.counterexample![0];
  result.counterexample = value;
  result.path = details.counterexamplePath ?? undefined;
  result.error = errorText(details.errorInstance);
  log(`fuzz ${target.name}: FAILED after ${searchCases} cases (${details.numShrinks} shrinks), seed ${opts.seed}, path ${result.path}`);
  log(`error: ${result.error}`);
  log('minimal case:');
  log(harness.format(value));
  if (opts.save ?? true) {
    result.fixture = saveFixture({
      target: target.name,
      seed: opts.seed,
      path: result.path ?? '',
      error: result.error.split('\n')[0],
      case: value,
    }, opts.fixturesDir);
    log(`saved: ${result.fixture}`);
  }
  log(`replay the search: xenpv fuzz ${target.name} --seed ${opts.seed} --path ${result.path}`);
  return result;
}

/** Replay one saved value through a target (no generation, no shrinking). */
export async function replayCase<T>(target: FuzzTarget<T>, harness: FuzzHarness<T>, value: T): Promise<void> {
  await runWithDeadline(() => harness.runCase(value), target.caseDeadlineMs);
}
