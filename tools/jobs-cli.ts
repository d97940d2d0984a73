/**
 * `xenpv run`, `xenpv list`, `xenpv stop`: jobs and their instances
 * (src/jobs). Three rows of tools/cli.ts's COMMANDS point here.
 */
import { readFileSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openBlockDevice, parseSpec, parseSize } from '../src/block/registry.js';
import '../src/blkfront/flavour.js';
import { parseVdev } from '../src/block/vdev.js';
import { XenpvError } from '../src/errors.js';
import { JobError } from '../src/jobs/errors.js';
import { JobExit, exitStatus } from '../src/jobs/exit.js';
import { listInstances, runtimeDir, stopInstance, socketPath } from '../src/jobs/instances.js';
import { INSTANCE_NAME, jobFromModule, type Job } from '../src/jobs/job.js';
import { describeJob, runMaster, type JobDeclaration } from '../src/jobs/master.js';
import { runJob } from '../src/jobs/run.js';
import type { DeviceOpener } from '../src/jobs/runner.js';
import { BACKEND_DOMID, SimHost } from '../src/jobs/sim-host.js';

// ------------------------------------------------------------------ run

const RUN_HELP = `usage: xenpv run <job module> [options]

Open the job's declared devices through the registry, start it, restart it
on a crash as its restart policy says, and on SIGTERM, SIGINT or
'xenpv stop NAME' stop it, flush and disconnect its devices, and exit.

As root the job runs in a child process with a dropped user and group and
no capabilities; the master opens file: devices and passes descriptors,
and serves xen: devices (--sim) through a xenstore proxy and passed fds.

options:
  --name NAME          instance name (default: the job's name, else the module's file name)
  --sim                serve xen: devices on a simulated hypervisor (blkback in this process)
  --sim-size SIZE      size of each simulated disk (default 64MiB)
  --backing DEV=SPEC   back the simulated xen: device DEV with SPEC (file:/path, memory:1GiB)
  --user USER          user for the job child (default nobody; root only)
  --group GROUP        group for the job child (default nogroup; root only)
  --in-process         run the job in this process, without dropping privileges
  --stop-timeout MS    time allowed for stop(), flush and disconnect (default 10000)
  --json               print the outcome as JSON on stdout
  -h, --help           show this help

exit status:
  0 stopped on request or completed   3 crashed, restart policy gave up
  1 other failure                     4 a device failed under the job
  2 usage (bad options, bad module)   5 a device could not be opened
  6 stopping or releasing failed      7 the job child died (killed)`;

export async function runMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string' }, sim: { type: 'boolean' }, 'sim-size': { type: 'string' },
        backing: { type: 'string', multiple: true }, user: { type: 'string' }, group: { type: 'string' },
        'in-process': { type: 'boolean' }, 'stop-timeout': { type: 'string' }, json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    console.error(`xenpv run: ${(err as Error).message}\n\n${RUN_HELP}`);
    return JobExit.Usage;
  }
  const { values, positionals } = parsed;
  if (values.help) { console.log(RUN_HELP); return JobExit.Ok; }
  const usage = (msg: string): number => { console.error(`xenpv run: ${msg}\n\n${RUN_HELP}`); return JobExit.Usage; };
  if (positionals.length !== 1) return usage('expected exactly one job module');
  const modulePath = resolve(positionals[0]!);
  const isRoot = process.getuid?.() === 0;
  const inProcess = values['in-process'] === true || !isRoot;
  if (!isRoot && (values.user !== undefined || values.group !== undefined)) return usage('--user and --group need root (the master drops to them)');
  if (values['in-process'] && (values.user !== undefined || values.group !== undefined)) return usage('--in-process runs without dropping privileges: no --user/--group');
  let stopTimeoutMs: number | undefined;
  if (values['stop-timeout'] !== undefined) {
    stopTimeoutMs = Number(values['stop-timeout']);
    if (!Number.isSafeInteger(stopTimeoutMs) || stopTimeoutMs <= 0) return usage('--stop-timeout must be a positive integer (ms)');
  }
  let backing: (device: string) => string;
  try {
    backing = backingOf(values.backing ?? [], values['sim-size'] ?? '64MiB');
  } catch (err) {
    return usage((err as Error).message);
  }

  // As master, the module is read by an unprivileged child: none of its code runs as root here.
  let ids: { uid: number; gid: number } | undefined;
  let job: JobDeclaration;
  let loaded: Job | undefined;
  try {
    if (!inProcess) {
      ids = { uid: lookupId('/etc/passwd', values.user ?? 'nobody', 'user'), gid: lookupId('/etc/group', values.group ?? 'nogroup', 'group') };
      job = await describeJob(modulePath, ids.uid, ids.gid);
    } else {
      job = loaded = jobFromModule(await import(pathToFileURL(modulePath).href), modulePath);
    }
  } catch (err) {
    console.error(`xenpv run: ${modulePath}: ${(err as Error).message}`);
    return err instanceof JobError && err.reason === 'child' ? JobExit.Failure : JobExit.Usage;
  }
  const name = values.name ?? job.name ?? basename(modulePath, extname(modulePath));
  if (!INSTANCE_NAME.test(name)) return usage(`instance name ${JSON.stringify(name)} is not [A-Za-z0-9][A-Za-z0-9_.-]*`);
  const hasXen = Object.values(job.devices).some((s) => parseSpec(s).flavour === 'xen');
  if (hasXen && !values.sim) {
    console.error('xenpv run: note: xen: devices without --sim open real Xen devices (/dev/xen, xenstored)');
  }
  const dir = runtimeDir();
  const log = (line: string): void => console.error(line);

  try {
    if (loaded === undefined) {
      const r = await runMaster({
        name, modulePath, job, uid: ids!.uid, gid: ids!.gid, runtimeDir: dir, stopTimeoutMs, log,
        sim: values.sim ? { backing } : undefined,
      });
      report(values.json === true, { name, exit: r.exit, kind: r.reported?.kind ?? 'child-died', error: r.reported?.error, restarts: r.reported?.restarts ?? 0, child: { code: r.code, signal: r.signal } });
      return r.exit;
    }
    let host: SimHost | undefined;
    const open: DeviceOpener = async (devName, spec, options) => {
      if (!values.sim || parseSpec(spec).flavour !== 'xen') return openBlockDevice(spec, options);
      host ??= SimHost.start();
      const devid = parseVdev(parseSpec(spec).target, 'spec');
      await host.serve(0, devid, await openBlockDevice(backing(devName)));
      return openBlockDevice(spec, { ...options, platform: host.dom0, backendDomid: BACKEND_DOMID });
    };
    try {
      const outcome = await runJob(loaded, { name, open, runtimeDir: dir, stopTimeoutMs, log });
      const exit = exitStatus(outcome);
      report(values.json === true, { name, exit, kind: outcome.kind, error: outcome.error?.message, restarts: outcome.restarts, stopErrors: outcome.stopErrors.map((e) => e.message) });
      return exit;
    } finally {
      await host?.stop();
    }
  } catch (err) {
    console.error(`xenpv run: ${(err as Error).message}`);
    if (err instanceof JobError && err.reason === 'open-failed') return JobExit.OpenFailed;
    if (err instanceof JobError && err.reason === 'name-in-use') return JobExit.Failure;
    return JobExit.Failure;
  }
}

