/**
 * `xenpv xenstored --socket PATH` as a user runs it: the compiled CLI
 * (npm test builds first), one line saying where it listens, served by
 * Xen's xenstore-read, stopped by SIGTERM.
 */
import { describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI_JS = join(ROOT, 'dist/tools/cli.js');

describe('xenpv xenstored', () => {
  it('listens, announces the socket, serves clients, and exits 0 on SIGTERM', async () => {
    if (!existsSync(CLI_JS)) throw new Error(`${CLI_JS} missing: run 'npm run build' first (npm test does)`);
    const sock = join(mkdtempSync(join(tmpdir(), 'xenpv-cli-')), 'socket');
    const child = spawn(process.execPath, [join(ROOT, 'bin/xenpv.js'), 'xenstored', '--socket', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const t0 = Date.now();
    while (!out.includes('\n')) {
      if (Date.now() - t0 > 15_000) { child.kill(); throw new Error(`no announcement: ${out}`); }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(out.trim()).toBe(`xenstored listening on ${sock}`);
    const env = { ...process.env, XENSTORED_PATH: sock };
    execFileSync('/usr/bin/xenstore-write', ['/cli/k', 'v'], { env });
    expect(execFileSync('/usr/bin/xenstore-read', ['/cli/k'], { env, encoding: 'utf8' })).toBe('v\n');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(sock)).toBe(false);
  });

  it('--help describes the command', () => {
    if (!existsSync(CLI_JS)) throw new Error(`${CLI_JS} missing: run 'npm run build' first (npm test does)`);
    const help = execFileSync(process.execPath, [join(ROOT, 'bin/xenpv.js'), 'xenstored', '--help'], { encoding: 'utf8' });
    expect(help).toContain('--socket PATH');
    expect(help).toContain('SIGTERM');
  });
});
