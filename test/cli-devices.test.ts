/**
 * `xenpv attach` and `xenpv dd` on every flavour the CLI can reach:
 * memory:, file: (and plain paths), and xen: through the registry's xen
 * opener on a simulated hypervisor (--sim). Copies are checked byte for byte
 * against the files themselves, and dd's block arithmetic against GNU dd on
 * the same input.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';

const MiB = 1 << 20;
const scratch = (): string => mkdtempSync(join(tmpdir(), 'xenpv-dd-'));

describe('xenpv attach', () => {
  it('prints a memory device as JSON with the size it was asked for', async () => {
    const r = await runCli(['attach', 'memory:64MiB', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(info.sizeBytes).toBe(String(64 * MiB));
    expect(info.sectorSize).toBe(512);
    expect(info.sizeSectors).toBe(String((64 * MiB) / 512));
    expect(info.readWrite).toBe(true);
  });

  it('opens xen:xvda through the xen flavour on a simulated hypervisor, with blkfront stats', async () => {
    const r = await runCli(['attach', 'xen:xvda', '--sim', 'memory:8MiB', '--json'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { sizeBytes: string; readWrite: boolean; stats: { state: string } };
    expect(info.sizeBytes).toBe(String(8 * MiB));
    expect(info.stats.state).toBe('connected');
  });

  it('names what is wrong: an unknown flavour is usage (2), a missing file or no Xen is failure (1)', async () => {
    const bad = await runCli(['attach', 'bogus:1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('flavour "bogus" is not registered');
    const missing = await runCli(['attach', '/nonexistent/disk.img']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('/nonexistent/disk.img');
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    const xen = await runCli(['attach', 'xen:xvda']);
    expect(xen.code).toBe(1);
    expect(xen.stderr).toContain('/dev/xen');
  });
});

describe('xenpv dd', () => {
  it('copies a file to a new file byte for byte (plain paths, if=/of=)', async () => {
    const d = scratch();
    const data = randomBytes(3 * MiB + 4096);
    writeFileSync(join(d, 'src'), data);
    const r = await runCli(['dd', `if=${join(d, 'src')}`, `of=${join(d, 'dst')}`, 'bs=64K', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(join(d, 'dst')), data)).toBe(0);
    const res = JSON.parse(r.stdout) as { bytes: number; fullBlocks: number; partialBlocks: number };
    expect(res).toMatchObject({ bytes: data.length, fullBlocks: 48, partialBlocks: 1 });
  });

  it('places blocks exactly as GNU dd does for bs, skip, seek and count (--from/--to spelling)', async () => {
    const d = scratch();
    const src = randomBytes(MiB);
    writeFileSync(join(d, 'src'), src);
    const base = randomBytes(MiB);
    writeFileSync(join(d, 'ours'), base);
    writeFileSync(join(d, 'gnu'), base);
    execFileSync('dd', [`if=${join(d, 'src')}`, `of=${join(d, 'gnu')}`, 'bs=4K', 'skip=3', 'seek=7', 'count=50', 'conv=notrunc', 'status=none']);
    const r = await runCli(['dd', '--from', join(d, 'src'), '--to', `file:${join(d, 'ours')}`, '--bs', '4K', '--skip', '3', '--seek', '7', '--count', '50', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
    expect(Buffer.compare(readFileSync(join(d, 'ours')), readFileSync(join(d, 'gnu')))).toBe(0);
  });

  it('copies memory: to file: (a new file of the copied size, all zeros)', async () => {
    const d = scratch();
    const r = await runCli(['dd', 'if=memory:2MiB', `of=file:${join(d, 'z.img')}`, 'bs=1M']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('2+0 records out');
    expect(Buffer.compare(readFileSync(join(d, 'z.img')), Buffer.alloc(2 * MiB))).toBe(0);
  });

  it('writes through blkfront to a simulated backend (file -> xen:xvda) and reads back through it (xen:xvda -> file)', async () => {
    const d = scratch();
    const data = randomBytes(4 * MiB);
    writeFileSync(join(d, 'src'), data);
    writeFileSync(join(d, 'backing.img'), Buffer.alloc(4 * MiB));
    const w = await runCli(['dd', `if=${join(d, 'src')}`, 'of=xen:xvda', '--sim', join(d, 'backing.img'), 'bs=256K'], { timeoutMs: 60_000 });
    expect(w.code, w.stderr).toBe(0);
    // blkback in the backend domain wrote the backing file: it is the source, byte for byte.
    expect(Buffer.compare(readFileSync(join(d, 'backing.img')), data)).toBe(0);
    const r = await runCli(['dd', 'if=xen:xvda', `of=${join(d, 'back')}`, '--sim', join(d, 'backing.img'), 'bs=1M', 'skip=1', 'count=2'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(join(d, 'back')), data.subarray(MiB, 3 * MiB))).toBe(0);
  }, 120_000);

  it('refuses what it cannot do before copying: bad bs, unknown key, an output too small, skip past the end', async () => {
    const d = scratch();
    writeFileSync(join(d, 'small'), Buffer.alloc(4096));
    expect((await runCli(['dd', 'if=memory:1MiB', `of=${join(d, 'x')}`, 'bs=100'])).code).toBe(2);
    expect((await runCli(['dd', 'if=memory:1MiB', `of=${join(d, 'x')}`, 'bz=4K'])).code).toBe(2);
    expect((await runCli(['dd', 'if=memory:1MiB'])).code).toBe(2);
    const small = await runCli(['dd', 'if=memory:1MiB', `of=${join(d, 'small')}`]);
    expect(small.code).toBe(1);
    expect(small.stderr).toContain('is never grown');
    expect(readFileSync(join(d, 'small')).length).toBe(4096);
    const past = await runCli(['dd', 'if=memory:1MiB', `of=${join(d, 'y')}`, 'bs=1M', 'skip=2']);
    expect(past.code).toBe(1);
    expect(past.stderr).toContain('past the end');
  });
});
