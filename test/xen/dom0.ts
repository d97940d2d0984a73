/**
 * Shared by the dom0 tests (test/xen): they run inside the real-Xen lab's
 * dom0 (tools/xen-vm, `npm run test:xen`), as root, against the kernel's own
 * drivers. Outside it they FAIL, saying why.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect } from 'vitest';

const run = promisify(execFile);

/**
 * Blkfront timeouts for the lab: under TCG the first attach of a boot (cold
 * Wasm, first blkback probe) takes longer than the 15 s default.
 */
export const TCG_TIMEOUTS = { connectTimeoutMs: 120_000, disconnectTimeoutMs: 30_000 } as const;

/** Throws unless this is the lab's dom0 with the devices the tests use. */
export function requireDom0(devices: string[] = ['evtchn', 'gntalloc', 'gntdev', 'xenbus']): void {
  if (process.env['XENPV_DOM0'] !== '1') {
    throw new Error('test/xen runs only inside a Xen dom0: run `npm run test:xen` (boots the real-Xen lab, tools/xen-vm)');
  }
  for (const d of devices) {
    const p = `/dev/xen/${d}`;
    if (!existsSync(p)) throw new Error(`${p} is missing: modprobe xen-${d === 'xenbus' ? 'privcmd and mount xenfs' : d} (the lab's dom0 init does it)`);
  }
  if (process.getuid?.() !== 0) throw new Error('test/xen needs root (the Xen devices are root-only)');
}

/** Run a program; its stdout. A missing program fails with how to get it. */
export async function sh(cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: opts.timeout ?? 120_000, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed in dom0: add its Debian package to tools/xen-vm/packages.txt`);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

export function shSync(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether a module is loaded (/proc/modules, names with underscores). */
export function moduleLoaded(name: string): boolean {
  const n = name.replace(/-/g, '_');
  return readFileSync('/proc/modules', 'utf8').split('\n').some((l) => l.startsWith(`${n} `));
}

export async function modprobe(name: string): Promise<void> {
  await sh('modprobe', [name]);
}

export async function rmmod(name: string): Promise<void> {
  if (moduleLoaded(name)) await sh('modprobe', ['-r', name]);
}

/**
 * gntalloc grants at most `limit` pages per process (module parameter, 1024 by
 * default): a multi-queue, multi-page, persistent-grant frontend needs more.
 */
export function raiseGntallocLimit(pages = 65536): void {
  const p = '/sys/module/xen_gntalloc/parameters/limit';
  if (existsSync(p) && Number(readFileSync(p, 'utf8')) < pages) writeFileSync(p, String(pages));
}

/** The kernel log so far (dmesg), to compare against after a test. */
export async function kernelLog(): Promise<string[]> {
  return (await sh('dmesg', [])).split('\n');
}

const TROUBLE = /\bBUG\b|WARNING:|Oops|general protection|Call Trace|kernel panic|refcount_t:|use-after-free/i;

/** Lines the kernel logged since `before` (a kernelLog() result). */
export async function kernelLogSince(before: string[]): Promise<string[]> {
  const now = await kernelLog();
  const last = before.filter((l) => l !== '').at(-1);
  const at = last === undefined ? 0 : now.lastIndexOf(last) + 1;
  return now.slice(at).filter((l) => l !== '');
}

/** Asserts the kernel logged no BUG/WARNING/Oops since `before`; returns the new lines. */
export async function expectKernelClean(before: string[]): Promise<string[]> {
  const fresh = await kernelLogSince(before);
  expect(fresh.filter((l) => TROUBLE.test(l)), fresh.join('\n')).toEqual([]);
  return fresh;
}

/** Poll `f` until it returns a value other than undefined (bounded). */
export async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Ports bound through /dev/xen/evtchn, system-wide: xen-evtchn names each
 * such interrupt "evtchn:<comm>" in /proc/interrupts.
 */
export function userEvtchnIrqs(): number {
  return readFileSync('/proc/interrupts', 'utf8').split('\n').filter((l) => /\sevtchn:\S/.test(l)).length;
}

/** Pages of /dev/xen/gntalloc and /dev/xen/gntdev still mapped into this process (/proc/self/maps). */
export function grantMappings(): { gntalloc: number; gntdev: number } {
  const out = { gntalloc: 0, gntdev: 0 };
  for (const l of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) .*\/dev\/xen\/(gntalloc|gntdev)/.exec(l);
    if (m) out[m[3] as 'gntalloc' | 'gntdev'] += (parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) / 4096;
  }
  return out;
}

export const OXENSTORED = '/usr/lib/xen-4.17/bin/oxenstored';

export interface PrivateXenstored { socket: string; stop(): Promise<void> }

/**
 * A second xenstored (oxenstored) beside dom0's own cxenstored, without
 * disturbing it: `--no-domain-init` (it neither takes over dom0's ring nor
 * binds VIRQ_DOM_EXC), in a private mount namespace whose
 * /var/run/xenstored is a fresh tmpfs; its socket is reached through
 * /proc/<pid>/root. Replacing dom0's xenstored instead would lose every
 * watch the kernel's xenbus holds.
 */
export async function startPrivateXenstored(binary = OXENSTORED): Promise<PrivateXenstored> {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: the lab image needs xen-utils-4.17 (it ships oxenstored)`);
  const { spawn } = await import('node:child_process');
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
    `mount -t tmpfs tmpfs /var/run/xenstored && exec ${binary} --no-domain-init --no-fork --no-access-log --pid-file /tmp/xenpv-oxenstored.pid`],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code; });
  const socket = `/proc/${child.pid}/root/var/run/xenstored/socket`;
  const end = Date.now() + 60_000;
  // Until the exec, /proc/PID/root still shows dom0's own xenstored socket
  // (the private tmpfs is mounted just before): wait for oxenstored itself.
  const execed = () => { try { return readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'oxenstored'; } catch { return false; } };
  while (!execed() || !existsSync(socket)) {
    if (exited !== undefined) throw new Error(`${binary} exited (${exited}) before creating its socket:\n${output}`);
    if (Date.now() > end) { child.kill('SIGKILL'); throw new Error(`${binary} made no socket within 60 s:\n${output}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    socket,
    stop: async () => {
      if (exited !== undefined) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
}
