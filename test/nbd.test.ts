/**
 * The NBD export checked by clients nobody here wrote: Debian's libnbd-bin
 * (nbdinfo, nbdcopy) and nbdsh (python3-libnbd), over memory:, file: and
 * xen: on the simulation. Malformed traffic the libnbd client cannot send
 * (unknown command, a client vanishing mid-write, a bad magic) comes from a
 * raw client written in this file from doc/proto.md.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import type { BlockDevice } from '../src/block/types.js';
import { Simulation } from '../src/sim/simulation.js';
import { ENV, nbdsh, RawNbdClient, requireNbdTools, run, serveNbd } from './support/nbd.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1 << 20;

let dir: string;
beforeAll(async () => {
  await requireNbdTools('nbdinfo', 'nbdcopy', 'nbdsh');
  dir = await mkdtemp(join(tmpdir(), 'xenpv-nbd-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let copyN = 0;
const serve = (device: BlockDevice, name = 'disk') => serveNbd(dir, device, name);

/** Copies a random image in with nbdcopy, back out, and compares the bytes; returns the image. */
async function roundTrip(uri: string, bytes: number): Promise<Buffer> {
  const src = join(dir, `src-${copyN}.bin`);
  const out = join(dir, `out-${copyN++}.bin`);
  const data = randomBytes(bytes);
  data.fill(0, bytes / 2, bytes / 2 + MiB); // a zero run, which nbdcopy may send as write-zeroes or trim
  await writeFile(src, data);
  await run('nbdcopy', ['--flush', src, uri], { env: ENV });
  await run('nbdcopy', [uri, out], { env: ENV });
  expect((await readFile(out)).equals(data)).toBe(true);
  return data;
}

describe('NBD export read and written by nbdcopy, byte for byte', () => {
  it('over memory:', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 8 * MiB });
    const { server, uri } = await serve(dev);
    try {
      const data = await roundTrip(uri, 8 * MiB);
      const back = new Uint8Array(8 * MiB);
      await dev.read(0n, [back]);
      expect(Buffer.from(back).equals(data)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('over file: (the backing file holds the bytes)', async () => {
    const path = join(dir, 'file.img');
    const dev = await FileBlockDevice.open(path, { create: { sizeBytes: 8 * MiB } });
    const { server, uri } = await serve(dev);
    try {
      const data = await roundTrip(uri, 8 * MiB);
      expect((await readFile(path)).equals(data)).toBe(true);
    } finally {
      await server.close();
      await dev.disconnect();
    }
  });

  it('over xen: on the simulation (NBD -> blkfront -> ring -> blkback -> image file)', async () => {
    const sim = await Simulation.start();
    const path = join(dir, 'xen.img');
    try {
      const disk = await sim.createDisk({ sizeBytes: 8 * MiB, path });
      const dev = await sim.attach(disk);
      const { server, uri } = await serve(dev);
      try {
        const data = await roundTrip(uri, 8 * MiB);
        await dev.flush();
        expect((await readFile(path)).equals(data)).toBe(true);
      } finally {
        await server.close();
        await dev.disconnect();
      }
    } finally {
      await sim.stop();
    }
  });
});

describe('NBD handshake as nbdinfo sees it', () => {
  it('advertises size, flags, block sizes and lists the export', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 4 * MiB, sectorSize: 4096 });
    const { server, uri, path } = await serve(dev, 'mem');
    try {
      const info = JSON.parse((await run('nbdinfo', ['--json', uri], { env: ENV })).stdout);
      const ex = info.exports[0];
      expect(info.protocol).toBe('newstyle-fixed');
      expect(ex['export-name']).toBe('mem');
      expect(ex['export-size']).toBe(4 * MiB);
      expect(ex['is_read_only']).toBe(false);
      expect(ex['can_flush']).toBe(true);
      expect(ex['can_fua']).toBe(true);
      expect(ex['can_trim']).toBe(true);
      expect(ex['can_zero']).toBe(true);
      expect(ex['block_size_minimum']).toBe(4096);
      expect(ex['block_size_maximum']).toBe(1 << 25);
      // The default export (empty name) is the first one; LIST names it.
      expect((await run('nbdinfo', ['--size', `nbd+unix:///?socket=${path}`], { env: ENV })).stdout.trim()).toBe(String(4 * MiB));
      const list = JSON.parse((await run('nbdinfo', ['--json', '--list', `nbd+unix:///?socket=${path}`], { env: ENV })).stdout);
      expect(list.exports.map((e: { 'export-name': string }) => e['export-name'])).toEqual(['mem']);
      // An unknown export name is refused (NBD_REP_ERR_UNKNOWN), and the server serves on.
      await expect(run('nbdinfo', [`nbd+unix:///nope?socket=${path}`], { env: ENV })).rejects.toThrow();
      expect((await run('nbdinfo', ['--size', uri], { env: ENV })).stdout.trim()).toBe(String(4 * MiB));
    } finally {
      await server.close();
    }
  });
});

