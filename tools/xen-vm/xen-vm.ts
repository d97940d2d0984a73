/**
 * The real-Xen lab: `npm run xen-vm -- <command>`.
 *
 *   build [--force]          build (or reuse) the image from Debian packages
 *   run [options] -- CMD...  boot, run CMD in dom0 (cwd = this checkout), power off,
 *                            exit with CMD's status
 *   shell [options]          boot to an interactive dom0 shell on this terminal
 *
 * Exit codes: the script's own status; 2 usage; 3 the lab itself failed
 * (image build, no boot, hung script, no status); 130/143 after SIGINT /
 * SIGTERM (QEMU killed). Options are parsed by tools/command.ts like every
 * xenpv command; everything after `--` is the script.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineCommand, intOption, usageError } from '../command.js';
import { ensureImage, manifest } from './image.js';
import { boot, type BootOptions } from './boot.js';

/** The lab failed (image build, no boot, hung script, no status): not a status of the command. */
export const EXIT_LAB = 3;

const toolDir = (() => {
  // Compiled to dist/tools/xen-vm: the shell and init files stay in tools/xen-vm.
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, '..', '..', '..', 'tools', 'xen-vm');
})();
const checkout = join(toolDir, '..', '..');

export const main = defineCommand({
  name: '',
  program: { name: 'xen-vm', invoke: 'npm run xen-vm --' },
  synopsis: '<build|run|shell> [options] [-- COMMAND...]',
  description: `The real-Xen lab: Xen 4.17 and a Linux dom0 under QEMU (tools/xen-vm/README.md).

  build                 build the lab image (cached under $XENPV_VM_CACHE,
                        default ~/.cache/xenpv/xen-vm; rebuilt when its inputs change)
  run -- COMMAND...     boot Xen + dom0, run COMMAND with /bin/sh in dom0 in this
                        checkout, power off; exit with COMMAND's status
  shell                 boot to an interactive dom0 shell (Ctrl-A X quits QEMU)`,
  positionals: { min: 1, max: Infinity },
  options: {
    force: { type: 'boolean', help: 'rebuild the image even if the cache holds it' },
    vcpus: { type: 'string', arg: 'N', default: '2', help: 'dom0 vCPUs (blkback offers one queue per vCPU)' },
    mem: { type: 'string', arg: 'MiB', default: '1536', help: 'dom0 memory, at least 768 (unpacking the 340 MB initramfs needs about twice its size)' },
    'boot-timeout': { type: 'string', arg: 'S', default: '300', help: 'seconds for dom0 to come up' },
    timeout: { type: 'string', arg: 'S', default: '2400', help: 'seconds COMMAND may run' },
    log: { type: 'string', arg: 'FILE', default: join(checkout, 'test', '.tmp', 'xen-vm', 'serial.log'), help: 'serial log' },
    quiet: { type: 'boolean', help: 'do not echo the console while it runs' },
  },
  epilogue: `Everything after -- is COMMAND, options included.
exit: COMMAND's status; 2 usage; 3 the lab failed (build, boot, hang, no status);
130/143 interrupted (SIGINT/SIGTERM; QEMU is killed)`,
}, async ({ values: v, positionals: [command, ...rest], signal }) => {
  if (command !== 'build' && command !== 'run' && command !== 'shell') throw usageError('command', `'${command}' is not build, run or shell`);
  if (command === 'run' && rest.length === 0) throw usageError('COMMAND', 'run needs a COMMAND after --');
  if (command !== 'run' && rest.length > 0) throw usageError('arguments', `unexpected arguments: ${rest.join(' ')}`);
  const opts = {
    vcpus: intOption('vcpus', v.vcpus, 1)!,
    dom0MemMiB: intOption('mem', v.mem, 768)!,
    bootTimeout: intOption('boot-timeout', v['boot-timeout'], 10)!,
    scriptTimeout: intOption('timeout', v.timeout, 1)!,
  };
  const log = (s: string) => console.error(s);
  // From here on a thrown error is the lab failing (exit 3), unless a signal stopped it (130/143).
  const lab = (e: unknown): number => {
    if (signal.aborted) throw signal.reason;
    log(`xen-vm: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_LAB;
  };
  let image;
  try {
    image = await ensureImage(toolDir, { force: v.force, log, signal });
  } catch (e) {
    return lab(e);
  }
  if (command === 'build') {
    console.log(`${image.dir}\n${manifest(image)}`);
    return 0;
  }
  let result;
  try {
    mkdirSync(dirname(v.log), { recursive: true });
    const bootOpts: BootOptions = {
      image, toolDir, checkout, mode: command, script: rest.join(' '), ...opts,
      logPath: v.log, echo: !v.quiet, signal,
    };
    result = await boot(bootOpts);
  } catch (e) {
    return lab(e);
  }
  if (signal.aborted) throw signal.reason;
  if (result.kind === 'exited') {
    log(`xen-vm: dom0 ready after ${result.bootSeconds.toFixed(1)} s; ${command} ended after ${result.totalSeconds.toFixed(1)} s with status ${result.status}`);
    return result.status;
  }
  log(`xen-vm: ${result.message} (serial log: ${v.log})`);
  log(tailOf(v.log, 40));
  return EXIT_LAB;
});

function tailOf(path: string, lines: number): string {
  try {
    return readFileSync(path, 'latin1').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no serial log)';
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // main maps every error to a code; a rejection here is a bug in this file.
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    console.error(e?.stack ?? String(e));
    process.exit(EXIT_LAB);
  });
}
