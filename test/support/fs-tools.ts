/**
 * The independent side of the file-system tests: Debian's dosfstools,
 * mtools and e2fsprogs build images and read back what we wrote. Nothing
 * here uses src/fs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const INSTALL = 'apt-get install dosfstools mtools e2fsprogs (or bash tools/install-system-deps.sh)';

/** Throws (the test fails) naming the package when a tool is missing. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: ${INSTALL}`);
}

/** path → content; directories are implied by the paths. */
export type Tree = Record<string, Uint8Array>;

const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '0' };

/** A FAT image of `sizeKiB` made by mkfs.fat, with `tree` copied in by mcopy. */
export function makeFatImage(img: string, sizeKiB: number, bits: 12 | 16 | 32, tree: Tree, scratch: string): void {
  execFileSync('mkfs.fat', ['-C', '-F', String(bits), '-n', 'XENPV', img, String(sizeKiB)], { stdio: 'pipe' });
  const dirs = new Set<string>();
  for (const path of Object.keys(tree)) {
    for (let d = dirname(path); d !== '/'; d = dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) execFileSync('mmd', ['-i', img, `::${d}`], { env: MTOOLS_ENV, stdio: 'pipe' });
  for (const [path, data] of Object.entries(tree)) {
    const host = join(scratch, 'mcopy-src');
    writeFileSync(host, data);
    execFileSync('mcopy', ['-i', img, host, `::${path}`], { env: MTOOLS_ENV, stdio: 'pipe' });
  }
}

/** An ext4 image made by `mkfs.ext4 -d` from a host directory holding `tree`. */
export function makeExt4Image(img: string, sizeKiB: number, tree: Tree, scratch: string): void {
  const root = join(scratch, 'ext4-root');
  mkdirSync(root, { recursive: true });
  for (const [path, data] of Object.entries(tree)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data);
  }
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, img, `${sizeKiB}k`], { stdio: 'pipe' });
}

/** A file's bytes as mtools reads it. */
export function mcat(img: string, path: string): Buffer {
  return execFileSync('mcopy', ['-n', '-i', img, `::${path}`, '-'], { env: MTOOLS_ENV, maxBuffer: 1 << 28 });
}

/** A file's bytes as debugfs reads it. */
export function debugfsCat(img: string, path: string): Buffer {
  return execFileSync('debugfs', ['-R', `cat ${path}`, img], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

/** Names in a directory as debugfs lists them (without . and ..). */
export function debugfsLs(img: string, path: string): string[] {
  const out = execFileSync('debugfs', ['-R', `ls -p ${path}`, img], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  // -p: /inode/mode/uid/gid/name/size/
  return out
    .split('\n')
    .map((l) => l.split('/')[5])
    .filter((n): n is string => n !== undefined && n !== '' && n !== '.' && n !== '..')
    .sort();
}

/** Names in a FAT directory as mdir lists them (long names). */
export function mls(img: string, path: string): string[] {
  const out = execFileSync('mdir', ['-b', '-i', img, `::${path}`], { env: MTOOLS_ENV }).toString();
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/\/$/, '').split('/').pop()!)
    .filter((n) => n !== '.' && n !== '..')
    .sort();
}

/** The checker's verdict: { clean, output }. fsck.fat -n / e2fsck -fn change nothing. */
export function fsck(img: string, kind: 'fat' | 'ext4'): { clean: boolean; output: string } {
  const r = kind === 'fat' ? spawnSync('fsck.fat', ['-n', img]) : spawnSync('e2fsck', ['-fn', img]);
  return { clean: r.status === 0, output: `${r.stdout}${r.stderr}` };
}
