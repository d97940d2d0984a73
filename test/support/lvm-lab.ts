/**
 * Test support: Debian's LVM2 tools as the oracle of src/lvm. A lab is a
 * temporary directory of sparse images, each attached to a loop device, and
 * an LVM configuration that sees only those loop devices (LVM_SYSTEM_DIR
 * points into the lab, so the host's /etc/lvm and devices file are not
 * used). The host has no device-mapper: commands that would touch it get
 * --driverloaded n, and nothing is ever activated.
 *
 * close() removes every VG the lab created, detaches its loop devices and
 * deletes its files; call it in afterAll/afterEach so a failing test
 * leaves nothing behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Loop {
  readonly image: string;
  readonly dev: string;
}

/** Fails (never skips) with how to get what the oracle needs. */
export function requireLvmTools(): void {
  const lvm = spawnSync('lvm', ['version'], { encoding: 'utf8' });
  if (lvm.status !== 0) throw new Error('the LVM oracle needs Debian\'s lvm2 tools: apt-get install -y lvm2 (tools/install-system-deps.sh)');
  if (process.getuid?.() !== 0) throw new Error('the LVM oracle needs root, to attach loop devices (losetup); run the tests as root');
  const lo = spawnSync('losetup', ['--version'], { encoding: 'utf8' });
  if (lo.status !== 0) throw new Error('the LVM oracle needs losetup (util-linux) and loop devices (modprobe loop)');
}

export class LvmLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'xenpv-lvm-'));
  readonly loops: Loop[] = [];
  readonly #vgs = new Set<string>();

  constructor() {
    requireLvmTools();
    writeFileSync(join(this.dir, 'lvm.conf'), '');
  }

  /** A new sparse image of `mib` MiB on a fresh loop device (of `sectorSize`-byte logical sectors). */
  attach(mib: number, sectorSize = 512): Loop {
    const image = join(this.dir, `pv${this.loops.length}.img`);
    writeFileSync(image, '');
    truncateSync(image, mib * 1024 * 1024);
    const dev = execFileSync('losetup', ['-f', '--show', '-b', String(sectorSize), image], { encoding: 'utf8' }).trim();
    const loop = { image, dev };
    this.loops.push(loop);
    return loop;
  }

  #config(): string {
    const accept = this.loops.map((l) => `"a|^${l.dev}$|"`).join(', ');
    return [
      `devices { filter = [ ${accept}, "r|.*|" ] global_filter = [ ${accept}, "r|.*|" ] obtain_device_list_from_udev = 0 use_devicesfile = 0 }`,
      'backup { backup = 0 archive = 0 }',
      'activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }',
      `global { locking_dir = "${this.dir}" }`,
    ].join(' ');
  }

  /** Runs `lvm <command> …`; throws with LVM2's stderr if it fails. Returns stdout. */
  run(command: string, ...args: string[]): string {
    if (command === 'vgcreate') this.#vgs.add(args.find((a) => !a.startsWith('-') && !a.startsWith('/'))!);
    const r = this.tryRun(command, ...args);
    if (r.status !== 0) throw new Error(`lvm ${command} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
    return r.stdout;
  }

  /** Like run() but returns the status and output instead of throwing. */
  tryRun(command: string, ...args: string[]): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('lvm', [command, '--config', this.#config(), ...args], {
      encoding: 'utf8',
      env: { ...process.env, LVM_SYSTEM_DIR: this.dir, LVM_SUPPRESS_FD_WARNINGS: '1' },
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Rows of a JSON report (`lvs`, `pvs`, `vgs`), e.g. report('lvs', 'lv', '-o', 'lv_name'). */
  report(command: 'lvs' | 'pvs' | 'vgs', kind: 'lv' | 'pv' | 'vg' | 'seg', ...args: string[]): Array<Record<string, string>> {
    const extra = command === 'lvs' ? ['--driverloaded', 'n'] : [];
    const out = this.run(command, ...extra, '--reportformat', 'json', '--units', 'b', '--nosuffix', ...args);
    const parsed = JSON.parse(out) as { report: Array<Record<string, Array<Record<string, string>>>> };
    return parsed.report[0]![kind]!;
  }

  /** Tell close() about a VG this lab's PVs hold (one made by our library is found by the tools anyway). */
  track(vg: string): void {
    this.#vgs.add(vg);
  }

  close(): void {
    for (const vg of this.#vgs) this.tryRun('vgremove', '-f', '--driverloaded', 'n', vg);
    for (const l of this.loops) spawnSync('losetup', ['-d', l.dev]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
