/**
 * `xenpv fuzz <target> [--seed N] [--runs N] [--time S] [--path P] [--no-save] [--coverage] [--coverage-dir DIR]`
 * `xenpv fuzz --list`
 * `xenpv fuzz --replay` (every saved case under test/fixtures/fuzz)
 *
 * Exit codes: 0 every case passed, 1 a case failed (shrunk and saved) or
 * the run could not be made (missing prerequisite, nothing to replay), 2 usage. A hang the watchdog catches kills the process
 * (SIGKILL, after printing the seed and path to replay).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../src/util/compiled.js';
import { UnsupportedError } from '../../src/errors.js';
import { defineCommand, EXIT_FAILURE, EXIT_OK, intOption, usageError, type Output } from '../command.js';
import { formatCoverage, readV8Coverage, summarise } from './coverage.js';
import { fixturesDir, listFixtures, loadFixture } from './fixtures.js';
import { replayCase, runFuzz } from './runner.js';
import { FuzzPrerequisiteError } from './target.js';
import { loadTarget, TARGET_NAMES } from './targets/index.js';

export { runFuzz, replayCase } from './runner.js';
export type { FuzzOptions, FuzzResult } from './runner.js';
export { loadTarget, TARGET_NAMES } from './targets/index.js';
export { listFixtures, loadFixture } from './fixtures.js';
export type { FuzzTarget, FuzzHarness } from './target.js';

const DESCRIPTION = `Fuzz one target (deterministic from --seed; a failing case is shrunk and
saved under test/fixtures/fuzz/<target>/, which the test suite replays),
list the targets, or replay every saved case.
targets: ${TARGET_NAMES.join(', ')}`;

export const main = defineCommand({
  name: 'fuzz',
  synopsis: '<target> [--seed N] [--runs N] [--time SECONDS] [--path P] [--no-save] [--coverage] [--coverage-dir DIR]\n       xenpv fuzz --list | --replay',
  description: DESCRIPTION,
  reports: true,
  positionals: { min: 0, max: 1 },
  options: {
    seed: { type: 'string', arg: 'N', help: 'fast-check seed (default: random, printed)' },
    runs: { type: 'string', arg: 'N', help: 'stop after N cases (default 1000, or unbounded with --time)' },
    time: { type: 'string', arg: 'SECONDS', help: 'stop after this many seconds (a campaign: --time 600)' },
    path: { type: 'string', arg: 'P', help: 'replay the search from a printed path (with its --seed)' },
    'no-save': { type: 'boolean', help: 'do not write the shrunk case to test/fixtures/fuzz/<target>/' },
    coverage: { type: 'boolean', help: 'report how much of src/ the run reached (V8 precise coverage: % of functions and lines, what was never called)' },
    'coverage-dir': { type: 'string', arg: 'DIR', help: 'implies --coverage; also write DIR/coverage-<target>.json (the report) and keep V8\'s raw files in DIR/v8-<target>/ (NODE_V8_COVERAGE format, for c8 report)' },
    list: { type: 'boolean', help: 'list the targets and exit' },
    replay: { type: 'boolean', help: 'replay every saved case under test/fixtures/fuzz (exit 1 if one fails)' },
  },
  epilogue: 'Exit codes: 0 every case passed, 1 a case failed (shrunk and saved) or the run could\nnot be made (a missing prerequisite, no saved case to replay), 2 usage. A hang the watchdog catches kills the process (after printing the seed\nand path to replay).',
}, async ({ values, positionals, out }) => {
  if (values.list) {
    const rows: { name: string; summary: string }[] = [];
    for (const name of TARGET_NAMES) {
      const t = await loadTarget(name).catch(() => undefined);
      rows.push({ name, summary: t?.summary ?? '(cannot load)' });
    }
    out.result(rows, () => rows.map((r) => `${r.name.padEnd(10)} ${r.summary}`).join('\n'));
    return EXIT_OK;
  }
  if (values.replay) return replayAll(out);
  const name = positionals[0];
  if (name === undefined) throw usageError('target', `name a target (${TARGET_NAMES.join(', ')}), or --list / --replay`);
  const seed = intOption('seed', values.seed) ?? (Math.random() * 0x7fffffff) >>> 0;
  // Zero cases or zero seconds would report a run that tested nothing.
  const runs = intOption('runs', values.runs, 1);
  const timeSec = intOption('time', values.time, 1);
  const covDir = values['coverage-dir'];
  if ((values.coverage || covDir !== undefined) && process.env[COVERAGE_CHILD] === undefined) {
    if (!(TARGET_NAMES as readonly string[]).includes(name)) throw usageError('target', `unknown fuzz target ${name} (${TARGET_NAMES.join(', ')})`);
    return coverageRun(name, { seed, runs, timeSec, path: values.path, noSave: values['no-save'] === true, covDir }, out);
  }
  try {
    const target = await loadTarget(name);
    const log = out.quiet || out.json ? () => undefined : undefined;
    const result = await runFuzz(target, { seed, runs, timeSec, path: values.path, save: !values['no-save'], log });
    if (out.json) out.result(result, () => '');
    return result.failed ? EXIT_FAILURE : EXIT_OK;
  } catch (e) {
    if (e instanceof FuzzPrerequisiteError) throw new UnsupportedError(e.message);
    if (e instanceof Error && e.message.startsWith('unknown fuzz target')) throw usageError('target', e.message);
    throw e;
  }
});

/** Alias kept for callers of the old name. */
export const fuzzMain = main;

