/**
 * The addon loader's staleness check: its list of exports is held against
 * the sources (every NODE_SET_METHOD in src/native/*.cc), and a build that
 * lacks one is refused with a message saying how to rebuild, instead of a
 * `TypeError: a.fdWriteByte is not a function` deep in a caller.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NativeError } from '../src/native/errors.js';
import { ADDON_EXPORTS, loadAddon, packageRoot, staleAddon } from '../src/native/load.js';

const NATIVE = join(packageRoot(), 'src', 'native');
const registered = readdirSync(NATIVE)
  .filter((f) => f.endsWith('.cc'))
  .flatMap((f) => [...readFileSync(join(NATIVE, f), 'utf8').matchAll(/NODE_SET_METHOD\(exports,\s*"(\w+)"/g)].map((m) => m[1]!));

describe('native addon loader', () => {
  it('expects exactly the functions the C++ sources register', () => {
    expect(registered.length).toBeGreaterThan(10);
    expect([...ADDON_EXPORTS].sort()).toEqual([...registered].sort());
  });

  it('refuses a build that lacks a function its sources register, naming it and the rebuild command', () => {
    const full = Object.fromEntries(ADDON_EXPORTS.map((n) => [n, () => 0]));
    expect(staleAddon(full, '/x/xenpv_native.node')).toBeUndefined();
    const { fdWriteByte: _w, fdReadBytes: _r, ...old } = full;
    const err = staleAddon(old, '/x/xenpv_native.node');
    expect(err).toBeInstanceOf(NativeError);
    expect(err!.code).toBe('native');
    expect(err!.message).toBe('native addon /x/xenpv_native.node is older than its sources (it lacks fdWriteByte, fdReadBytes): rebuild it with `npm run build:native` (or `npm ci`).');
  });

  it('the build in this checkout is current', () => {
    expect(() => loadAddon()).not.toThrow();
  });
});
