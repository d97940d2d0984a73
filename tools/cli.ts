/**
 * `xenpv` command line: a dispatcher over the COMMANDS table. bin/xenpv.js
 * calls `main(argv)` with the arguments after the program name; the result
 * is the exit code (0 ok, 1 failure, 2 usage; see tools/command.ts).
 *
 * How to add a command:
 *   1. Write tools/<name>.ts (or tools/<name>/index.ts) exporting
 *        export const main = defineCommand({ name, synopsis, description,
 *          options: { size: { type: 'string', arg: 'MiB', help: '…' } },
 *          reports: true,            // adds --json and --quiet
 *        }, async ({ values, positionals, out, signal }) => { …; return EXIT_OK; });
 *      defineCommand (tools/command.ts) gives it strict parseArgs, --help,
 *      --version, usage errors (exit 2), error mapping (exit 1), progress on
 *      stderr only for a TTY (out.progress), SIGINT/SIGTERM as `signal`.
 *      Throw XenpvErrors (InvalidArgumentError for bad input: exit 2); do
 *      not print stacks or call process.exit.
 *   2. Add ONE row below: its name, a one-line summary, and a lazy `run`
 *      (import inside `run`, so other commands load nothing of it).
 *   3. Document it in README.md's "Command line" section.
 * A command must leave nothing running when it returns (timers, workers,
 * sockets): the process exits when its work is done, test/cli-*.test.ts
 * checks that.
 */
import { version } from './command.js';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const COMMANDS: Record<string, Command> = {
  demo: {
    summary: 'attach a disk on the simulated hypervisor, run verified I/O patterns, print throughput',
    run: async (argv) => (await import('./demo.js')).main(argv),
  },
  attach: {
    summary: 'open a device spec (memory:, file:, xen:) and print its info',
    run: async (argv) => (await import('./attach.js')).main(argv),
  },
  dd: {
    summary: 'copy between two device specs or files (if= of= bs= count= skip= seek=)',
    run: async (argv) => (await import('./dd.js')).main(argv),
  },
  xenstore: {
    summary: 'xenstore-utils: ls | read | write | rm | watch, on a socket or /dev/xen/xenbus',
    run: async (argv) => (await import('./xenstore/index.js')).main(argv),
  },
  xenstored: {
    summary: 'run the simulated xenstored on a unix socket, in the foreground',
    run: async (argv) => (await import('./xenstored.js')).main(argv),
  },
  fuzz: {
    summary: 'fuzz the ring protocol: ring | blkif | frontend | backend | xenstore',
    run: async (argv) => (await import('./fuzz/index.js')).main(argv),
  },
  bench: {
    summary: 'benchmark the Wasm engine against the JS twin (table, --json, SVG chart)',
    run: async (argv) => (await import('./bench/index.js')).main(argv),
  },
  lvm: {
    summary: 'list, create, extend, shrink, remove LVM2 logical volumes on PV devices',
    run: async (argv) => (await import('./lvm.js')).main(argv),
  },
  export: {
    summary: 'export a device over NBD on 127.0.0.1 or a unix socket',
    run: async (argv) => (await import('./export.js')).main(argv),
  },
  queue: {
    summary: 'persistent queue on a device: format | push | pop | fill | bench',
    run: async (argv) => (await import('./queue.js')).main(argv),
  },
  serve: {
    summary: "serve the files of a FAT or ext4 file system on a block device over HTTP ('serve bench': throughput)",
    run: async (argv) => (await import('./serve.js')).main(argv),
  },
  run: {
    summary: 'run a job module: open its devices, start, restart by policy, stop on signal (as root: unprivileged child)',
    run: async (argv) => (await import('./jobs-cli.js')).runMain(argv),
  },
  list: {
    summary: 'list running instances (name, pid, state, uptime, devices); removes stale sockets',
    run: async (argv) => (await import('./jobs-cli.js')).listMain(argv),
  },
  stop: {
    summary: 'stop a running instance by name',
    run: async (argv) => (await import('./jobs-cli.js')).stopMain(argv),
  },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return [
    'usage: xenpv <command> [options]',
    '       xenpv -V | --version,  xenpv -h | --help | help',
    '',
    'commands:',
    ...rows,
    '',
    "run 'xenpv <command> --help' for a command's options",
    'exit codes: 0 ok, 1 failure, 2 usage, 130/143 interrupted (SIGINT/SIGTERM)',
    'debug log: DEBUG=xenpv:* (or xenpv:blkfront,xenpv:xenstore,...) on stderr',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    console.log(`xenpv ${version()}`);
    return 0;
  }
  if (name === undefined) {
    console.error(usage());
    return 2;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    console.error(`xenpv: unknown ${name.startsWith('-') ? 'option' : 'command'} '${name}'\n\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}
