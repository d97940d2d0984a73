/**
 * Discarder's step-down (src/block/file-discard.ts): a host that answers
 * EOPNOTSUPP to one method gets the next one, for good, and the range
 * still reads back as zeros (checked with fs, not through the device).
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Discarder } from '../src/block/file-discard.js';
import { NativeError } from '../src/native/errors.js';
import type { StorageAddon } from '../src/native/storage.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xenpv-discarder-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusing(errno: number, calls: string[]): StorageAddon {
  const no = (name: string) => (): never => {
    calls.push(name);
    throw new NativeError(`${name}: not here`, { errno });
  };
  return { punchHole: no('punchHole'), blkZeroout: no('blkZeroout'), blkGetSize64: () => 0n, ofdLock: () => true };
}

describe('Discarder', () => {
  it('falls back from punch-hole to zero-fill on EOPNOTSUPP (regular file), once, and zeroes the range', async () => {
    const path = join(dir, 'a');
    writeFileSync(path, new Uint8Array(16384).fill(9));
    const h = await open(path, 'r+');
    const calls: string[] = [];
    const d = new Discarder(h, false, refusing(95, calls));
    expect(d.method).toBe('punch-hole');
    await d.discard(4096, 4096);
    await d.discard(12288, 512);
    await h.close();
    expect(d.method).toBe('zero-fill');
    expect(calls).toEqual(['punchHole']);
    const bytes = readFileSync(path);
    expect(bytes.subarray(4096, 8192).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(12288, 12800).every((b) => b === 0)).toBe(true);
    expect(bytes[4095]).toBe(9);
    expect(bytes[8192]).toBe(9);
  });

  it('on a block device steps punch-hole → zeroout → zero-fill', async () => {
    const path = join(dir, 'b');
    writeFileSync(path, new Uint8Array(8192).fill(9));
    const h = await open(path, 'r+');
    const calls: string[] = [];
    const d = new Discarder(h, true, refusing(95, calls));
    await d.discard(0, 4096);
    await h.close();
    expect(calls).toEqual(['punchHole', 'blkZeroout']);
    expect(d.method).toBe('zero-fill');
    expect(readFileSync(path).subarray(0, 4096).every((b) => b === 0)).toBe(true);
  });

  it('does not step down on a real failure (EIO): it is reported', async () => {
    const path = join(dir, 'c');
    writeFileSync(path, new Uint8Array(4096));
    const h = await open(path, 'r+');
    const d = new Discarder(h, false, refusing(5, []));
    await expect(d.discard(0, 4096)).rejects.toMatchObject({ code: 'io', cause: { errno: 5 } });
    await h.close();
    expect(d.method).toBe('punch-hole');
  });
});