const EPERM = 1;
const EINVAL = 22;
const ENOSPC = 28;

describe('NBD bad requests get the error the spec names, and the export serves on', () => {
  it('answers out-of-range, misaligned and bad-flag requests with EINVAL/ENOSPC, losing nothing', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1 * MiB });
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        "h.pwrite(b'\\xab' * 4096, 8192, nbd.CMD_FLAG_FUA)",
        'size = h.get_size()',
        "r['read_beyond'] = err(lambda: h.pread(4096, size - 512))",
        "r['read_offset_past_end'] = err(lambda: h.pread(512, size + 4096))",
        "r['write_beyond'] = err(lambda: h.pwrite(b'x' * 4096, size - 512))",
        "r['trim_beyond'] = err(lambda: h.trim(4096, size - 512))",
        "r['zero_beyond'] = err(lambda: h.zero(4096, size - 512))",
        "r['read_misaligned'] = err(lambda: h.pread(512, 1))",
        "r['write_misaligned'] = err(lambda: h.pwrite(b'y' * 100, 512))",
        "r['read_with_fua'] = err(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA))",
        "r['intact'] = h.pread(4096, 8192) == b'\\xab' * 4096",
        "r['untouched_tail'] = h.pread(4096, size - 4096) == bytes(4096)",
        'h.flush()',
        'h.trim(4096, 8192)',
        "r['trimmed'] = h.pread(4096, 8192) == bytes(4096)",
        "h.pwrite(b'\\xcd' * 8192, 0)",
        'h.zero(4096, 4096)',
        "r['zeroed'] = h.pread(8192, 0) == b'\\xcd' * 4096 + bytes(4096)",
      ].join('\n'));
      expect(r).toEqual({
        read_beyond: EINVAL, read_offset_past_end: EINVAL, write_beyond: ENOSPC, trim_beyond: EINVAL, zero_beyond: ENOSPC,
        read_misaligned: EINVAL, write_misaligned: EINVAL, read_with_fua: EINVAL,
        intact: true, untouched_tail: true, trimmed: true, zeroed: true,
      });
    } finally {
      await server.close();
    }
  });

  it('refuses writes, trims and zeroes on a read-only device with EPERM', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1 * MiB, readOnly: true });
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        "r['ro'] = h.is_read_only()",
        "r['write'] = err(lambda: h.pwrite(b'x' * 512, 0))",
        "r['trim'] = err(lambda: h.trim(512, 0))",
        "r['zero'] = err(lambda: h.zero(512, 0))",
        "r['read'] = err(lambda: h.pread(512, 0))",
      ].join('\n'));
      expect(r).toEqual({ ro: true, write: EPERM, trim: EPERM, zero: EPERM, read: 0 });
    } finally {
      await server.close();
    }
  });
});

