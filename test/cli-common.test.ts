/**
 * What every xenpv command shares (tools/command.ts): strict options, --help
 * that does no work, --version, usage errors as exit 2 without a stack, and
 * a process that exits once the work is done.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './support/cli.js';

const COMMANDS = ['demo', 'attach', 'dd', 'xenstored', 'fuzz', 'bench', 'xenstore ls', 'xenstore read', 'xenstore write', 'xenstore rm', 'xenstore watch'];
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('xenpv command line: shared behaviour', () => {
  it.each(COMMANDS)('%s --help prints its usage and exits 0 without doing any work', async (cmd) => {
    const cwd = mkdtempSync(join(tmpdir(), 'xenpv-help-'));
    const r = await runCli([...cmd.split(' '), '--help'], { cwd, timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`usage: xenpv ${cmd}`);
    expect(r.stdout).toContain('--help');
    expect(r.stderr).toBe('');
    // bench --help used to run the whole benchmark and write bench-results/.
    expect(existsSync(join(cwd, 'bench-results'))).toBe(false);
    rmSync(cwd, { recursive: true, force: true });
  });

  it.each(COMMANDS)('%s --bogus is a usage error: exit 2, a hint, no stack', async (cmd) => {
    const cwd = mkdtempSync(join(tmpdir(), 'xenpv-bogus-'));
    const r = await runCli([...cmd.split(' '), '--bogus'], { cwd, timeoutMs: 20_000 });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain("Unknown option '--bogus'");
    expect(r.stderr).toContain(`xenpv ${cmd} --help`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(cwd, 'bench-results'))).toBe(false);
    rmSync(cwd, { recursive: true, force: true });
  });

  it('xenpv --version and <command> --version print the package version', async () => {
    expect((await runCli(['--version'])).stdout).toBe(`xenpv ${VERSION}\n`);
    const r = await runCli(['dd', '--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`xenpv ${VERSION}\n`);
  });

  it('an unknown command or option is exit 2 with the command list', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toContain('xenstore');
    expect((await runCli(['--bogus'])).code).toBe(2);
    expect((await runCli([])).code).toBe(2);
  });

  it('bench --quick --out (no value) is refused before any benchmark runs', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'xenpv-bench-'));
    const r = await runCli(['bench', '--quick', '--out'], { cwd, timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'--out <value>' argument missing");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(cwd, 'bench-results'))).toBe(false);
  });

  it.each([['under a file', 'FILE/sub'], ['under /proc (where a recursive mkdir never returned)', '/proc/xenpv-cannot/here']])(
    'bench --out %s fails at once, naming it, before measuring', async (_what, where) => {
      const file = join(mkdtempSync(join(tmpdir(), 'xenpv-bench-f-')), 'plain');
      writeFileSync(file, '');
      const out = where.replace('FILE', file);
      const r = await runCli(['bench', '--quick', '--out', out], { timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`--out ${out}: cannot write there`);
      expect(r.ms).toBeLessThan(15_000);
    });

  it('bench --quick --json writes results where --out says and prints them as JSON', async () => {
    const out = mkdtempSync(join(tmpdir(), 'xenpv-bench-out-'));
    const r = await runCli(['bench', '--micro', '--quick', '--json', '--out', out], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const results = (JSON.parse(r.stdout) as { families: { micro: { engine: string; medianNsPerOp: number }[] } }).families.micro;
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((e) => e.medianNsPerOp > 0)).toBe(true);
    expect(existsSync(join(out, 'bench.json'))).toBe(true);
    expect(readFileSync(join(out, 'bench.svg'), 'utf8')).toContain('<svg');
    // Not a terminal: no progress on stderr.
    expect(r.stderr).toBe('');
  }, 180_000);
});

describe('xenpv fuzz: truthful results, prompt exit', () => {
  it('fuzz frontend exits as soon as it printed OK (a detached 30 s wait kept it alive)', async () => {
    let okAt = 0;
    const r = await runCli(['fuzz', 'frontend', '--runs', '20', '--seed', '7', '--no-save'], {
      timeoutMs: 90_000,
      onStderr: (all) => { if (!okAt && all.includes(': OK,')) okAt = Date.now(); },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(okAt).toBeGreaterThan(0);
    const lingered = Date.now() - okAt;
    expect(lingered, `exited ${lingered} ms after printing OK`).toBeLessThan(5_000);
  }, 120_000);

  it('fuzz ring --time 0 is a usage error, never "OK" with exit 1', async () => {
    const r = await runCli(['fuzz', 'ring', '--time', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--time: must be an integer in 1..');
    expect(r.stderr).not.toContain('OK');
    expect((await runCli(['fuzz', 'ring', '--runs', '0'])).code).toBe(2);
  });

  it('fuzz --replay with no saved cases says so and fails, instead of printing nothing and exiting 0', async () => {
    // An installed package: the CLI without the repository's test/fixtures.
    const pkg = mkdtempSync(join(tmpdir(), 'xenpv-pkg-'));
    for (const d of ['dist', 'bin', 'package.json']) cpSync(join(ROOT, d), join(pkg, d), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    const r = await runCli(['fuzz', '--replay'], { bin: join(pkg, 'bin/xenpv.js'), cwd: pkg });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no saved cases to replay under ${join(pkg, 'test/fixtures/fuzz')}`);
    rmSync(pkg, { recursive: true, force: true });
  });

  it('fuzz --replay replays the saved cases and reports the count', async () => {
    const r = await runCli(['fuzz', '--replay', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { replayed: number; failed: number };
    expect(rep.replayed).toBeGreaterThan(0);
    expect(rep.failed).toBe(0);
  }, 180_000);
});