function report(json: boolean, r: { name: string; exit: number; kind: string; error?: string; restarts: number; [k: string]: unknown }): void {
  if (json) console.log(JSON.stringify(r));
  console.error(`xenpv run: ${r.name}: ${r.kind}${r.error ? ` (${r.error})` : ''}, exit ${r.exit}`);
}

/** `--backing DEV=SPEC` list to a lookup; devices without one get memory:<size>. */
function backingOf(list: string[], size: string): (device: string) => string {
  parseSize(size, '--sim-size');
  const map = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new XenpvError('invalid-argument', `--backing ${JSON.stringify(item)} is not DEV=SPEC`);
    const spec = item.slice(eq + 1);
    parseSpec(spec);
    map.set(item.slice(0, eq), spec);
  }
  return (device) => map.get(device) ?? `memory:${size}`;
}

/** A user or group name (or number) to its id, from /etc/passwd or /etc/group. */
function lookupId(file: string, nameOrId: string, what: string): number {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === nameOrId && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  throw new XenpvError('invalid-argument', `no ${what} named ${nameOrId} in ${file}`);
}

// ------------------------------------------------------------------ list

const LIST_HELP = `usage: xenpv list [--json]

List running xenpv instances (jobs started with 'xenpv run') of this user,
from the control sockets in $XDG_RUNTIME_DIR/xenpv (else ~/.xenpv).
Sockets nobody answers on are removed.

options:
  --json       print a JSON array
  -h, --help   show this help`;

export async function listMain(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    console.error(`xenpv list: ${(err as Error).message}\n\n${LIST_HELP}`);
    return 2;
  }
  if (values.help) { console.log(LIST_HELP); return 0; }
  const dir = runtimeDir();
  const { instances, cleaned, unresponsive } = await listInstances(dir);
  for (const n of cleaned) console.error(`xenpv list: removed stale socket ${socketPath(dir, n)}`);
  for (const n of unresponsive) console.error(`xenpv list: ${n} holds its socket but did not answer`);
  const now = Date.now();
  if (values.json) {
    console.log(JSON.stringify(instances.map((i) => ({ ...i, uptimeMs: now - i.startedAt }))));
    return 0;
  }
  if (instances.length === 0) { console.log('no running instances'); return 0; }
  const rows = [['NAME', 'PID', 'STATE', 'UPTIME', 'CHILD', 'DEVICES']];
  for (const i of instances) {
    rows.push([
      i.name, String(i.pid), i.state, uptime(now - i.startedAt),
      i.child ? `${i.child.pid} uid=${i.child.uid}` : '-',
      Object.entries(i.devices).map(([k, v]) => `${k}=${v}`).join(' '),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
  return 0;
}

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

// ------------------------------------------------------------------ stop

const STOP_HELP = `usage: xenpv stop NAME [--wait]

Ask the running instance NAME to stop its job, flush and disconnect its
devices, and exit.

options:
  --wait       return only once the instance has exited (its socket is gone)
  -h, --help   show this help

exit status: 0 asked (and, with --wait, gone), 1 no such instance, 2 usage`;

export async function stopMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { wait: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  } catch (err) {
    console.error(`xenpv stop: ${(err as Error).message}\n\n${STOP_HELP}`);
    return 2;
  }
  if (parsed.values.help) { console.log(STOP_HELP); return 0; }
  if (parsed.positionals.length !== 1) { console.error(`xenpv stop: expected one instance name\n\n${STOP_HELP}`); return 2; }
  const name = parsed.positionals[0]!;
  const dir = runtimeDir();
  try {
    await stopInstance(dir, name);
  } catch (err) {
    console.error(`xenpv stop: ${(err as Error).message}`);
    return err instanceof JobError && err.reason === 'bad-module' ? 2 : 1;
  }
  if (parsed.values.wait) {
    // The instance removes its socket as the last thing before exiting.
    const { existsSync } = await import('node:fs');
    const deadline = Date.now() + 60_000;
    while (existsSync(socketPath(dir, name))) {
      if (Date.now() > deadline) { console.error(`xenpv stop: ${name} still running after 60 s`); return 1; }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return 0;
}
