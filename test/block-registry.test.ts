import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { flavours, openBlockDevice, parseSize, registerFlavour } from '../src/block/registry.js';
import type { OpenOptions } from '../src/block/registry.js';
import type { BlockDevice } from '../src/block/types.js';
import { rejectsWith } from './block-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-block-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openBlockDevice: memory', () => {
  it.each([
    ['memory:64MiB', 131072n],
    ['memory:512KiB', 1024n],
    ['memory:4096B', 8n],
  ])('%s has %d sectors of 512 bytes', async (spec, sectors) => {
    const dev = await openBlockDevice(spec);
    expect(dev).toBeInstanceOf(MemoryBlockDevice);
    expect(dev.info().sizeSectors).toBe(sectors);
    await dev.disconnect();
  });

  it('passes sectorSize and readOnly through', async () => {
    const dev = await openBlockDevice('memory:1MiB', { sectorSize: 4096, readOnly: true });
    expect(dev.info()).toMatchObject({ sectorSize: 4096, sizeSectors: 256n, readWrite: false });
    await rejectsWith(dev.write(0n, [new Uint8Array(4096)]), 'read-only');
  });

  it.each(['memory:', 'memory:64', 'memory:64MB', 'memory:64mib', 'memory:0MiB', 'memory:-1MiB', 'memory:1.5MiB', 'memory:100B'])(
    'refuses %j naming spec',
    async (spec) => {
      await rejectsWith(openBlockDevice(spec), 'invalid-argument', 'spec');
    },
  );
});

describe('openBlockDevice: file', () => {
  it('opens a file, with create and readOnly options', async () => {
    const path = join(dir, 'a.img');
    const dev = await openBlockDevice(`file:${path}`, { create: { sizeBytes: 1 << 20 } });
    expect(dev).toBeInstanceOf(FileBlockDevice);
    expect(statSync(path).size).toBe(1 << 20);
    await dev.write(1n, [new Uint8Array(512).fill(3)]);
    await dev.disconnect();
    expect(readFileSync(path)[512]).toBe(3);
    const ro = await openBlockDevice(`file:${path}`, { readOnly: true });
    await rejectsWith(ro.write(0n, [new Uint8Array(512)]), 'read-only');
    await ro.disconnect();
  });

  it('a relative path works too', async () => {
    const path = join(dir, 'rel.img');
    writeFileSync(path, new Uint8Array(1024));
    const dev = await openBlockDevice(`file:${relative(process.cwd(), path)}`);
    expect(dev.info().sizeSectors).toBe(2n);
    await dev.disconnect();
  });

  it('a missing file is an io error', async () => {
    await rejectsWith(openBlockDevice(`file:${join(dir, 'missing.img')}`), 'io');
  });
});

describe('openBlockDevice: spec errors', () => {
  it.each(['', 'memory', ':64MiB', 'nvme:0', 'Memory:64MiB', 'xvda', 'file:'])('refuses %j naming spec', async (spec) => {
    await rejectsWith(openBlockDevice(spec), 'invalid-argument', 'spec');
  });

  it('refuses a non-string spec', async () => {
    await rejectsWith(openBlockDevice(42 as never), 'invalid-argument', 'spec');
  });

  it('xen is refused until a Xen flavour registers', async () => {
    expect(flavours()).not.toContain('xen');
    await rejectsWith(openBlockDevice('xen:xvda'), 'invalid-argument', 'spec');
  });
});

describe('registerFlavour', () => {
  it('xen specs reach the registered opener as canonical vdev numbers, with the options', async () => {
    const calls: [string, OpenOptions][] = [];
    const fake: BlockDevice = new MemoryBlockDevice({ sizeBytes: 4096 });
    const off = registerFlavour('xen', async (target, options) => {
      calls.push([target, options]);
      return fake;
    });
    try {
      expect(flavours()).toContain('xen');
      expect(await openBlockDevice('xen:xvda', { readOnly: true, backendDomid: 1 })).toBe(fake);
      await openBlockDevice('xen:51712');
      await openBlockDevice('xen:xvdq');
      await openBlockDevice('xen:d1p2');
      expect(calls.map((c) => c[0])).toEqual(['51712', '51712', '268439552', '51730']);
      expect(calls[0]![1]).toEqual({ readOnly: true, backendDomid: 1 });
      await rejectsWith(openBlockDevice('xen:xvd'), 'invalid-argument', 'spec');
      await rejectsWith(openBlockDevice('xen:0777'), 'invalid-argument', 'spec');
      expect(calls).toHaveLength(4); // refused specs never reach the opener
    } finally {
      off();
    }
    expect(flavours()).not.toContain('xen');
    await rejectsWith(openBlockDevice('xen:xvda'), 'invalid-argument', 'spec');
  });

  it("the opener's rejection reaches the caller unchanged", async () => {
    const boom = new Error('backend gone');
    const off = registerFlavour('test-fail', async () => {
      throw boom;
    });
    try {
      await expect(openBlockDevice('test-fail:x')).rejects.toBe(boom);
    } finally {
      off();
    }
  });

  it('refuses duplicate, built-in and malformed names, and non-functions', () => {
    const off = registerFlavour('dup', async () => new MemoryBlockDevice({ sizeBytes: 512 }));
    try {
      const named = (field: string) => expect.objectContaining({ code: 'invalid-argument', field });
      expect(() => registerFlavour('dup', async () => new MemoryBlockDevice({ sizeBytes: 512 }))).toThrow(named('name'));
      expect(() => registerFlavour('memory', async () => new MemoryBlockDevice({ sizeBytes: 512 }))).toThrow(named('name'));
      expect(() => registerFlavour('file', async () => new MemoryBlockDevice({ sizeBytes: 512 }))).toThrow(named('name'));
      expect(() => registerFlavour('Bad:Name', async () => new MemoryBlockDevice({ sizeBytes: 512 }))).toThrow(named('name'));
      expect(() => registerFlavour('ok', 'nope' as never)).toThrow(named('opener'));
    } finally {
      off();
    }
  });

  it('a stale unregister function does not remove a later registration', async () => {
    const first = registerFlavour('again', async () => new MemoryBlockDevice({ sizeBytes: 512 }));
    first();
    const second = registerFlavour('again', async () => new MemoryBlockDevice({ sizeBytes: 1024 }));
    try {
      first();
      expect((await openBlockDevice('again:x')).info().sizeSectors).toBe(2n);
    } finally {
      second();
    }
  });
});

describe('parseSize', () => {
  it('multiplies by binary units', () => {
    expect(parseSize('1B')).toBe(1n);
    expect(parseSize('3KiB')).toBe(3072n);
    expect(parseSize('64MiB')).toBe(67108864n);
    expect(parseSize('2GiB')).toBe(2147483648n);
  });
});
