/**
 * Storage rules of the `file` flavour (README "Storage rules"), against the
 * real host: a real EIO from fdatasync (a loop device over a full tmpfs),
 * st_blocks for hole punching, a second process holding an OFD lock.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, realpathSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { XenpvError } from '../src/errors.js';
import { allocatedBytes, attachLoop, disposeHostStorage, mountTmpfs, sparse } from './support/host-storage.js';

const MiB = 1 << 20;
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xenpv-storage-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => disposeHostStorage());
let seq = 0;
const fresh = (): string => join(dir, `img-${seq++}`);

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(XenpvError);
    return { code: (err as XenpvError).code, message: (err as Error).message };
  }
  throw new Error('expected a rejection');
}

describe('file flavour: a failed flush is never forgotten', () => {
  it('after fdatasync fails with a real EIO (loop over a full tmpfs), every later call fails with the same io error', async () => {
    const fs = mountTmpfs(4 * MiB);
    sparse(join(fs.dir, 'img'), 16 * MiB);
    const loop = attachLoop(join(fs.dir, 'img'));
    const dev = await FileBlockDevice.open(loop.device);
    try {
      const data = new Uint8Array(MiB).fill(0x5a);
      // 8 MiB into the page cache of a device whose backing store holds 4 MiB.
      for (let i = 0n; i < 8n; i++) await dev.write(i * 2048n, [data]);
      const first = await codeOf(dev.flush());
      expect(first.code).toBe('io');
      expect(first.message).toMatch(/fdatasync .*EIO/);
      // Before the fix the second and third flush resolved.
      expect(await codeOf(dev.flush())).toEqual(first);
      expect(await codeOf(dev.flush())).toEqual(first);
      expect(await codeOf(dev.read(0n, [new Uint8Array(512)]))).toEqual(first);
      expect(await codeOf(dev.write(0n, [new Uint8Array(512)]))).toEqual(first);
      expect(dev.state).toBe('failed');
    } finally {
      await dev.disconnect();
      loop.dispose();
      fs.dispose();
    }
    expect(dev.state).toBe('disconnected');
  });

  it('flushes run one at a time: a flush queued behind a failing one fails too', async () => {
    const fs = mountTmpfs(2 * MiB);
    sparse(join(fs.dir, 'img'), 8 * MiB);
    const loop = attachLoop(join(fs.dir, 'img'));
    const dev = await FileBlockDevice.open(loop.device);
    try {
      const data = new Uint8Array(MiB).fill(1);
      for (let i = 0n; i < 4n; i++) await dev.write(i * 2048n, [data]);
      const results = await Promise.allSettled([dev.flush(), dev.flush(), dev.flush()]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    } finally {
      await dev.disconnect();
      loop.dispose();
      fs.dispose();
    }
  });
});

describe('file flavour: discard gives space back', () => {
  it('punches holes: a sparse image\'s allocation goes down after discarding a written MiB plus 32 MiB of holes', async () => {
    const path = fresh();
    sparse(path, 64 * MiB);
    const dev = await FileBlockDevice.open(path);
    try {
      expect(dev.info().discard?.method).toBe('punch-hole');
      await dev.write(0n, [new Uint8Array(MiB).fill(7)]);
      await dev.flush();
      const before = allocatedBytes(path);
      expect(before).toBeGreaterThanOrEqual(MiB);
      await dev.discard(0n, (33n * BigInt(MiB)) / 512n);
      // Before the fix: 1 MiB -> 33 MiB (zeros written over holes).
      expect(allocatedBytes(path)).toBeLessThan(before);
      expect(allocatedBytes(path)).toBeLessThan(64 * 1024);
      const back = new Uint8Array(MiB).fill(0xff);
      await dev.read(0n, [back]);
      expect(back.every((b) => b === 0)).toBe(true);
    } finally {
      await dev.disconnect();
    }
  });

  it('discarding holes on a full file system succeeds (no ENOSPC)', async () => {
    const fs = mountTmpfs(4 * MiB);
    const path = join(fs.dir, 'img');
    sparse(path, 16 * MiB);
    const dev = await FileBlockDevice.open(path);
    try {
      // Fill the file system to the last byte with another file.
      const fd = openSync(join(fs.dir, 'filler'), 'w');
      const chunk = new Uint8Array(64 * 1024);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('ENOSPC');
      } finally {
        closeSync(fd);
      }
      await dev.discard(0n, (8n * BigInt(MiB)) / 512n);
    } finally {
      await dev.disconnect();
      fs.dispose();
    }
  });

  it('on a block device (loop), discard frees the backing file\'s blocks and reads back zeros', async () => {
    const backing = fresh();
    sparse(backing, 32 * MiB);
    const loop = attachLoop(backing);
    const dev = await FileBlockDevice.open(loop.device);
    try {
      expect(dev.info().sizeSectors).toBe((32n * BigInt(MiB)) / 512n); // BLKGETSIZE64
      await dev.write(0n, [new Uint8Array(4 * MiB).fill(3)]);
      await dev.flush();
      const before = allocatedBytes(backing);
      expect(before).toBeGreaterThanOrEqual(4 * MiB);
      await dev.discard(0n, (4n * BigInt(MiB)) / 512n);
      expect(dev.info().discard?.method).toBe('punch-hole');
      expect(allocatedBytes(backing)).toBeLessThan(before / 2);
      const back = new Uint8Array(MiB).fill(0xff);
      await dev.read(0n, [back]);
      expect(back.every((b) => b === 0)).toBe(true);
    } finally {
      await dev.disconnect();
      loop.dispose();
    }
  });
});

/** Python holding an OFD lock on `path` until its stdin closes: an independent second process. */
function pythonHoldingLock(path: string, exclusive: boolean): Promise<{ release(): Promise<void> }> {
  const script = [
    'import fcntl, os, struct, sys',
    `fd = os.open(${JSON.stringify(path)}, os.O_RDWR if ${exclusive ? 'True' : 'False'} else os.O_RDONLY)`,
    // struct flock on x86_64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
    `fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', ${exclusive ? 'fcntl.F_WRLCK' : 'fcntl.F_RDLCK'}, 0, 0, 0, 0))`,
    'print("locked", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python3 exited (${code}) before taking the lock`)));
    child.stdout.once('data', () =>
      resolve({
        release: () =>
          new Promise((done) => {
            child.removeAllListeners('exit');
            child.once('exit', () => done());
            child.stdin.end();
          }),
      }),
    );
  });
}

