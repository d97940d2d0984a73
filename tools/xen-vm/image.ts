/**
 * The lab image: built by build-image.sh from Debian packages into a cache
 * folder keyed by everything that goes into it, reused while that key holds.
 *
 *   $XENPV_VM_CACHE (default ~/.cache/xenpv/xen-vm)/
 *     <key>/xen.img  vmlinux  dom0.cpio  manifest.txt  build.log
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

export interface LabImage {
  dir: string;
  xen: string;
  vmlinux: string;
  cpio: string;
}

/** Files of tools/xen-vm whose content decides what the image holds. */
const INPUTS = ['build-image.sh', 'packages.txt', 'init.sh', 'extract-vmlinux.mjs'];

export function cacheRoot(): string {
  return process.env.XENPV_VM_CACHE ?? join(homedir(), '.cache', 'xenpv', 'xen-vm');
}

/** The cache key: the build inputs plus the node binary copied into dom0. */
export function imageKey(toolDir: string): string {
  const h = createHash('sha256');
  for (const f of INPUTS) h.update(f).update(readFileSync(join(toolDir, f)));
  const node = statSync(process.execPath);
  h.update(`${process.execPath} ${process.version} ${node.size} ${node.mtimeMs}`);
  return h.digest('hex').slice(0, 16);
}

function imageIn(dir: string): LabImage {
  return { dir, xen: join(dir, 'xen.img'), vmlinux: join(dir, 'vmlinux'), cpio: join(dir, 'dom0.cpio') };
}

function complete(img: LabImage): boolean {
  return [img.xen, img.vmlinux, img.cpio, join(img.dir, 'manifest.txt')].every((f) => existsSync(f));
}

/**
 * The image for the current inputs, built first when missing (or when
 * `force`). Older images in the cache are removed once a new one is ready.
 */
export async function ensureImage(toolDir: string, opts: { force?: boolean; log?: (s: string) => void; signal?: AbortSignal } = {}): Promise<LabImage> {
  const root = cacheRoot();
  const key = imageKey(toolDir);
  const img = imageIn(join(root, key));
  if (!opts.force && complete(img)) return img;
  opts.log?.(`xen-vm: building the lab image into ${img.dir} (a few minutes, once per set of inputs)`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    // Aborted (SIGINT/SIGTERM): the build script is stopped with SIGTERM.
    const child = spawn('bash', [join(toolDir, 'build-image.sh'), img.dir], { stdio: ['ignore', 'inherit', 'inherit'], signal: opts.signal });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`build-image.sh failed (${signal ?? `exit ${code}`})`)));
  });
  if (!complete(img)) throw new Error(`build-image.sh finished but ${img.dir} is incomplete`);
  opts.log?.(`xen-vm: image built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (const old of readdirSync(root)) {
    if (old !== key) rmSync(join(root, old), { recursive: true, force: true });
  }
  return img;
}

export function manifest(img: LabImage): string {
  return readFileSync(join(img.dir, 'manifest.txt'), 'utf8');
}
