/**
 * Every row of the COMMANDS table (tools/cli.ts), and every subcommand of
 * the rows that have them, answers --help and --version at once, with exit
 * 0 and without doing any work (no file created in its folder, $HOME or
 * $TMPDIR); and its help lists every option its parser accepts.
 *
 * What a command accepts is read from the parser's own table
 * (allOptions(spec), the table defineCommand hands to parseArgs), and
 * checked against the printed help, and the other way round; then all the
 * options together are passed with --help, which the strict parser would
 * refuse (exit 2) if it did not know one of them.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../tools/cli.js';
import { allOptions, definedCommands, type CommandMain } from '../tools/command.js';
import { ROOT, runCli } from './support/cli.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ROWS = Object.keys(COMMANDS);
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh cwd, HOME and TMPDIR, empty: anything a command writes shows up in one of them. */
function sandbox(): { cwd: string; env: NodeJS.ProcessEnv; files: () => string[] } {
  const root = mkdtempSync(join(tmpdir(), 'xenpv-cli-help-'));
  made.push(root);
  const [cwd, home, tmp] = ['cwd', 'home', 'tmp'].map((d) => join(root, d)) as [string, string, string];
  for (const d of [cwd, home, tmp]) mkdirSync(d);
  return {
    cwd,
    env: { HOME: home, TMPDIR: tmp, XDG_RUNTIME_DIR: join(home, 'run') },
    files: () => [cwd, home, tmp].flatMap((d) => readdirSync(d).map((f) => join(d, f))),
  };
}

/** Run `fn` with this process's stdout and stderr swallowed (a command's main prints there). */
async function silently<T>(fn: () => Promise<T>): Promise<T> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await fn();
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** The commands a row is made of (itself, or its subcommands), loaded by running it in this process. */
async function commandsOf(row: string): Promise<CommandMain[]> {
  await silently(() => COMMANDS[row]!.run(['--version']));
  return definedCommands().filter((c) => c.spec.name === row || c.spec.name.startsWith(`${row} `));
}

/** The option names in the "options:" section of a help text. */
function listedOptions(help: string): string[] {
  const section = help.split('\noptions:\n')[1] ?? '';
  return [...section.matchAll(/^ {2}(?:-\w, |    )--([\w-]+)/gm)].map((m) => m[1]!);
}

describe('xenpv <command> --help and --version', () => {
  it.each(ROWS)('xenpv %s --help and --version exit 0 at once, print only on stdout, and create no file', async (row) => {
    const box = sandbox();
    const help = await runCli([row, '--help'], { cwd: box.cwd, env: box.env, timeoutMs: 30_000 });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^usage: xenpv ${row}\\b`));
    expect(help.stderr).toBe('');
    const ver = await runCli([row, '--version'], { cwd: box.cwd, env: box.env, timeoutMs: 30_000 });
    expect(ver.code, ver.stderr).toBe(0);
    expect(ver.stdout).toBe(`xenpv ${VERSION}\n`);
    expect(ver.stderr).toBe('');
    expect(box.files(), 'files written by --help / --version').toEqual([]);
    // Node starts in well under a second; a command that went to work (bench measuring) takes many.
    expect(Math.max(help.ms, ver.ms), `slowest of --help / --version, ms`).toBeLessThan(15_000);
  }, 70_000);
});

describe('each command\'s help lists every option its parser accepts', () => {
  it.each(ROWS)('xenpv %s', async (row) => {
    const cmds = await commandsOf(row);
    expect(cmds.length, `xenpv ${row} is not built with defineCommand (tools/command.ts): its options cannot be checked against its help`).toBeGreaterThan(0);
    const sub = cmds.filter((c) => c.spec.name !== row);
    if (sub.length > 0) {
      // A group: its help lists each subcommand at the start of a line.
      const group = await runCli([row, '--help'], { timeoutMs: 30_000 });
      for (const c of sub) expect(group.stdout).toMatch(new RegExp(`^ {2}${c.spec.name.slice(row.length + 1)} `, 'm'));
    }
    for (const c of cmds) {
      const box = sandbox();
      const r = await runCli([...c.spec.name.split(' '), '--help'], { cwd: box.cwd, env: box.env, timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(box.files(), `files written by xenpv ${c.spec.name} --help`).toEqual([]);
      const accepted = allOptions(c.spec);
      for (const [name, o] of Object.entries(accepted)) {
        const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' ' : ''}`;
        expect(r.stdout, `xenpv ${c.spec.name} --help should list ${flag.trim()}`).toContain(`  ${flag}`);
      }
      expect(listedOptions(r.stdout).sort(), `options in xenpv ${c.spec.name} --help`).toEqual(Object.keys(accepted).sort());
      // All of them at once, then --help: a parser that refused one would exit 2.
      const argv = Object.entries(accepted).flatMap(([name, o]) => (o.type === 'string' ? [`--${name}`, '1'] : [`--${name}`]));
      expect(await silently(() => c([...argv.filter((a) => a !== '--help' && a !== '--version'), '--help'])), `xenpv ${c.spec.name} ${argv.join(' ')} --help`).toBe(0);
    }
  }, 120_000);
});
