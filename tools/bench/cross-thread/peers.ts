/**
 * The C side of the cross-thread bench: null-backend and ring-front from
 * test/peers (built here with its Makefile, under the same flock the
 * tests' build-peers.ts takes), and a child process that prints one JSON
 * line of counters when it is done.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoError } from '../../../src/errors.js';
import { packageRoot } from '../../../src/util/compiled.js';

export const PEERS_DIR = join(packageRoot(fileURLToPath(import.meta.url)), 'test', 'peers');
export const PEERS_BIN = join(PEERS_DIR, 'build');

const HINT = 'apt-get install libxen-dev gcc make (or bash tools/install-system-deps.sh)';

/** make -C test/peers; fails with an install hint when a prerequisite is missing. */
export function buildCPeers(): void {
  if (!existsSync(join(PEERS_DIR, 'Makefile'))) {
    throw new IoError(`the cross-thread bench needs the C peers in ${PEERS_DIR} (a xenpv source checkout)`);
  }
  const missing: string[] = [];
  if (!existsSync('/usr/include/xen/io/blkif.h')) missing.push("Xen's public headers (libxen-dev)");
  for (const tool of ['gcc', 'make', 'flock']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { missing.push(tool); }
  }
  if (missing.length > 0) throw new IoError(`the cross-thread bench builds C peers and needs ${missing.join(', ')}: ${HINT}`);
  try {
    mkdirSync(PEERS_BIN, { recursive: true });
    // flock: test files build test/peers in parallel workers; one make at a time.
    execFileSync('flock', [join(PEERS_BIN, '.lock'), 'make', '-s', '-C', PEERS_DIR], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new IoError(`building test/peers failed (${HINT}):\n${err.stderr?.toString() ?? ''}${err.stdout?.toString() ?? err.message}`, { cause: e });
  }
}

export interface CProcess<T> {
  /** The parsed JSON line, once the process exited 0. */
  readonly done: Promise<T>;
  kill(): void;
}

/** Run test/peers/build/`name` with `args`; `done` rejects on a non-zero exit with its stderr. */
export function runCPeer<T>(name: string, args: string[]): CProcess<T> {
  const child = spawn(join(PEERS_BIN, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const done = new Promise<T>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => {
      if (code === 0) {
        try { resolve(JSON.parse(stdout) as T); } catch { reject(new IoError(`${name} printed no counters: ${stdout}`)); }
      } else {
        reject(new IoError(`${name} exited ${code ?? sig}: ${stderr.trim() || stdout.trim()}`));
      }
    });
  });
  return { done, kill: () => { child.kill('SIGKILL'); } };
}
