/**
 * Loop devices over image files, for serving a file through the kernel's
 * xen-blkback in dom0 (it serves block devices only): what /etc/xen/scripts/block
 * does for `xl block-attach` with a file, through util-linux's losetup.
 *
 *   attachLoop(file)  losetup --find --show [--read-only] FILE  -> /dev/loopN
 *   detach()          losetup --detach /dev/loopN
 *
 * Needs root and the `loop` module.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { XenpvError } from '../errors.js';

const run = promisify(execFile);

export interface LoopDevice {
  /** /dev/loopN */
  readonly path: string;
  readonly file: string;
  /** losetup --detach; idempotent. */
  detach(): Promise<void>;
}

async function losetup(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('losetup', args, { timeout: 30_000 });
    return stdout.trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new XenpvError('unsupported', 'losetup not found: install util-linux (apt-get install util-linux, or mount on older Debian)', { cause: err });
    }
    throw new XenpvError('io', `losetup ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/** Attach `file` to a free loop device. */
export async function attachLoop(file: string, opts: { readOnly?: boolean } = {}): Promise<LoopDevice> {
  const path = await losetup(['--find', '--show', ...(opts.readOnly ? ['--read-only'] : []), file]);
  if (!/^\/dev\/loop\d+$/.test(path)) throw new XenpvError('io', `losetup printed ${JSON.stringify(path)}, not a loop device`);
  let detached = false;
  return {
    path,
    file,
    async detach() {
      if (detached) return;
      await losetup(['--detach', path]);
      detached = true;
    },
  };
}

/** Loop devices currently backed by `file` (losetup --associated), for leak checks. */
export async function loopDevicesOf(file: string): Promise<string[]> {
  const out = await losetup(['--associated', file]);
  return out === '' ? [] : out.split('\n').map((l) => l.slice(0, l.indexOf(':')));
}
