/**
 * The `file` flavour without the native addon (not built, or failing to
 * load): it still works, discards by zero-fill and opens unlocked, and says
 * both. The addon is made unloadable at its seam, storageAddon().
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

vi.mock('../src/native/storage.js', () => ({ storageAddon: () => undefined, storageUnavailableReason: () => 'mocked away' }));

const { FileBlockDevice } = await import('../src/block/file.js');

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xenpv-noaddon-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('file flavour without the addon', () => {
  it('discards by zero-fill, reports it in info().discard.method, and opens with lock none', async () => {
    const path = join(dir, 'img');
    writeFileSync(path, new Uint8Array(64 * 1024).fill(0xaa));
    const dev = await FileBlockDevice.open(path);
    try {
      expect(dev.info().discard?.method).toBe('zero-fill');
      expect(dev.lock).toBe('none');
      await dev.discard(8n, 16n);
      await dev.flush();
    } finally {
      await dev.disconnect();
    }
    const bytes = readFileSync(path);
    expect(bytes.subarray(4096, 4096 + 8192).every((b) => b === 0)).toBe(true);
    expect(bytes[4095]).toBe(0xaa);
    expect(bytes[4096 + 8192]).toBe(0xaa);
  });
});
