import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { IoGate, LifecycleState } from '../src/block/lifecycle.js';
import { ResizeNotifier } from '../src/block/resize.js';
import type { BlockInfo } from '../src/block/types.js';
import {
  checkBuffers,
  checkSectorSize,
  isUint8Array,
  validateDiscard,
  validateFlush,
  validateRead,
  validateWrite,
} from '../src/block/validate.js';

const info = (over: Partial<BlockInfo> = {}): BlockInfo => ({
  readWrite: true,
  sectorSize: 512,
  physicalSectorSize: 512,
  sizeSectors: 100n,
  features: { flush: true, barrier: false, discard: true },
  ...over,
});

const code = (fn: () => unknown): { code?: string; field?: string } => {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; field?: string };
  }
  return {};
};

describe('validate', () => {
  it('returns a snapshot of the request with its totals', () => {
    const bufs = [new Uint8Array(512), new Uint8Array(1536)];
    const req = validateWrite(info(), 3n, bufs);
    bufs.push(new Uint8Array(512)); // the caller mutating its array changes nothing
    expect(req.buffers).toHaveLength(2);
    expect(req).toMatchObject({ sector: 3n, sectors: 4n, bytes: 2048 });
  });

  it('accepts Buffers and Uint8Arrays from another realm, nothing else', () => {
    const foreign = runInNewContext('new Uint8Array(512)') as unknown;
    expect(foreign instanceof Uint8Array).toBe(false);
    expect(isUint8Array(foreign)).toBe(true);
    expect(isUint8Array(Buffer.alloc(512))).toBe(true);
    expect(isUint8Array(new Uint8ClampedArray(512))).toBe(false);
    expect(isUint8Array(new DataView(new ArrayBuffer(512)))).toBe(false);
    expect(isUint8Array({ byteLength: 512, [Symbol.toStringTag]: 'Uint8Array' })).toBe(false);
    expect(checkBuffers([foreign, Buffer.alloc(1024)], 512).bytes).toBe(1536);
  });

  it('uses the device sector size for buffer lengths and ranges', () => {
    const big = info({ sectorSize: 4096, sizeSectors: 4n });
    expect(code(() => validateRead(big, 0n, [new Uint8Array(512)]))).toMatchObject({ code: 'invalid-argument', field: 'buffers[0]' });
    expect(validateRead(big, 3n, [new Uint8Array(4096)]).sectors).toBe(1n);
    expect(code(() => validateRead(big, 3n, [new Uint8Array(8192)]))).toMatchObject({ code: 'out-of-range' });
  });

  it('flush and discard are unsupported when the device does not offer them', () => {
    const bare = info({ features: { flush: false, barrier: false, discard: false } });
    expect(code(() => validateFlush(bare))).toMatchObject({ code: 'unsupported' });
    expect(code(() => validateDiscard(bare, 0n, 1n))).toMatchObject({ code: 'unsupported' });
    // argument errors still come first
    expect(code(() => validateDiscard(bare, 0n, 0n))).toMatchObject({ code: 'invalid-argument', field: 'count' });
  });

  it('sector sizes are powers of two from 512 to 65536', () => {
    for (const ok of [512, 1024, 4096, 65536]) expect(checkSectorSize(ok)).toBe(ok);
    for (const bad of [0, 256, 768, 131072, 512.5, '512', 4096n]) {
      expect(code(() => checkSectorSize(bad))).toMatchObject({ code: 'invalid-argument', field: 'sectorSize' });
    }
  });
});

describe('IoGate', () => {
  it('waits for in-flight calls, releases once, then refuses', async () => {
    const gate = new IoGate();
    let finish!: () => void;
    const op = gate.run(() => new Promise<void>((r) => (finish = r)));
    const release = vi.fn(async () => undefined);
    const closing = gate.close(release);
    expect(gate.close(release)).toBe(closing);
    expect(gate.state).toBe(LifecycleState.Disconnecting);
    await rejectsCode(gate.run(async () => 1), 'disconnected');
    await new Promise((r) => setImmediate(r));
    expect(release).not.toHaveBeenCalled();
    finish();
    await op;
    await closing;
    expect(release).toHaveBeenCalledTimes(1);
    expect(gate.state).toBe(LifecycleState.Disconnected);
    expect(gate.inFlight).toBe(0);
  });

  it('a synchronous throw from the operation becomes a rejection', async () => {
    const gate = new IoGate();
    const boom = new Error('boom');
    await expect(
      gate.run(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(gate.inFlight).toBe(0);
  });
});

async function rejectsCode(p: Promise<unknown>, c: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ code: c });
}

describe('ResizeNotifier', () => {
  it('a throwing listener neither stops the others nor is swallowed', () => {
    const n = new ResizeNotifier();
    const deferred: (() => void)[] = [];
    const spy = vi.spyOn(globalThis, 'setImmediate').mockImplementation(((fn: () => void) => {
      deferred.push(fn);
      return undefined as never;
    }) as never);
    const seen: bigint[] = [];
    try {
      n.on(() => {
        throw new Error('listener bug');
      });
      n.on((i) => seen.push(i.sizeSectors));
      n.emit(info({ sizeSectors: 7n }));
    } finally {
      spy.mockRestore();
    }
    expect(seen).toEqual([7n]);
    expect(deferred).toHaveLength(1);
    expect(() => deferred[0]!()).toThrow('listener bug'); // re-thrown later, as an uncaught exception
  });
});
