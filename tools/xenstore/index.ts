/**
 * `xenpv xenstore ls|read|write|rm|watch`: Xen's xenstore-utils, on our
 * client, against xenstored's socket (--socket, default as Xen's tools:
 * $XENSTORED_PATH, then $XENSTORED_RUNDIR/socket, then
 * /var/run/xenstored/socket) or the kernel's /dev/xen/xenbus (--xenbus).
 * Output, quoting and exit codes follow xenstore-ls / xenstore-read (see
 * format.ts); `--json` gives the same data as JSON.
 */
import { InvalidArgumentError } from '../../src/errors.js';
import type { XsPerm } from '../../src/platform/types.js';
import type { XenstoreClient } from '../../src/xenstore/client.js';
import { isXenstoreError, XenstoreError } from '../../src/xenstore/errors.js';
import { connectXenstoreSocket, defaultSocketPath } from '../../src/xenstore/transport/socket.js';
import { connectXenbusDevice, XENBUS_DEVICE } from '../../src/xenstore/transport/xenbus.js';
import { bytesToString } from '../../src/xenstore/wire.js';
import { defineCommand, defineGroup, EXIT_OK, intOption, usageError, type OptionTable } from '../command.js';
import { lsLine, quoteValue, unquoteValue, type LsLine } from './format.js';

const CONNECT = {
  socket: { type: 'string', arg: 'PATH', help: "xenstored's unix socket (default $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket)" },
  xenbus: { type: 'boolean', help: `use ${XENBUS_DEVICE} (the kernel's xenbus device) instead of the socket` },
} as const satisfies OptionTable;

async function connect(values: { socket?: string; xenbus?: boolean }): Promise<XenstoreClient> {
  if (values.xenbus && values.socket !== undefined) throw usageError('--xenbus', 'use either --socket or --xenbus');
  return values.xenbus ? connectXenbusDevice() : connectXenstoreSocket(values.socket ?? defaultSocketPath());
}

/** Run `fn` on a connection that is closed afterwards, whatever happens (the process must not linger). */
async function withClient<T>(values: { socket?: string; xenbus?: boolean }, fn: (xs: XenstoreClient) => Promise<T>): Promise<T> {
  const xs = await connect(values);
  try {
    return await fn(xs);
  } finally {
    await xs.close();
  }
}

function checkPath(p: string): string {
  if (p === '') throw new InvalidArgumentError('path', 'empty xenstore path');
  return p;
}

/** Name the path in a xenstore error, as xenstore-read's "couldn't read path X" does. */
function naming<T>(what: string, path: string, p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    if (err instanceof XenstoreError) throw new XenstoreError(err.errno, `could not ${what} ${path}`, { cause: err });
    throw err;
  });
}

// ------------------------------------------------------------------ ls

const ls = defineCommand({
  name: 'xenstore ls',
  summary: 'the tree under path (default /)',
  synopsis: '[-f] [-p] [path]',
  description: `List the tree under path (default /), one node per line, as xenstore-ls:
indented names and quoted values, cut to 80 columns (a terminal's width - 2).`,
  reports: true,
  positionals: { min: 0, max: 1 },
  options: {
    ...CONNECT,
    full: { type: 'boolean', short: 'f', help: 'print full paths, never cut lines (xenstore-ls -f)' },
    perms: { type: 'boolean', short: 'p', help: 'show permissions (xenstore-ls -p)' },
  },
}, async ({ values, positionals, out }) => {
  const root = checkPath(positionals[0] ?? '/');
  const width = process.stdout.isTTY ? (process.stdout.columns ?? 82) - 2 : 80;
  const nodes: LsLine[] = [];
  await withClient(values, async (xs) => {
    const walk = async (path: string, depth: number): Promise<void> => {
      let names: string[];
      try {
        names = await xs.directory(path);
      } catch (err) {
        // A node that vanished while we walk is skipped, as xenstore-ls does.
        if (depth > 0 && isXenstoreError(err, 'ENOENT')) return;
        throw err instanceof XenstoreError ? new XenstoreError(err.errno, `could not list ${path}`, { cause: err }) : err;
      }
      for (const name of names) {
        const child = `${path}${path.endsWith('/') ? '' : '/'}${name}`;
        const value = await xs.readBytes(child).catch(() => undefined);
        const perms: XsPerm[] | undefined = values.perms ? await xs.getPermissions(child).catch(() => undefined) : undefined;
        nodes.push({ depth, name, path: child, value, perms });
        if (!out.json) out.data(lsLine(nodes[nodes.length - 1]!, { width, full: values.full === true, perms: values.perms === true }) + '\n');
        await walk(child, depth + 1);
      }
    };
    await walk(root, 0);
  });
  if (out.json) {
    out.result(nodes.map((n) => ({ path: n.path, value: n.value === undefined ? null : bytesToString(n.value), ...(n.perms ? { perms: n.perms } : {}) })), () => '');
  }
  return EXIT_OK;
});

// ---------------------------------------------------------------- read

