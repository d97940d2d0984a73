/**
 * `xenpv fuzz <target> [--seed N] [--runs N] [--time S] [--path P] [--no-save]`
 * `xenpv fuzz --list`
 * `xenpv fuzz --replay` (every saved case under test/fixtures/fuzz)
 *
 * Exit codes: 0 no failure, 1 a case failed (shrunk and saved), 2 usage or
 * a missing prerequisite. A hang the watchdog catches kills the process
 * (SIGKILL, after printing the seed and path to replay).
 */
import { parseArgs } from 'node:util';
import { listFixtures, loadFixture } from './fixtures.js';
import { replayCase, runFuzz } from './runner.js';
import { FuzzPrerequisiteError } from './target.js';
import { loadTarget, TARGET_NAMES } from './targets/index.js';

export { runFuzz, replayCase } from './runner.js';
export type { FuzzOptions, FuzzResult } from './runner.js';
export { loadTarget, TARGET_NAMES } from './targets/index.js';
export { listFixtures, loadFixture } from './fixtures.js';
export type { FuzzTarget, FuzzHarness } from './target.js';

const USAGE = `usage: xenpv fuzz <target> [--seed N] [--runs N] [--time SECONDS] [--path P] [--no-save]
       xenpv fuzz --list | --replay
targets: ${TARGET_NAMES.join(', ')}
  --seed N     fast-check seed (default: random, printed)
  --runs N     stop after N cases (default 1000, or unbounded with --time)
  --time S     stop after S seconds (a long campaign: --time 600)
  --path P     replay the search from a printed path (with its --seed)
  --no-save    do not write the shrunk case to test/fixtures/fuzz/<target>/`;

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${v}'`);
  return n;
}

async function replayAll(): Promise<number> {
  let failures = 0;
  const byTarget = new Map<string, string[]>();
  for (const { target, file } of listFixtures()) byTarget.set(target, [...(byTarget.get(target) ?? []), file]);
  for (const [name, files] of byTarget) {
    const target = await loadTarget(name);
    const harness = await target.setup();
    for (const file of files) {
      try {
        await replayCase(target, harness, loadFixture(file).case);
        process.stderr.write(`replay ok   ${file}\n`);
      } catch (e) {
        failures++;
        process.stderr.write(`replay FAIL ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
    await harness.dispose?.();
  }
  return failures ? 1 : 0;
}

/** Entry point for the CLI's `fuzz` subcommand; `argv` excludes the word `fuzz`. */
export async function fuzzMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        seed: { type: 'string' },
        runs: { type: 'string' },
        time: { type: 'string' },
        path: { type: 'string' },
        'no-save': { type: 'boolean' },
        list: { type: 'boolean' },
        replay: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.list) {
    for (const name of TARGET_NAMES) {
      const t = await loadTarget(name).catch(() => undefined);
      process.stdout.write(`${name.padEnd(10)} ${t?.summary ?? '(cannot load)'}\n`);
    }
    return 0;
  }
  if (values.replay) return replayAll();
  if (positionals.length !== 1) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  let seed: number, runs: number | undefined, timeSec: number | undefined;
  try {
    seed = positiveInt('seed', values.seed) ?? (Math.random() * 0x7fffffff) >>> 0;
    runs = positiveInt('runs', values.runs);
    timeSec = positiveInt('time', values.time);
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    const target = await loadTarget(positionals[0]);
    const result = await runFuzz(target, { seed, runs, timeSec, path: values.path, save: !values['no-save'] });
    return result.failed ? 1 : 0;
  } catch (e) {
    if (e instanceof FuzzPrerequisiteError || (e instanceof Error && e.message.startsWith('unknown fuzz target'))) {
      process.stderr.write(`fuzz: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** Alias, for the CLI table's `(await import('./fuzz/index.js')).main(argv)` convention. */
export const main = fuzzMain;
