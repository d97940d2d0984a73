/**
 * Build the C peers for a test (make -C test/peers). Fails with an
 * install hint when gcc, make or Xen's headers are missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEERS_DIR = dirname(fileURLToPath(import.meta.url));
export const PEERS_BIN = join(PEERS_DIR, 'build');

export function buildPeers(): void {
  const missing: string[] = [];
  if (!existsSync('/usr/include/xen/io/blkif.h')) missing.push('libxen-dev (/usr/include/xen)');
  for (const tool of ['gcc', 'make', 'flock']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { missing.push(tool); }
  }
  if (missing.length > 0) {
    throw new Error(`C peers need ${missing.join(', ')}: run \`apt-get install libxen-dev gcc make\` (or bash tools/install-system-deps.sh)`);
  }
  try {
    // flock: test files build in parallel workers; one make at a time.
    mkdirSync(PEERS_BIN, { recursive: true });
    execFileSync('flock', [join(PEERS_BIN, '.lock'), 'make', '-s', '-C', PEERS_DIR], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer };
    throw new Error(`building test/peers failed (apt-get install libxen-dev gcc make):\n${err.stderr?.toString() ?? ''}${err.stdout?.toString() ?? ''}`);
  }
}