async function replayAll(out: Output): Promise<number> {
  const fixtures = listFixtures();
  // Replaying nothing is not a pass: say where we looked.
  if (fixtures.length === 0) throw new UnsupportedError(`no saved cases to replay under ${fixturesDir()}`);
  let failures = 0;
  const results: { file: string; ok: boolean; error?: string }[] = [];
  const byTarget = new Map<string, string[]>();
  for (const { target, file } of fixtures) byTarget.set(target, [...(byTarget.get(target) ?? []), file]);
  for (const [name, files] of byTarget) {
    const target = await loadTarget(name);
    const harness = await target.setup();
    try {
      for (const file of files) {
        try {
          await replayCase(target, harness, loadFixture(file).case);
          results.push({ file, ok: true });
          out.note(`replay ok   ${file}`);
        } catch (e) {
          failures++;
          const error = e instanceof Error ? e.message : String(e);
          results.push({ file, ok: false, error });
          if (!out.json) process.stderr.write(`replay FAIL ${file}: ${error}\n`);
        }
      }
    } finally {
      await harness.dispose?.();
    }
  }
  out.result({ replayed: results.length, failed: failures, results },
    () => `fuzz --replay: ${results.length - failures} of ${results.length} saved cases pass${failures ? `, ${failures} FAILED` : ''}`);
  return failures ? EXIT_FAILURE : EXIT_OK;
}

/** Set in the child a `--coverage` run starts: it fuzzes, the parent reports. */
const COVERAGE_CHILD = 'XENPV_FUZZ_COVERAGE_CHILD';

interface CoverageRunOptions { seed: number; runs?: number; timeSec?: number; path?: string; noSave: boolean; covDir?: string }

/**
 * `--coverage`: run the same campaign (same resolved seed) in a child node
 * with NODE_V8_COVERAGE, so V8 counts from the first line of every module,
 * then summarise what it wrote. The child's exit code is the command's.
 */
async function coverageRun(name: string, o: CoverageRunOptions, out: Output): Promise<number> {
  const root = packageRoot(fileURLToPath(import.meta.url));
  // Kept under --coverage-dir (emptied first: V8 adds files, it never replaces them); else a temporary folder.
  const keep = o.covDir !== undefined ? join(o.covDir, `v8-${name}`) : undefined;
  if (keep) rmSync(keep, { recursive: true, force: true });
  const v8Dir = keep ?? mkdtempSync(join(tmpdir(), 'xenpv-fuzz-v8-'));
  try {
    const args = [join(root, 'bin', 'xenpv.js'), 'fuzz', name, '--seed', String(o.seed)];
    if (o.runs !== undefined) args.push('--runs', String(o.runs));
    if (o.timeSec !== undefined) args.push('--time', String(o.timeSec));
    if (o.path !== undefined) args.push('--path', o.path);
    if (o.noSave) args.push('--no-save');
    if (out.json) args.push('--json');
    else if (out.quiet) args.push('--quiet');
    const child = spawn(process.execPath, args, {
      env: { ...process.env, NODE_V8_COVERAGE: v8Dir, [COVERAGE_CHILD]: '1' },
      stdio: ['ignore', out.json ? 'pipe' : 'inherit', 'inherit'],
    });
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 : EXIT_FAILURE)));
    });
    const report = summarise(join(root, 'dist', 'src'), readV8Coverage(v8Dir, join(root, 'dist', 'src')));
    if (o.covDir !== undefined) {
      mkdirSync(o.covDir, { recursive: true });
      writeFileSync(join(o.covDir, `coverage-${name}.json`), JSON.stringify({ target: name, seed: o.seed, ...report }, null, 2) + '\n');
      out.note(`wrote ${join(o.covDir, `coverage-${name}.json`)} and ${v8Dir}/`);
    }
    if (out.json) {
      const result = stdout.trim() ? (JSON.parse(stdout) as object) : {};
      out.result({ ...result, coverage: report }, () => '');
    } else {
      out.result(report, () => formatCoverage(name, report));
    }
    return code;
  } finally {
    if (!keep) rmSync(v8Dir, { recursive: true, force: true });
  }
}
