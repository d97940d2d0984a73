/**
 * The main job (`npm start` / `xenpv demo`) works as the README says: it
 * verifies everything it wrote, --json carries the documented fields in the
 * units it names, it never destroys a file it was not asked to, and Ctrl-C
 * leaves no image behind.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';

const noStack = /\n\s+at /;

describe('xenpv demo', () => {
  it('runs end to end from the CLI and reports a verified JSON summary in MB/s (10^6 bytes/s)', async () => {
    const r = await runCli(['demo', '--size', '16', '--random', '2000', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      verified: boolean; bytesWritten: number; bytesRead: number; writeMBps: number; readMBps: number;
      phases: { name: string; bytes: number; seconds: number; MBps: number }[];
    };
    expect(s.verified).toBe(true);
    // 16 MiB sequential + 2000 random 4 KiB blocks, each direction.
    expect(s.bytesWritten).toBe(16 * 1024 * 1024 + 2000 * 4096);
    expect(s.bytesRead).toBe(16 * 1024 * 1024 + 2000 * 4096);
    // The label says MB/s: 10^6 bytes per second (it was MiB/s labelled MB/s).
    for (const p of s.phases) expect(p.MBps).toBeCloseTo(p.bytes / 1e6 / p.seconds, 6);
    const writes = s.phases.filter((p) => p.name.includes('write'));
    expect(s.writeMBps).toBeCloseTo(s.bytesWritten / 1e6 / writes.reduce((n, p) => n + p.seconds, 0), 6);
    // stderr is not a terminal here: no progress lines.
    expect(r.stderr).toBe('');
  }, 150_000);

  it('prints the table with MB/s and MiB labels, and nothing with --quiet', async () => {
    const r = await runCli(['demo', '--size', '2', '--random', '50'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/MB\/s/);
    expect(r.stdout).toContain('2 MiB disk');
    const q = await runCli(['demo', '--size', '2', '--random', '50', '--quiet'], { timeoutMs: 60_000 });
    expect(q.code).toBe(0);
    expect(q.stdout + q.stderr).toBe('');
  }, 120_000);

  it('refuses bad options with usage and exit code 2', async () => {
    const r = await runCli(['demo', '--engine', 'fortran']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--engine: must be 'wasm' or 'js'");
    expect((await runCli(['demo', '--size', '0'])).code).toBe(2);
  });

  it('never replaces an existing --path file unless --force (a user file became 8 MiB of test pattern)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-demo-path-'));
    const file = join(dir, 'precious.txt');
    writeFileSync(file, 'my thesis');
    const r = await runCli(['demo', '--size', '1', '--random', '10', '--path', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file} exists and the demo would overwrite it: pass --force`);
    expect(readFileSync(file, 'utf8')).toBe('my thesis');
    const f = await runCli(['demo', '--size', '1', '--random', '10', '--path', file, '--force'], { timeoutMs: 60_000 });
    expect(f.code, f.stderr).toBe(0);
    expect(statSync(file).size).toBe(1 << 20);
  }, 90_000);

  it('creates a new --path image and keeps it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-demo-new-'));
    const file = join(dir, 'disk.img');
    const r = await runCli(['demo', '--size', '1', '--random', '10', '--path', file], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(file).size).toBe(1 << 20);
  }, 90_000);

  it('--path naming a directory or a missing folder is a clear usage error, not a Node stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-demo-dir-'));
    const d = await runCli(['demo', '--size', '1', '--path', dir]);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain(`${dir} is a directory: name a file`);
    expect(d.stderr).not.toMatch(noStack);
    const m = await runCli(['demo', '--size', '1', '--path', join(dir, 'no/such/folder/disk.img')]);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain(`folder ${join(dir, 'no/such/folder')} does not exist`);
    expect(m.stderr).not.toMatch(noStack);
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('removes its temporary image on %s and exits 128+signal', async (sig) => {
    const tmp = mkdtempSync(join(tmpdir(), 'xenpv-demo-int-'));
    mkdirSync(tmp, { recursive: true });
    const image = (): string | undefined => {
      for (const d of readdirSync(tmp)) if (existsSync(join(tmp, d, 'disk.img'))) return join(tmp, d, 'disk.img');
      return undefined;
    };
    let sawImage = false;
    let poll: NodeJS.Timeout | undefined;
    const r = await runCli(['demo', '--size', '512', '--random', '200000'], {
      env: { TMPDIR: tmp },
      timeoutMs: 120_000,
      onStart: (kill) => {
        // Interrupt once the image exists and I/O is under way (the backend has attached).
        poll = setInterval(() => {
          const img = image();
          if (img && statSync(img).size > 0) {
            sawImage = true;
            clearInterval(poll);
            setTimeout(() => kill(sig), 300);
          }
        }, 20);
      },
    });
    clearInterval(poll);
    expect(sawImage).toBe(true);
    expect(r.code, r.stderr).toBe(sig === 'SIGINT' ? 130 : 143);
    expect(r.stderr).toContain(`interrupted by ${sig}, cleaned up`);
    expect(readdirSync(tmp)).toEqual([]);
  }, 150_000);
});
