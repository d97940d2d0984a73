/**
 * Host storage fixtures for the storage-rules tests: a small tmpfs (so a
 * file system can be filled), a loop device over a file, and st_blocks.
 * They need root (mount, losetup); without it they fail saying so.
 * Every fixture is also registered for `disposeHostStorage()` (call it in
 * afterEach): a test that fails half-way leaves no mount or loop behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}. ` +
        'These tests need root and util-linux (mount -t tmpfs, losetup): run them as root (CI does).',
    );
  }
}

const live: (() => void)[] = [];

/** `fn` once, however often called; registered for disposeHostStorage(). */
function once(fn: () => void): () => void {
  let done = false;
  const d = (): void => {
    if (done) return;
    done = true;
    fn();
  };
  live.push(d);
  return d;
}

/** Undo every fixture still set up, newest first (loops before the mounts they live on). */
export function disposeHostStorage(): void {
  const errors: unknown[] = [];
  for (const d of live.splice(0).reverse()) {
    try {
      d();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/** A tmpfs of `bytes` at a fresh directory; `dispose()` unmounts and removes it. */
export function mountTmpfs(bytes: number): { dir: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-tmpfs-'));
  run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  const dispose = once(() => {
    run('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, dispose };
}

/** A loop device over `file`; `dispose()` detaches it. */
export function attachLoop(file: string): { device: string; dispose(): void } {
  const device = run('losetup', ['-f', '--show', file]);
  return { device, dispose: once(() => void run('losetup', ['-d', device])) };
}

/** Bytes allocated to `path` (st_blocks × 512). */
export function allocatedBytes(path: string): number {
  return Number(statSync(path, { bigint: true }).blocks) * 512;
}

/** A new sparse file of `bytes` (no blocks allocated). */
export function sparse(path: string, bytes: number): void {
  writeFileSync(path, '');
  truncateSync(path, bytes);
}
