/**
 * `xenpv run`, `xenpv list`, `xenpv stop`: jobs and their instances
 * (src/jobs), on the shared command machinery (tools/command.ts). Three
 * rows of tools/cli.ts's COMMANDS point here. `run` exits with the job's
 * status (src/jobs/exit.ts), not only 0/1/2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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
import { defineCommand, EXIT_FAILURE, EXIT_OK, intOption, usageError } from './command.js';

// ------------------------------------------------------------------ run

const RUN_EXITS = `exit status:
  0 stopped on request or completed   4 a device failed under the job
  1 other failure                     5 a device could not be opened
  2 usage (bad options, bad module)   6 stopping or releasing failed
  3 crashed, restart policy gave up   7 the job child died and was not
                                        (or no more) respawned`;

export const runMain = defineCommand({
  name: 'run',
  synopsis: '<job module> [options]',
  description: `Open the job's declared devices through the registry, start it, restart it
on a crash as its restart policy says, and on SIGTERM, SIGINT or
'xenpv stop NAME' stop it, flush and disconnect its devices, and exit.

As root the job runs in a child process with a dropped user and group and
no capabilities; the master opens file: devices and passes descriptors,
serves xen: devices through a xenstore proxy and passed fds (--sim: on a
simulated hypervisor; else real Xen: the kernel's blkback serves each
--backing DEV=file:PATH), and respawns a child that dies as the job's
restart policy says.`,
  reports: true,
  positionals: { min: 1, max: 1 },
  options: {
    name: { type: 'string', arg: 'NAME', help: "instance name (default: the job's name, else the module's file name)" },
    sim: { type: 'boolean', help: 'serve xen: devices on a simulated hypervisor (blkback in this process)' },
    'sim-size': { type: 'string', arg: 'SIZE', help: 'size of each simulated disk (default 64MiB)' },
    backing: { type: 'string', multiple: true, arg: 'DEV=SPEC', help: 'back xen: device DEV with SPEC (--sim: any spec; real Xen: file:PATH)' },
    user: { type: 'string', arg: 'USER', help: 'user for the job child (default nobody; root only)' },
    group: { type: 'string', arg: 'GROUP', help: 'group for the job child (default nogroup; root only)' },
    'in-process': { type: 'boolean', help: 'run the job in this process, without dropping privileges' },
    'stop-timeout': { type: 'string', arg: 'MS', help: 'time allowed for stop(), flush and disconnect (default 10000)' },
  },
  epilogue: RUN_EXITS,
}, async ({ values, positionals, out, signal }) => {
  const modulePath = resolve(positionals[0]!);
  const isRoot = process.getuid?.() === 0;
  const inProcess = values['in-process'] === true || !isRoot;
  if (!isRoot && (values.user !== undefined || values.group !== undefined)) throw usageError('--user', '--user and --group need root (the master drops to them)');
  if (values['in-process'] && (values.user !== undefined || values.group !== undefined)) throw usageError('--in-process', 'runs without dropping privileges: no --user/--group');
  const stopTimeoutMs = intOption('stop-timeout', values['stop-timeout'], 1);
  const simSize = values['sim-size'] ?? '64MiB';
  parseSize(simSize, '--sim-size');
  const backings = backingMap(values.backing ?? []);
  const backing = (device: string): string => backings.get(device) ?? `memory:${simSize}`;

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
    if (err instanceof XenpvError && err.code === 'invalid-argument') throw err;
    process.stderr.write(`xenpv run: ${modulePath}: ${(err as Error).message}\n`);
    return err instanceof JobError && err.reason === 'child' ? JobExit.Failure : JobExit.Usage;
  }
  const name = values.name ?? job.name ?? basename(modulePath, extname(modulePath));
  if (!INSTANCE_NAME.test(name)) throw usageError('--name', `instance name ${JSON.stringify(name)} is not [A-Za-z0-9][A-Za-z0-9_.-]*`);
  const hasXen = Object.values(job.devices).some((s) => parseSpec(s).flavour === 'xen');
  if (hasXen && !values.sim) out.note('xenpv run: note: xen: devices without --sim open real Xen devices (/dev/xen, xenstored)');
  const dir = runtimeDir();
  const log = (line: string): void => { process.stderr.write(line + '\n'); };

  try {
    if (loaded === undefined) {
      const r = await runMaster({
        name, modulePath, job, uid: ids!.uid, gid: ids!.gid, runtimeDir: dir, stopTimeoutMs, log, signals: false, signal,
        sim: values.sim ? { backing } : undefined,
        xen: values.sim ? undefined : { backing: (d) => backings.get(d) },
      });
      report(out.json, {
        name, exit: r.exit, kind: r.reported?.kind ?? 'child-died', error: r.reported?.error ?? r.error?.message,
        restarts: r.restarts, respawns: r.respawns, child: { code: r.code, signal: r.signal },
      });
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
      const outcome = await runJob(loaded, { name, open, runtimeDir: dir, stopTimeoutMs, log, signals: false, signal });
      const exit = exitStatus(outcome);
      report(out.json, { name, exit, kind: outcome.kind, error: outcome.error?.message, restarts: outcome.restarts, stopErrors: outcome.stopErrors.map((e) => e.message) });
      return exit;
    } finally {
      await host?.stop();
    }
  } catch (err) {
    process.stderr.write(`xenpv run: ${(err as Error).message}\n`);
    if (err instanceof JobError && err.reason === 'open-failed') return JobExit.OpenFailed;
    return JobExit.Failure;
  }
});

function report(json: boolean, r: { name: string; exit: number; kind: string; error?: string; restarts: number; [k: string]: unknown }): void {
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  process.stderr.write(`xenpv run: ${r.name}: ${r.kind}${r.error ? ` (${r.error})` : ''}, exit ${r.exit}\n`);
}

/** `--backing DEV=SPEC` list to a map (a bad item is a usage error). */
function backingMap(list: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw usageError('--backing', `${JSON.stringify(item)} is not DEV=SPEC`);
    const spec = item.slice(eq + 1);
    parseSpec(spec);
    map.set(item.slice(0, eq), spec);
  }
  return map;
}

