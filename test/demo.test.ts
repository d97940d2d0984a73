/**
 * The main job (`npm start` / `xenpv demo`) works as the README says: it
 * verifies everything it wrote, and --json carries the documented fields.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('xenpv demo', () => {
  it('runs end to end from the CLI and reports a verified JSON summary', () => {
    if (!existsSync('dist/tools/cli.js')) throw new Error('dist/ is missing: run `npm run build` (npm test builds first)');
    const r = spawnSync(process.execPath, ['bin/xenpv.js', 'demo', '--size', '16', '--random', '2000', '--json'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(s.verified).toBe(true);
    // 16 MiB sequential + 2000 random 4 KiB blocks, each direction.
    expect(s.bytesWritten).toBe(16 * 1024 * 1024 + 2000 * 4096);
    expect(s.bytesRead).toBe(16 * 1024 * 1024 + 2000 * 4096);
    expect(s.writeMBps).toBeGreaterThan(0);
    expect(s.readMBps).toBeGreaterThan(0);
    expect(r.stderr).toContain('verify backing file');
  });

  it('refuses bad options with usage and exit code 2', () => {
    const r = spawnSync(process.execPath, ['bin/xenpv.js', 'demo', '--engine', 'fortran'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--engine must be 'wasm' or 'js'");
  });
});