/** Whether another process can take an OFD lock on `path` right now. */
function pythonCanLock(path: string, exclusive: boolean): boolean {
  const out = execFileSync('python3', ['-c', [
    'import fcntl, os, struct',
    `fd = os.open(${JSON.stringify(path)}, os.O_RDWR if ${exclusive ? 'True' : 'False'} else os.O_RDONLY)`,
    'try:',
    `  fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', ${exclusive ? 'fcntl.F_WRLCK' : 'fcntl.F_RDLCK'}, 0, 0, 0, 0)); print("yes")`,
    'except OSError: print("no")',
  ].join('\n')], { encoding: 'utf8' });
  return out.trim() === 'yes';
}

describe('file flavour: images are locked', () => {
  it('a read-write open takes an exclusive lock another process sees; closing releases it', async () => {
    const path = fresh();
    writeFileSync(path, new Uint8Array(MiB));
    const dev = await FileBlockDevice.open(path);
    expect(dev.lock).toBe('exclusive');
    expect(pythonCanLock(path, false)).toBe(false);
    expect(pythonCanLock(path, true)).toBe(false);
    await dev.disconnect();
    expect(pythonCanLock(path, true)).toBe(true);
  });

  it('refuses a read-write open while another process holds the image, naming the file; lock: false opts out', async () => {
    const path = fresh();
    writeFileSync(path, new Uint8Array(MiB));
    const holder = await pythonHoldingLock(path, true);
    try {
      const err = await FileBlockDevice.open(path).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'locked', path });
      expect((err as Error).message).toContain(path);
      expect(await FileBlockDevice.open(path, { readOnly: true }).catch((e: unknown) => (e as XenpvError).code)).toBe('locked');
      const unlocked = await FileBlockDevice.open(path, { lock: false });
      expect(unlocked.lock).toBe('none');
      await unlocked.disconnect();
    } finally {
      await holder.release();
    }
    const dev = await FileBlockDevice.open(path);
    await dev.disconnect();
  });

  it('read-only opens share; a writer is refused while a reader holds it (also within one process)', async () => {
    const path = fresh();
    writeFileSync(path, new Uint8Array(MiB));
    const holder = await pythonHoldingLock(path, false);
    const reader = await FileBlockDevice.open(path, { readOnly: true });
    try {
      expect(reader.lock).toBe('shared');
      expect(await FileBlockDevice.open(path).catch((e: unknown) => (e as XenpvError).code)).toBe('locked');
    } finally {
      await holder.release();
    }
    // The reader in this process still blocks a writer in this process.
    expect(await FileBlockDevice.open(path).catch((e: unknown) => (e as XenpvError).code)).toBe('locked');
    await reader.disconnect();
    const writer = await FileBlockDevice.open(path);
    await writer.disconnect();
  });
});
