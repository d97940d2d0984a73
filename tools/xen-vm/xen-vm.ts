/**
 * The real-Xen lab: `npm run xen-vm -- <command>`.
 *
 *   build [--force]          build (or reuse) the image from Debian packages
 *   run [options] -- CMD...  boot, run CMD in dom0 (cwd = this checkout), power off,
 *                            exit with CMD's status
 *   shell [options]          boot to an interactive dom0 shell on this terminal
 *
 * Exit codes: the script's own status; 2 usage; 3 the lab itself failed
 * (image build, no boot, hung script, no status).
 */
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureImage, manifest } from './image.js';
import { boot, type BootOptions } from './boot.js';
import { readFileSync } from 'node:fs';

const HELP = `usage: npm run xen-vm -- <build|run|shell> [options] [-- COMMAND...]

  build                 build the lab image (cached under $XENPV_VM_CACHE,
                        default ~/.cache/xenpv/xen-vm; rebuilt when its inputs change)
  run -- COMMAND...     boot Xen + dom0, run COMMAND with /bin/sh in dom0 in this
                        checkout, power off; exit with COMMAND's status
  shell                 boot to an interactive dom0 shell (Ctrl-A X quits QEMU)

options:
  --force               rebuild the image even if the cache holds it (build)
  --vcpus N             dom0 vCPUs (default 2: blkback offers one queue per vCPU)
  --mem MiB             dom0 memory (default 1536; unpacking the 340 MB initramfs
                        needs about twice its size)
  --boot-timeout S      seconds for dom0 to come up (default 300)
  --timeout S           seconds COMMAND may run (default 2400)
  --log FILE            serial log (default test/.tmp/xen-vm/serial.log)
  --quiet               do not echo the console while it runs
  -h, --help            this help

exit: COMMAND's status; 2 usage; 3 the lab failed (build, boot, hang, no status)`;

const toolDir = (() => {
  // Compiled to dist/tools/xen-vm: the shell and init files stay in tools/xen-vm.
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, '..', '..', '..', 'tools', 'xen-vm');
})();
const checkout = join(toolDir, '..', '..');

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        force: { type: 'boolean' },
        vcpus: { type: 'string', default: '2' },
        mem: { type: 'string', default: '1536' },
        'boot-timeout': { type: 'string', default: '300' },
        timeout: { type: 'string', default: '2400' },
        log: { type: 'string', default: join(checkout, 'test', '.tmp', 'xen-vm', 'serial.log') },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    console.error(`xen-vm: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help) { console.log(HELP); return 0; }
  const num = (name: string, s: string, min: number) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${s}'`);
    return n;
  };
  try {
    if (command !== 'build' && command !== 'run' && command !== 'shell') throw new UsageError(`unknown command '${command ?? ''}'`);
    if (command === 'run' && rest.length === 0) throw new UsageError('run needs a COMMAND after --');
    if (command !== 'run' && rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
    const opts = {
      vcpus: num('vcpus', v.vcpus!, 1),
      dom0MemMiB: num('mem', v.mem!, 768),
      bootTimeout: num('boot-timeout', v['boot-timeout']!, 10),
      scriptTimeout: num('timeout', v.timeout!, 1),
    };
    const log = (s: string) => console.error(s);
    let image;
    try {
      image = await ensureImage(toolDir, { force: v.force, log });
    } catch (e) {
      console.error(`xen-vm: ${(e as Error).message}`);
      return 3;
    }
    if (command === 'build') {
      console.log(`${image.dir}\n${manifest(image)}`);
      return 0;
    }
    mkdirSync(dirname(v.log!), { recursive: true });
    const bootOpts: BootOptions = {
      image, toolDir, checkout, mode: command, script: rest.join(' '), ...opts,
      logPath: v.log!, echo: !v.quiet,
    };
    const result = await boot(bootOpts);
    if (result.kind === 'exited') {
      log(`xen-vm: dom0 ready after ${result.bootSeconds.toFixed(1)} s; ${command} ended after ${result.totalSeconds.toFixed(1)} s with status ${result.status}`);
      return result.status;
    }
    log(`xen-vm: ${result.message} (serial log: ${v.log})`);
    log(tailOf(v.log!, 40));
    return 3;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`xen-vm: ${e.message}\n\n${HELP}`);
      return 2;
    }
    throw e;
  }
}

class UsageError extends Error {}

function tailOf(path: string, lines: number): string {
  try {
    return readFileSync(path, 'latin1').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no serial log)';
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    console.error(e?.stack ?? String(e));
    process.exit(3);
  });
}
