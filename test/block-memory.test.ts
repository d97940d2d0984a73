import { describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../src/block/memory.js';
import type { BlockInfo } from '../src/block/types.js';
import { describeBlockContract, expectBytes, pattern, rejectsWith } from './block-contract.js';

describeBlockContract('memory', async ({ sizeBytes, sectorSize, readOnly, content }) => {
  const dev =
    content === undefined
      ? new MemoryBlockDevice({ sizeBytes, sectorSize, readOnly })
      : MemoryBlockDevice.fromBytes(content.slice(), { sectorSize, readOnly });
  return {
    dev,
    backing: async () => dev.bytes.slice(),
    cleanup: () => dev.disconnect(),
  };
});

describe('MemoryBlockDevice', () => {
  it('allocates 64 MiB as 131072 sectors of 512 bytes', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 64 * 1024 * 1024 });
    expect(dev.info().sizeSectors).toBe(131072n);
    expect(dev.bytes.byteLength).toBe(67108864);
    const last = new Uint8Array(512).fill(9);
    await dev.write(131071n, [last]);
    expect(dev.bytes[67108863]).toBe(9);
    await dev.disconnect();
  });

  it('accepts a bigint size and 4096-byte sectors', () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1n << 20n, sectorSize: 4096 });
    expect(dev.info().sizeSectors).toBe(256n);
    expect(dev.info().physicalSectorSize).toBe(4096);
  });

  it('refuses bad options, naming the field', () => {
    const bad = (o: object, field: string): void => {
      try {
        new MemoryBlockDevice(o as never);
        expect.unreachable(`accepted ${JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('invalid-argument');
        expect((err as { field?: string }).field).toBe(field);
      }
    };
    bad({ sizeBytes: 1000 }, 'sizeBytes'); // not a multiple of 512
    bad({ sizeBytes: 0 }, 'sizeBytes');
    bad({ sizeBytes: -512n }, 'sizeBytes');
    bad({ sizeBytes: 1.5 }, 'sizeBytes');
    bad({ sizeBytes: '512' }, 'sizeBytes');
    bad({ sizeBytes: 2 ** 40 }, 'sizeBytes'); // beyond the typed-array limit
    bad({ sizeBytes: 4096, sectorSize: 1000 }, 'sectorSize');
    bad({ sizeBytes: 4096, sectorSize: 256 }, 'sectorSize');
    bad({ sizeBytes: 4096, sectorSize: 4096, physicalSectorSize: 512 }, 'physicalSectorSize');
  });

  it('can be backed by a SharedArrayBuffer another thread could see', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 4096, shared: true });
    expect(dev.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    dev.resize(16n);
    expect(dev.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('fromBytes writes straight into the given array', async () => {
    const bytes = new Uint8Array(2048);
    const dev = MemoryBlockDevice.fromBytes(bytes);
    expect(dev.info().sizeSectors).toBe(4n);
    await dev.write(1n, [new Uint8Array(512).fill(7)]);
    expect(bytes[512]).toBe(7);
    expect(bytes[1023]).toBe(7);
    expect(bytes[1024]).toBe(0);
    expect(() => MemoryBlockDevice.fromBytes(new Uint8Array(700))).toThrow(/bytes.byteLength/);
  });

  it('flush is a no-op that resolves', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 4096 });
    await expect(dev.flush()).resolves.toBeUndefined();
  });

  describe('resize', () => {
    it('grows keeping content, new sectors read zero, and emits the new info', async () => {
      const dev = new MemoryBlockDevice({ sizeBytes: 8 * 512 });
      const data = pattern(8 * 512, 11);
      await dev.write(0n, [data]);
      const seen: BlockInfo[] = [];
      dev.onResize((info) => seen.push(info));
      dev.resize(16n);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.sizeSectors).toBe(16n);
      expect(dev.info()).toBe(seen[0]);
      const back = new Uint8Array(16 * 512);
      await dev.read(0n, [back]);
      expectBytes(back.subarray(0, 8 * 512), data);
      expect(back.subarray(8 * 512).every((x) => x === 0)).toBe(true);
      await dev.write(15n, [new Uint8Array(512)]); // the new end is addressable
    });

    it('shrinks, and the cut-off range becomes out-of-range', async () => {
      const dev = new MemoryBlockDevice({ sizeBytes: 8 * 512 });
      const data = pattern(8 * 512, 12);
      await dev.write(0n, [data]);
      dev.resize(4n);
      expect(dev.info().sizeSectors).toBe(4n);
      await rejectsWith(dev.read(4n, [new Uint8Array(512)]), 'out-of-range');
      const back = new Uint8Array(4 * 512);
      await dev.read(0n, [back]);
      expectBytes(back, data.subarray(0, 4 * 512));
    });

    it('listeners see info() already updated, run in order, and can unsubscribe', () => {
      const dev = new MemoryBlockDevice({ sizeBytes: 4096 });
      const calls: string[] = [];
      const offA = dev.onResize((info) => calls.push(`a${info.sizeSectors}:${dev.info().sizeSectors}`));
      dev.onResize((info) => calls.push(`b${info.sizeSectors}`));
      dev.resize(10n);
      offA();
      offA(); // idempotent
      dev.resize(12n);
      expect(calls).toEqual(['a10:10', 'b10', 'b12']);
    });

    it('does not emit when the size is unchanged', () => {
      const dev = new MemoryBlockDevice({ sizeBytes: 4096 });
      let n = 0;
      dev.onResize(() => n++);
      dev.resize(8n);
      expect(n).toBe(0);
    });

    it('refuses bad sizes and a non-function listener', () => {
      const dev = new MemoryBlockDevice({ sizeBytes: 4096 });
      expect(() => dev.resize(0n)).toThrow(expect.objectContaining({ code: 'invalid-argument', field: 'newSizeSectors' }));
      expect(() => dev.resize(3 as never)).toThrow(expect.objectContaining({ code: 'invalid-argument', field: 'newSizeSectors' }));
      expect(() => dev.onResize('x' as never)).toThrow(expect.objectContaining({ code: 'invalid-argument', field: 'listener' }));
    });

    it('is refused after disconnect', async () => {
      const dev = new MemoryBlockDevice({ sizeBytes: 4096 });
      await dev.disconnect();
      expect(() => dev.resize(16n)).toThrow(expect.objectContaining({ code: 'disconnected' }));
    });
  });
});
