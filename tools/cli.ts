/**
 * `xenpv` command line: a subcommand dispatcher. bin/xenpv.js calls
 * `main(argv)` with the arguments after the program name; the result is the
 * exit code.
 *
 * To add a subcommand, add one row to COMMANDS: its name, a one-line
 * summary for `xenpv --help`, and a lazy `run(argv) => Promise<exit code>`
 * (import its module inside `run` so unrelated commands load nothing).
 */
import { parseArgs } from 'node:util';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const COMMANDS: Record<string, Command> = {
  xenstored: {
    summary: 'run the simulated xenstored on a unix socket, in the foreground',
    run: runXenstored,
  },
  demo: {
    summary: 'attach a disk on the simulated hypervisor, run verified I/O patterns, print throughput',
    run: async (argv) => (await import('./demo.js')).main(argv),
  },
  fuzz: {
    summary: 'fuzz the ring protocol: ring | blkif | frontend | backend | xenstore',
    run: async (argv) => (await import('./fuzz/index.js')).fuzzMain(argv),
  },
  bench: {
    summary: 'benchmark the Wasm engine against the JS twin (table, --json, SVG chart)',
    run: runBench,
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
  return ['usage: xenpv <command> [options]', '', 'commands:', ...rows, '', "run 'xenpv <command> --help' for a command's options"].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`xenpv: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}

// ------------------------------------------------------------ xenstored

const XENSTORED_HELP = `usage: xenpv xenstored [--socket PATH]

Run the simulated xenstored in the foreground, serving the xenstore wire
protocol (xen/io/xs_wire.h) on a unix socket until SIGINT or SIGTERM.
Every socket client is dom0 (privileged), as with Xen's xenstored.
Xen's own tools work against it:

  XENSTORED_PATH=PATH xenstore-write /a/b hello
  XENSTORED_PATH=PATH xenstore-ls /

options:
  --socket PATH   socket to listen on (default: $XENSTORED_PATH, else
                  $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket)
  --verbose       log dropped connections (protocol violations) to stderr
  -h, --help      show this help`;

async function runXenstored(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { socket: { type: 'string' }, verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    console.error(`xenpv xenstored: ${(err as Error).message}\n\n${XENSTORED_HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(XENSTORED_HELP);
    return 0;
  }
  const { XenstoreServer } = await import('../src/xenstore/server/server.js');
  const { defaultSocketPath } = await import('../src/xenstore/transport/socket.js');
  const path = values.socket ?? defaultSocketPath();
  const server = new XenstoreServer({ log: values.verbose ? (m) => console.error(m) : undefined });
  try {
    await server.listen(path);
  } catch (err) {
    console.error(`xenpv xenstored: cannot listen on ${path}: ${(err as Error).message}`);
    return 1;
  }
  console.log(`xenstored listening on ${path}`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  console.error(`xenstored: ${signal}, stopped`);
  return 0;
}

// ------------------------------------------------------------ bench

/** The benchmark is a script of its own (it reads process.argv): run it as one. */
async function runBench(argv: string[]): Promise<number> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const script = fileURLToPath(new URL('./bench/index.js', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...argv], { stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
