/**
 * tools/command.ts's extensions, as the lab harness and the subcommand
 * groups use them: a program other than xenpv (xen-vm, run as
 * `npm run xen-vm --`), everything after `--` handed over as words (the
 * dom0 script), and defineGroup's dispatch; then the real xen-vm harness's
 * exit codes for what it refuses before any image or boot.
 */
import { describe, expect, it, vi } from 'vitest';
import { defineCommand, defineGroup, EXIT_OK } from '../tools/command.js';
import { ROOT, runCli } from './support/cli.js';
import { join } from 'node:path';

interface Captured { code: number; stdout: string; stderr: string }

async function capture(fn: () => Promise<number>): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { stdout += String(s); return true; });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { stderr += String(s); return true; });
  try {
    return { code: await fn(), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('defineCommand for another program, with -- COMMAND...', () => {
  const seen: string[][] = [];
  const lab = defineCommand({
    name: '',
    program: { name: 'lab', invoke: 'npm run lab --' },
    synopsis: '<run> [options] -- COMMAND...',
    description: 'a lab',
    positionals: { min: 1, max: Infinity },
    options: { quiet: { type: 'boolean', help: 'quiet' }, vcpus: { type: 'string', arg: 'N', default: '2', help: 'vcpus' } },
  }, async ({ positionals, values }) => {
    seen.push([...positionals, `vcpus=${values.vcpus}`, `quiet=${values.quiet === true}`]);
    return 7;
  });

  it('hands every word after -- over as it is, options and --help included, and returns the handler\'s code', async () => {
    const r = await capture(() => lab(['run', '--vcpus', '4', '--', 'node', '--quiet', 'x.js', '--help', '-h']));
    expect(r.code).toBe(7);
    expect(seen.pop()).toEqual(['run', 'node', '--quiet', 'x.js', '--help', '-h', 'vcpus=4', 'quiet=false']);
  });

  it('names the program in usage, errors and the hint, not xenpv', async () => {
    const help = await capture(() => lab(['--help']));
    expect(help.code).toBe(0);
    expect(help.stdout.split('\n')[0]).toBe('usage: npm run lab -- <run> [options] -- COMMAND...');
    const bad = await capture(() => lab(['run', '--vcpus']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("lab: Option '--vcpus <value>' argument missing\nrun 'npm run lab -- --help' for usage\n");
    const none = await capture(() => lab([]));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('lab: arguments: missing argument (usage: npm run lab -- <run> [options] -- COMMAND...)');
    expect(seen).toEqual([]);
  });
});

describe('defineGroup', () => {
  const ran: string[] = [];
  const sub = (word: string) => defineCommand({
    name: `grp ${word}`, synopsis: '[--n N] ARG', summary: `the ${word} one`, description: `Does ${word}.`,
    positionals: { min: 1, max: 1 }, options: { n: { type: 'string', arg: 'N', help: 'n' } },
  }, async ({ positionals }) => { ran.push(`${word} ${positionals[0]}`); return EXIT_OK; });
  const grp = defineGroup({ name: 'grp', description: 'A group.', commands: { alpha: sub('alpha'), beta: sub('beta') } });

  it('runs the subcommand the first word names with the rest of the arguments', async () => {
    expect((await capture(() => grp(['beta', 'x']))).code).toBe(0);
    expect(ran).toEqual(['beta x']);
  });

  it('--help lists each subcommand with its synopsis and summary; --version prints the version; both exit 0', async () => {
    const h = await capture(() => grp(['--help']));
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^usage: xenpv grp <alpha\|beta> /);
    expect(h.stdout).toMatch(/^ {2}alpha \[--n N\] ARG +the alpha one$/m);
    expect(h.stdout).toMatch(/^ {2}beta \[--n N\] ARG +the beta one$/m);
    const v = await capture(() => grp(['--version']));
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^xenpv \d+\.\d+\.\d+\n$/);
  });

  it('no subcommand is exit 2 with the list on stderr; an unknown word or option is exit 2 in one line and a hint', async () => {
    const none = await capture(() => grp([]));
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('  alpha ');
    const unknown = await capture(() => grp(['gamma']));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("xenpv grp: command: unknown 'gamma' (commands: alpha, beta)\nrun 'xenpv grp --help' for usage\n");
    const opt = await capture(() => grp(['--bogus']));
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain("xenpv grp: option: unknown '--bogus'");
    const subBad = await capture(() => grp(['alpha', '--bogus', 'x']));
    expect(subBad.code).toBe(2);
    expect(subBad.stderr).toContain("xenpv grp alpha: Unknown option '--bogus'");
    expect(ran).toEqual(['beta x']);
  });
});

describe('the xen-vm harness refuses bad usage with exit 2 before building or booting anything', () => {
  const XEN_VM = join(ROOT, 'dist/tools/xen-vm/xen-vm.js');
  // An empty cache: were the image looked for, it would have to be built (minutes), not exit 2 at once.
  const env = { XENPV_VM_CACHE: join(ROOT, 'test/.tmp/xen-vm-no-cache') };

  it.each([
    [[], 'missing argument'],
    [['frob'], "'frob' is not build, run or shell"],
    [['run'], 'run needs a COMMAND after --'],
    [['shell', 'extra'], 'unexpected arguments: extra'],
    [['run', '--vcpus', 'x', '--', 'true'], '--vcpus: must be an integer'],
    [['run', '--mem', '512', '--', 'true'], '--mem: must be an integer in 768..'],
    [['run', 'ls', '-l'], "Unknown option '-l'"],
    [['--bogus'], "Unknown option '--bogus'"],
  ])('xen-vm %j: exit 2, "%s", a hint naming npm run xen-vm', async (args, message) => {
    const r = await runCli(args as string[], { bin: XEN_VM, env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^xen-vm: /);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("run 'npm run xen-vm -- --help' for usage");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('xen-vm --help lists every option and exits 0; --version prints the version', async () => {
    const h = await runCli(['--help'], { bin: XEN_VM, env, timeoutMs: 30_000 });
    expect(h.code).toBe(0);
    for (const o of ['--force', '--vcpus N', '--mem MiB', '--boot-timeout S', '--timeout S', '--log FILE', '--quiet', '--help', '--version']) expect(h.stdout).toContain(o);
    expect(h.stdout).toContain('exit: COMMAND\'s status; 2 usage; 3 the lab failed');
    const v = await runCli(['--version'], { bin: XEN_VM, env, timeoutMs: 30_000 });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^xenpv \d+\.\d+\.\d+\n$/);
  });
});
