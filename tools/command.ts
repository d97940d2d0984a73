/**
 * What every `xenpv` command shares: one way to parse options (node:util
 * parseArgs, strict), the help text built from the same table, --help/-h,
 * --version, --json/--quiet for commands that report, progress on stderr only
 * when stderr is a TTY, SIGINT/SIGTERM turned into an AbortSignal, and ONE
 * place (`runCommand`) that turns a thrown error into a message and an exit
 * code:
 *
 *   0    ok
 *   1    failure: the work failed or found a failure (any XenpvError but
 *        invalid-argument, or an unexpected error, printed with its stack)
 *   2    usage: unknown option, bad value, missing argument, or input the
 *        library refused as invalid-argument (a bad device spec)
 *   130  interrupted by SIGINT (143 SIGTERM), after cleaning up
 *
 * A command module exports `main = defineCommand(spec, handler)`; a command
 * with subcommands (`xenpv queue format|push|...`) exports
 * `main = defineGroup({ name, description, commands: { format, push } })`
 * over subcommands made by defineCommand, named `queue format`, ...
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidArgumentError, XenpvError } from '../src/errors.js';
import { packageRoot } from '../src/util/compiled.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
const EXIT_SIGNAL: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** Placeholder shown in help: `--size MiB`. */
  readonly arg?: string;
  readonly help: string;
}

export type OptionTable = Record<string, OptionSpec>;

type Value<S extends OptionSpec> = S['type'] extends 'boolean'
  ? (S['multiple'] extends true ? boolean[] : boolean)
  : (S['multiple'] extends true ? string[] : string);
export type Values<O extends OptionTable> = { [K in keyof O]: O[K] extends { default: unknown } ? Value<O[K]> : Value<O[K]> | undefined };

/**
 * A program other than the xenpv CLI that uses this machinery (the lab
 * harness): `name` starts its messages, `invoke` is how a user runs it.
 */
export interface Program {
  readonly name: string;
  readonly invoke: string;
}

const XENPV: Program = { name: 'xenpv', invoke: 'xenpv' };

export interface CommandSpec<O extends OptionTable> {
  /** As typed: `demo`, `xenstore read`. */
  readonly name: string;
  /** One line for the command list of its group (`xenpv queue --help`). */
  readonly summary?: string;
  /** Default: the xenpv CLI. */
  readonly program?: Program;
  /** After the name in the usage line: `[options] <device>`. */
  readonly synopsis: string;
  /** What it does, a paragraph or two (already wrapped). */
  readonly description: string;
  readonly options: O;
  /** Adds --json and --quiet. */
  readonly reports?: boolean;
  /** Positional arguments allowed (default none). */
  readonly positionals?: { readonly min: number; readonly max: number };
  /** Extra help after the options (examples, units). */
  readonly epilogue?: string;
}

export interface Context<O extends OptionTable> {
  readonly values: Values<O>;
  readonly positionals: string[];
  readonly out: Output;
  /** Aborted by the first SIGINT/SIGTERM; a second one exits at once. */
  readonly signal: AbortSignal;
}

/** Where a command's output goes, honouring --json and --quiet. */
export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** The command's result: JSON when --json, else `text()` unless --quiet. */
  result(value: unknown, text: () => string): void;
  /** Data the command exists to print (a value read): always printed, bytes as they are. */
  data(text: string | Uint8Array): void;
  /** A human note on stderr, dropped by --quiet and --json. */
  note(text: string): void;
  /** A progress line on stderr, only when stderr is a TTY and not --quiet. */
  progress(label: string, done: number, total: number): void;
}