describe('NBD export against a raw client', () => {
  it('answers an unknown command with EINVAL and the same cookie, then serves the next request', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1 * MiB });
    const { server, path } = await serve(dev);
    try {
      const c = await RawNbdClient.go(path);
      c.sock.write(c.header(99, 0x1122334455667788n, 0n, 512));
      expect(await c.reply()).toEqual([EINVAL, 0x1122334455667788n]);
      c.sock.write(c.header(0, 7n, 0n, 512)); // NBD_CMD_READ
      expect(await c.reply()).toEqual([0, 7n]);
      expect((await c.need(512)).equals(Buffer.alloc(512))).toBe(true);
      c.sock.write(c.header(2, 8n, 0n, 0)); // NBD_CMD_DISC: the server closes
      await c.closed;
    } finally {
      await server.close();
    }
  });

  it('survives a client that vanishes mid-write and one that sends a bad magic: others keep their data', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1 * MiB });
    const { server, path, uri } = await serve(dev);
    try {
      const pattern = Buffer.alloc(4096, 0x5a);
      const good = await RawNbdClient.go(path);
      good.sock.write(Buffer.concat([good.header(1, 1n, 0n, 4096, 1), pattern])); // write + FUA
      expect(await good.reply()).toEqual([0, 1n]);

      const vanishing = await RawNbdClient.go(path);
      vanishing.sock.write(Buffer.concat([vanishing.header(1, 2n, 0n, 65536), Buffer.alloc(1000, 0xee)]));
      vanishing.sock.destroy(); // gone with 64 KiB promised and 1000 bytes sent

      const garbled = await RawNbdClient.go(path);
      garbled.sock.write(garbled.header(0, 3n, 0n, 512, 0, 0xdeadbeef));
      await garbled.closed; // a frame the server cannot trust ends that connection only

      // The half-written request was never applied; the first client's data is whole.
      const { stdout } = await run('nbdsh', ['-u', uri, '-c', "import sys; sys.stdout.write(h.pread(4096, 0).hex())"], { env: ENV });
      expect(stdout).toBe(pattern.toString('hex'));
      good.sock.write(good.header(0, 4n, 0n, 4096));
      expect(await good.reply()).toEqual([0, 4n]);
      expect((await good.need(4096)).equals(pattern)).toBe(true);
      good.sock.destroy();
      await good.closed;
      // Every connection is forgotten once its client is gone: nothing leaks.
      for (let i = 0; i < 100 && server.connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(server.connections).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('xenpv export (command line)', () => {
  it('serves a file on a 127.0.0.1 port until SIGTERM, then exits 0', async () => {
    const img = join(dir, 'cli.img');
    await writeFile(img, Buffer.alloc(2 * MiB, 0x42));
    const child = spawn(process.execPath, [join(ROOT, 'bin/xenpv.js'), 'export', `file:${img}`, '--nbd', '0', '--name', 'cli'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => {
          out += c;
          const m = /(nbd:\/\/127\.0\.0\.1:\d+\/cli)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`export exited with ${code}`)));
      });
      expect((await run('nbdinfo', ['--size', url], { env: ENV })).stdout.trim()).toBe(String(2 * MiB));
      const { stdout } = await run('nbdsh', ['-u', url, '-c', "import sys; sys.stdout.write(h.pread(512, 4096).hex())"], { env: ENV });
      expect(stdout).toBe('42'.repeat(512));
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
  });

  it('exits 2 with usage when --nbd is missing', async () => {
    const err = await run(process.execPath, [join(ROOT, 'bin/xenpv.js'), 'export', 'memory:1MiB']).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('usage: xenpv export');
  });

  it('exits 2 (usage) for a bad device spec or an unknown option, 1 for a device that cannot be opened', async () => {
    const xenpv = (...args: string[]) => run(process.execPath, [join(ROOT, 'bin/xenpv.js'), 'export', ...args]).catch((e) => e);
    const spec = await xenpv('nonsense', '--nbd', join(dir, 'x.sock'));
    expect(spec.code).toBe(2);
    expect(spec.stderr).toContain("run 'xenpv export --help' for usage");
    expect(spec.stderr).not.toContain('    at '); // a message, not a stack
    const opt = await xenpv('memory:1MiB', '--nbd', '0', '--bogus');
    expect(opt.code).toBe(2);
    const missing = await xenpv(`file:${join(dir, 'no-such.img')}`, '--nbd', join(dir, 'y.sock'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^xenpv export: /);
  });

  it('--help prints the options and exits 0', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/xenpv.js'), 'export', '--help']);
    expect(stdout).toContain('usage: xenpv export <device> --nbd');
    for (const flag of ['--nbd WHERE', '--name NAME', '--read-only', '--verbose', '--version']) expect(stdout).toContain(flag);
  });
});
