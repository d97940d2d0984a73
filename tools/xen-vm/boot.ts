/**
 * One boot of the lab: Xen 4.17 under QEMU (TCG), a Linux PV dom0 from the
 * image, the checkout shared over 9p at the host's own path, a control share
 * carrying dom0-init.sh, the script and back its exit status.
 *
 *   host                                   dom0
 *   ctl/  env, dom0-init.sh, script  ──9p──▶ /mnt/ctl   (status ◀── written back)
 *   checkout                         ──9p──▶ same absolute path, the cwd
 *   serial (Xen com1 + dom0 hvc0)    ◀──── console, saved to the log
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabImage } from './image.js';

export interface BootOptions {
  image: LabImage;
  toolDir: string;
  checkout: string;
  mode: 'run' | 'shell';
  /** Shell text run by /bin/sh in dom0 (mode 'run'). */
  script?: string;
  vcpus: number;
  dom0MemMiB: number;
  /** Seconds from QEMU start to dom0's "ready" line. */
  bootTimeout: number;
  /** Seconds the script may run after dom0 is ready. */
  scriptTimeout: number;
  logPath: string;
  /** Echo the console to stdout while it runs. */
  echo: boolean;
  /** Aborted (SIGINT/SIGTERM): QEMU is killed, the boot ends. */
  signal?: AbortSignal;
}

export type BootResult =
  | { kind: 'exited'; status: number; bootSeconds: number; totalSeconds: number }
  | { kind: 'no-boot' | 'hung' | 'no-status'; message: string; bootSeconds?: number; totalSeconds: number };

export const READY_MARK = 'xenpv-dom0: ready';

export function qemuBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).stdout.trim();
  if (!found) {
    throw new Error('qemu-system-x86_64 is missing: apt-get install -y qemu-system-x86 (or bash tools/install-system-deps.sh)');
  }
  return found;
}

export function qemuArgs(o: BootOptions, ctl: string): string[] {
  const xenArgs = `console=com1 com1=115200 dom0_mem=${o.dom0MemMiB}M,max:${o.dom0MemMiB}M dom0_max_vcpus=${o.vcpus} noreboot`;
  // Multiboot modules are comma-separated: no commas inside dom0's arguments.
  const dom0Args = 'console=hvc0 earlyprintk=xen';
  return [
    '-accel', 'tcg,thread=multi',
    // Plain -cpu max crashes dom0 in create_bounce_frame (#PF): no SMAP/SMEP.
    '-cpu', 'max,-smap,-smep',
    '-m', String(o.dom0MemMiB + 1024),
    '-smp', String(o.vcpus),
    '-nographic', '-no-reboot', '-nic', 'none',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
    '-kernel', o.image.xen,
    '-append', xenArgs,
    '-initrd', `${o.image.vmlinux} ${dom0Args},${o.image.cpio}`,
    '-virtfs', `local,path=${ctl},mount_tag=ctl,security_model=none,id=ctl`,
    '-virtfs', `local,path=${o.checkout},mount_tag=src,security_model=none,id=src`,
  ];
}

function writeControl(o: BootOptions): string {
  const ctl = mkdtempSync(join(tmpdir(), 'xenpv-vm-'));
  copyFileSync(join(o.toolDir, 'dom0-init.sh'), join(ctl, 'dom0-init.sh'));
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(join(ctl, 'env'), `XENPV_CWD=${q(o.checkout)}\nXENPV_MODE=${o.mode}\n`);
  writeFileSync(join(ctl, 'script'), `${o.script ?? ''}\n`);
  return ctl;
}

/** Boots once, runs the script, powers off; never leaves QEMU running. */
export async function boot(o: BootOptions): Promise<BootResult> {
  const qemu = qemuBinary();
  const ctl = writeControl(o);
  const log = createWriteStream(o.logPath);
  const started = Date.now();
  const secs = () => (Date.now() - started) / 1000;
  if (o.mode === 'shell') return interactive(qemu, qemuArgs(o, ctl), ctl, started, o.signal);
  const child = spawn(qemu, qemuArgs(o, ctl), { stdio: ['ignore', 'pipe', 'pipe'] });
  let readyAt: number | undefined;
  let tail = '';
  let failure: BootResult | undefined;

  const onData = (chunk: Buffer) => {
    log.write(chunk);
    if (o.echo) process.stdout.write(chunk);
    if (readyAt === undefined) {
      tail = (tail + chunk.toString('latin1')).slice(-4096);
      if (tail.includes(READY_MARK)) {
        readyAt = secs();
        clearTimeout(bootTimer);
        scriptTimer = setTimeout(() => kill('hung'), o.scriptTimeout * 1000);
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const kill = (kind: 'no-boot' | 'hung') => {
    failure = kind === 'no-boot'
      ? { kind, message: `dom0 did not boot within ${o.bootTimeout} s`, totalSeconds: secs() }
      : { kind, message: `the script did not finish within ${o.scriptTimeout} s; killed`, bootSeconds: readyAt, totalSeconds: secs() };
    child.kill('SIGKILL');
  };
  const bootTimer = setTimeout(() => kill('no-boot'), o.bootTimeout * 1000);
  let scriptTimer: NodeJS.Timeout | undefined;
  const stopOnSignal = () => child.kill('SIGKILL');
  o.signal?.addEventListener('abort', stopOnSignal, { once: true });

  try {
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', () => resolve());
    });
  } finally {
    clearTimeout(bootTimer);
    clearTimeout(scriptTimer);
    o.signal?.removeEventListener('abort', stopOnSignal);
    await new Promise((r) => log.end(r));
  }
  const statusFile = join(ctl, 'status');
  const status = existsSync(statusFile) ? Number.parseInt(readFileSync(statusFile, 'utf8').trim(), 10) : NaN;
  rmSync(ctl, { recursive: true, force: true });
  if (failure) return failure;
  if (readyAt === undefined) return { kind: 'no-boot', message: 'QEMU ended before dom0 was ready', totalSeconds: secs() };
  if (!Number.isInteger(status)) {
    return { kind: 'no-status', message: 'dom0 ended without reporting a status (crash or power loss)', bootSeconds: readyAt, totalSeconds: secs() };
  }
  return { kind: 'exited', status, bootSeconds: readyAt, totalSeconds: secs() };
}

/** The console on this terminal (QEMU's mux: Ctrl-A X quits), no timers. */
async function interactive(qemu: string, args: string[], ctl: string, started: number, signal?: AbortSignal): Promise<BootResult> {
  const child = spawn(qemu, args, { stdio: 'inherit', signal, killSignal: 'SIGKILL' });
  try {
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', () => resolve());
    });
  } finally {
    rmSync(ctl, { recursive: true, force: true });
  }
  return { kind: 'exited', status: 0, bootSeconds: 0, totalSeconds: (Date.now() - started) / 1000 };
}