interface Streams {
  stdout: { write(s: string | Uint8Array): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

export function createOutput(json: boolean, quiet: boolean, io: Streams = process): Output {
  let lastLen = 0;
  return {
    json,
    quiet,
    result(value, text) {
      if (json) io.stdout.write(JSON.stringify(value, jsonReplacer, 2) + '\n');
      else if (!quiet) io.stdout.write(text() + '\n');
    },
    data(text) {
      io.stdout.write(text);
    },
    note(text) {
      if (!quiet && !json) io.stderr.write(text + '\n');
    },
    progress(label, done, total) {
      if (quiet || !io.stderr.isTTY) return;
      const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
      const line = `${label} ${String(pct).padStart(3)}%`;
      io.stderr.write(`\r${line.padEnd(lastLen)}${done >= total ? '\n' : ''}`);
      lastLen = done >= total ? 0 : line.length;
    },
  };
}

/** BigInt as a decimal string in JSON output. */
function jsonReplacer(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

const COMMON: OptionTable = {
  help: { type: 'boolean', short: 'h', help: 'show this help and exit' },
  version: { type: 'boolean', help: 'print the xenpv version and exit' },
};
const REPORTING: OptionTable = {
  json: { type: 'boolean', help: 'print the result as JSON on stdout' },
  quiet: { type: 'boolean', short: 'q', help: 'print nothing but errors (the exit code tells)' },
};

export function version(): string {
  const root = packageRoot(new URL(import.meta.url).pathname);
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Every option the command's parser accepts: its own, --json/--quiet if it reports, --help, --version. */
export function allOptions(spec: CommandSpec<OptionTable>): OptionTable {
  return { ...spec.options, ...(spec.reports ? REPORTING : {}), ...COMMON };
}

/** `xenpv queue format` (or `xen-vm run`): what messages start with. */
function label(program: Program, name: string): string {
  return name === '' ? program.name : `${program.name} ${name}`;
}

/** `xenpv queue format` (or `npm run xen-vm -- run`): what the user types. */
function invocation(program: Program, name: string): string {
  return name === '' ? program.invoke : `${program.invoke} ${name}`;
}

export function helpText(spec: CommandSpec<OptionTable>): string {
  const rows = Object.entries(allOptions(spec)).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    const dflt = o.default !== undefined && o.type === 'string' ? ` (default ${o.default})` : '';
    return `  ${flag.padEnd(24)} ${o.help}${dflt}`;
  });
  return [`usage: ${invocation(spec.program ?? XENPV, spec.name)} ${spec.synopsis}`.trimEnd(), '', spec.description, '', 'options:', ...rows,
    ...(spec.epilogue ? ['', spec.epilogue] : [])].join('\n');
}

/** Turns a thrown error into one message on stderr and an exit code. The one place that does. */
export function reportError(name: string, err: unknown, stderr: { write(s: string): unknown } = process.stderr): number {
  return report(XENPV, name, err, stderr);
}

function report(program: Program, name: string, err: unknown, stderr: { write(s: string): unknown } = process.stderr): number {
  const who = label(program, name);
  const hint = `\nrun '${invocation(program, name)} --help' for usage`;
  if (err instanceof XenpvError) {
    const usage = err.code === 'invalid-argument';
    stderr.write(`${who}: ${err.message}${usage ? hint : ''}\n`);
    return usage ? EXIT_USAGE : EXIT_FAILURE;
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    stderr.write(`${who}: ${(err as Error).message}${hint}\n`);
    return EXIT_USAGE;
  }
  stderr.write(`${who}: internal error (a bug, please report it): ${err instanceof Error ? err.stack : String(err)}\n`);
  return EXIT_FAILURE;
}

/** A usage error naming the option or argument at fault (exit 2). */
export function usageError(field: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(field, message);
}

/** A non-negative integer option; `undefined` stays undefined. */
export function intOption(name: string, v: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${name}`, `must be an integer in ${min}..${max}, got '${v}'`);
  }
  return n;
}

/**
 * The command's `main(argv)`: parse (strict), answer --help/--version
 * without doing any work, check positionals, run `handler` with a Context,
 * and map whatever it throws through reportError. The handler returns an
 * exit code (EXIT_OK, or EXIT_FAILURE when it found a failure).
 */
export function defineCommand<O extends OptionTable>(
  spec: CommandSpec<O>,
  handler: (ctx: Context<O>) => Promise<number>,
): CommandMain {
  const program = spec.program ?? XENPV;
  const main = async (argv: string[]): Promise<number> => {
    const table = allOptions(spec as CommandSpec<OptionTable>);
    let values: Record<string, unknown>;
    let positionals: string[];
    try {
      // parseArgs refuses keys present with undefined values: copy only what is set.
      const config = Object.fromEntries(Object.entries(table).map(([k, { help: _h, arg: _a, ...o }]) => [k, o]));
      ({ values, positionals } = parseArgs({ args: argv, options: config as never, strict: true, allowPositionals: true }));
    } catch (err) {
      return report(program, spec.name, err);
    }
    if (values.help) {
      process.stdout.write(helpText(spec as CommandSpec<OptionTable>) + '\n');
      return EXIT_OK;
    }
    if (values.version) {
      process.stdout.write(`xenpv ${version()}\n`);
      return EXIT_OK;
    }
    const { min, max } = spec.positionals ?? { min: 0, max: 0 };
    if (positionals.length < min || positionals.length > max) {
      const what = positionals.length > max ? `unexpected argument '${positionals[max]}'` : 'missing argument';
      return report(program, spec.name, usageError('arguments', `${what} (usage: ${invocation(program, spec.name)} ${spec.synopsis})`));
    }
    const out = createOutput(values.json === true, values.quiet === true);
    const controller = new AbortController();
    let caught: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (caught) process.exit(EXIT_SIGNAL[sig] ?? EXIT_FAILURE); // second signal: no more waiting
      caught = sig;
      controller.abort(new XenpvError('disconnected', `interrupted by ${sig}`));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      // A handler that returns after a signal (a daemon told to stop) chose its code.
      return await handler({ values: values as Values<O>, positionals, out, signal: controller.signal });
    } catch (err) {
      if (caught) {
        process.stderr.write(`${label(program, spec.name)}: interrupted by ${caught}, cleaned up\n`);
        return EXIT_SIGNAL[caught]!;
      }
      return report(program, spec.name, err);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  };
  const command = Object.assign(main, { spec: spec as CommandSpec<OptionTable> });
  DEFINED.push(command);
  return command;
}

/** A command's `main(argv)`, with the spec it was made from. */
export type CommandMain = ((argv: string[]) => Promise<number>) & { readonly spec: CommandSpec<OptionTable> };

const DEFINED: CommandMain[] = [];

/** Every command defined so far in this process (those of the modules loaded): what test/cli-help checks. */
export function definedCommands(): readonly CommandMain[] {
  return DEFINED;
}

export interface GroupSpec {
  /** As typed: `queue`. */
  readonly name: string;
  /** What the group is for, shown above its command list. */
  readonly description: string;
  /** Subcommands by the word that picks them, each made by defineCommand and named `<group> <word>`. */
  readonly commands: Record<string, CommandMain>;
  readonly epilogue?: string;
}

export function groupHelpText(group: GroupSpec): string {
  const words = Object.keys(group.commands);
  const rows = Object.entries(group.commands).map(([word, c]) => {
    const left = `  ${word} ${c.spec.synopsis.split('\n')[0]}`;
    const summary = c.spec.summary ?? c.spec.description.split('\n')[0]!;
    return left.length < 38 ? `${left.padEnd(38)} ${summary}` : `${left}\n${' '.repeat(39)}${summary}`;
  });
  return [`usage: xenpv ${group.name} <${words.join('|')}> [options] ...`, '', group.description, '', 'commands:', ...rows, '',
    `run 'xenpv ${group.name} <command> --help' for a command's options`, ...(group.epilogue ? ['', group.epilogue] : [])].join('\n');
}

/**
 * A command made of subcommands: `xenpv <group> <word> [options]` runs the
 * subcommand's main with the rest; `--help`/`-h` lists the subcommands,
 * `--version` prints the version, nothing (or an unknown word) is a usage
 * error (exit 2).
 */
export function defineGroup(group: GroupSpec): (argv: string[]) => Promise<number> {
  return async (argv) => {
    const [word, ...rest] = argv;
    if (word === '--help' || word === '-h') {
      process.stdout.write(groupHelpText(group) + '\n');
      return EXIT_OK;
    }
    if (word === '--version') {
      process.stdout.write(`xenpv ${version()}\n`);
      return EXIT_OK;
    }
    if (word === undefined) {
      process.stderr.write(groupHelpText(group) + '\n');
      return EXIT_USAGE;
    }
    const cmd = Object.hasOwn(group.commands, word) ? group.commands[word]! : undefined;
    if (!cmd) {
      const field = word.startsWith('-') ? 'option' : 'command';
      return reportError(group.name, usageError(field, `unknown '${word}' (commands: ${Object.keys(group.commands).join(', ')})`));
    }
    return cmd(rest);
  };
}