/** A user or group name (or number) to its id, from /etc/passwd or /etc/group. */
function lookupId(file: string, nameOrId: string, what: string): number {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === nameOrId && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  throw usageError(what === 'user' ? '--user' : '--group', `no ${what} named ${nameOrId} in ${file}`);
}

// ------------------------------------------------------------------ list

export const listMain = defineCommand({
  name: 'list',
  synopsis: '[--json]',
  description: `List running xenpv instances (jobs started with 'xenpv run') of this user,
from the control sockets in $XDG_RUNTIME_DIR/xenpv (else ~/.xenpv).
Sockets nobody answers on are removed.`,
  reports: true,
  options: {},
}, async ({ out }) => {
  const dir = runtimeDir();
  const { instances, cleaned, unresponsive } = await listInstances(dir);
  for (const n of cleaned) process.stderr.write(`xenpv list: removed stale socket ${socketPath(dir, n)}\n`);
  for (const n of unresponsive) process.stderr.write(`xenpv list: ${n} holds its socket but did not answer\n`);
  const now = Date.now();
  if (out.json) {
    process.stdout.write(JSON.stringify(instances.map((i) => ({ ...i, uptimeMs: now - i.startedAt }))) + '\n');
    return EXIT_OK;
  }
  out.result(instances, () => {
    if (instances.length === 0) return 'no running instances';
    const rows = [['NAME', 'PID', 'STATE', 'UPTIME', 'CHILD', 'DEVICES']];
    for (const i of instances) {
      rows.push([
        i.name, String(i.pid), i.state, uptime(now - i.startedAt),
        i.child ? `${i.child.pid} uid=${i.child.uid}` : '-',
        Object.entries(i.devices).map(([k, v]) => `${k}=${v}`).join(' '),
      ]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
  });
  return EXIT_OK;
});

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

// ------------------------------------------------------------------ stop

export const stopMain = defineCommand({
  name: 'stop',
  synopsis: 'NAME [--wait]',
  description: `Ask the running instance NAME to stop its job, flush and disconnect its
devices, and exit.`,
  positionals: { min: 1, max: 1 },
  options: {
    wait: { type: 'boolean', help: 'return only once the instance has exited (its socket is gone)' },
  },
  epilogue: 'exit status: 0 asked (and, with --wait, gone), 1 no such instance, 2 usage',
}, async ({ values, positionals, signal }) => {
  const name = positionals[0]!;
  const dir = runtimeDir();
  try {
    await stopInstance(dir, name);
  } catch (err) {
    // A name that cannot be an instance is a usage error; no such instance a failure.
    if (err instanceof JobError && err.reason === 'bad-module') throw usageError('NAME', err.message);
    throw err;
  }
  if (values.wait) {
    // The instance removes its socket as the last thing before exiting; no event tells us, so poll (bounded).
    const deadline = Date.now() + 60_000;
    while (existsSync(socketPath(dir, name))) {
      signal.throwIfAborted();
      if (Date.now() > deadline) { process.stderr.write(`xenpv stop: ${name} still running after 60 s\n`); return EXIT_FAILURE; }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return EXIT_OK;
});
