/**
 * mtools and dosfstools as the oracle for the FAT operations we write
 * ourselves (unlink, rename, rmdir, empty files). Nothing here uses src/fs.
 */
import { execFileSync, spawnSync } from 'node:child_process';

const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '0' };

/** Runs one mtools command (`mren`, `mdel`, `mrd`, `mmd`, ...) on `img`. */
export function mtool(tool: string, img: string, ...args: string[]): void {
  execFileSync(tool, ['-i', img, ...args], { env: MTOOLS_ENV, stdio: 'pipe' });
}

/** Every path of the volume as `mdir -/ -b` lists it (long names; directories end in '/'), sorted. */
export function mtree(img: string): string[] {
  const out = execFileSync('mdir', ['-/', '-b', '-i', img, '::/'], { env: MTOOLS_ENV }).toString();
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^::/, ''))
    .sort();
}

/** A file's bytes as `mtype` prints them (no text translation). */
export function mtype(img: string, path: string): Buffer {
  return execFileSync('mtype', ['-i', img, `::${path}`], { env: MTOOLS_ENV, maxBuffer: 1 << 28 });
}

/**
 * `fsck.fat -n` with nothing to say: exit 0 and no line besides its
 * version banner and the "N files, X/Y clusters" summary (a lost cluster,
 * a bad long name or a wrong free count each print a line).
 */
export function fsckFatClean(img: string): { clean: boolean; output: string } {
  const r = spawnSync('fsck.fat', ['-n', img]);
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const quiet = lines.every((l) => /^fsck\.fat \d/.test(l) || /: \d+ files, \d+\/\d+ clusters$/.test(l));
  return { clean: r.status === 0 && quiet, output };
}