const read = defineCommand({
  name: 'xenstore read',
  summary: 'values, quoted as xenstore-read does',
  synopsis: '[-p] [-R] key [...]',
  description: `Print the value of each key on its own line, quoted as xenstore-read does
(\\t \\n \\r \\\\ \\ooo \\xhh); several keys are read in one transaction.`,
  reports: true,
  positionals: { min: 1, max: Infinity },
  options: {
    ...CONNECT,
    prefix: { type: 'boolean', short: 'p', help: "print 'key: value' (xenstore-read -p)" },
    raw: { type: 'boolean', short: 'R', help: 'print the bytes as they are, no newline (xenstore-read -R)' },
  },
}, async ({ values, positionals, out }) => {
  const keys = positionals.map(checkPath);
  const got = await withClient(values, (xs) => {
    const readAll = (tx: number) => Promise.all(keys.map((k) => naming('read path', k, xs.readBytes(k, tx))));
    if (keys.length === 1) return readAll(0);
    // Several keys: one consistent snapshot, as xenstore-read takes (read-only, so ended without commit).
    return (async () => {
      const tx = await xs.transactionStart();
      try {
        return await readAll(tx);
      } finally {
        await xs.transactionEnd(tx, false).catch(() => undefined);
      }
    })();
  });
  if (out.json) {
    out.result(Object.fromEntries(keys.map((k, i) => [k, bytesToString(got[i]!)])), () => '');
    return EXIT_OK;
  }
  keys.forEach((k, i) => {
    const v = got[i]!;
    if (values.prefix) out.data(`${k}: `);
    out.data(values.raw ? v : `${quoteValue(v)}\n`);
  });
  return EXIT_OK;
});

// --------------------------------------------------------------- write

const write = defineCommand({
  name: 'xenstore write',
  summary: 'write values (escapes decoded unless -R)',
  synopsis: '[-R] key value [key value ...]',
  description: `Write each value to its key (creating missing parents), in one transaction
when there are several. Escapes (\\t \\n \\r \\\\ \\ooo \\xhh) are decoded, as
xenstore-write does, unless -R.`,
  positionals: { min: 2, max: Infinity },
  options: {
    ...CONNECT,
    raw: { type: 'boolean', short: 'R', help: 'write the value as given, no escapes (xenstore-write -R)' },
  },
}, async ({ values, positionals }) => {
  if (positionals.length % 2 !== 0) throw usageError('arguments', 'give key value pairs');
  const pairs: [string, Uint8Array][] = [];
  for (let i = 0; i < positionals.length; i += 2) {
    const v = positionals[i + 1]!;
    pairs.push([checkPath(positionals[i]!), values.raw ? new TextEncoder().encode(v) : unquoteValue(v)]);
  }
  await withClient(values, async (xs) => {
    const writeAll = async (ops: { write(p: string, v: Uint8Array): Promise<void> }) => {
      for (const [k, v] of pairs) await naming('write path', k, ops.write(k, v));
    };
    if (pairs.length > 1) await xs.transaction(writeAll);
    else await writeAll(xs);
  });
  return EXIT_OK;
});

// ------------------------------------------------------------------ rm

const rm = defineCommand({
  name: 'xenstore rm',
  summary: 'remove keys and their subtrees',
  synopsis: '[-t] key [...]',
  description: `Remove each key and everything under it, in one transaction. With -t, also
remove each parent left empty with an empty value (xenstore-rm -t).`,
  positionals: { min: 1, max: Infinity },
  options: {
    ...CONNECT,
    tidy: { type: 'boolean', short: 't', help: 'remove parents left empty (xenstore-rm -t)' },
  },
}, async ({ values, positionals }) => {
  const keys = positionals.map(checkPath);
  await withClient(values, (xs) => xs.transaction(async (ops) => {
    for (const key of keys) {
      let path = key;
      for (;;) {
        await naming('remove path', path, ops.rm(path));
        if (!values.tidy) break;
        const parent = path.slice(0, path.lastIndexOf('/'));
        if (parent === '') break;
        const v = await ops.tryRead(parent);
        if (v !== '' || (await ops.directory(parent).catch(() => ['?'])).length > 0) break;
        path = parent;
      }
    }
  }));
  return EXIT_OK;
});

// --------------------------------------------------------------- watch

const watch = defineCommand({
  name: 'xenstore watch',
  summary: 'print the path of each watch event',
  synopsis: '[-n NR] key [...]',
  description: `Watch each key and print the path of every event, one per line, until
SIGINT/SIGTERM (exit 0) or NR events. xenstored fires each watch once when
it is set, as with xenstore-watch.`,
  reports: true,
  positionals: { min: 1, max: Infinity },
  options: {
    ...CONNECT,
    number: { type: 'string', short: 'n', arg: 'NR', help: 'stop after NR events' },
  },
}, async ({ values, positionals, out, signal }) => {
  const keys = positionals.map(checkPath);
  const max = intOption('number', values.number, 1);
  await withClient(values, async (xs) => {
    const watches = await Promise.all(keys.map((k) => naming('watch', k, xs.watch(k, k))));
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const stop = (): void => resolve();
      signal.addEventListener('abort', stop, { once: true });
      for (const w of watches) {
        void (async () => {
          try {
            for await (const ev of w) {
              if (max !== undefined && seen >= max) break;
              seen++;
              out.data(out.json ? JSON.stringify({ path: ev.path, token: ev.token }) + '\n' : `${ev.path}\n`);
              if (max !== undefined && seen >= max) return resolve();
            }
          } catch (err) {
            reject(err);
          }
        })();
      }
    });
    for (const w of watches) await w.unwatch().catch(() => undefined);
  });
  return EXIT_OK;
});

export const main = defineGroup({
  name: 'xenstore',
  description: `Xen's xenstore-utils on xenpv's client. Each takes --socket PATH or --xenbus,
--help, and (ls, read, watch) --json.`,
  commands: { ls, read, write, rm, watch },
});
