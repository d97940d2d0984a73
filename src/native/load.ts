/**
 * Locates and loads the compiled addon, build/Release/xenpv_native.node.
 * This file runs both as src/native/load.ts (vitest) and as
 * dist/src/native/load.js (compiled); the package root is found as every
 * other compiled artefact's is (src/util/compiled.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot as packageRootOf } from '../util/compiled.js';
import { NativeError } from './errors.js';

/** The raw addon surface (src/native/addon.cc). Prefer the checked wrappers in index.ts. */
export interface NativeAddon {
  mapIntoMemory(buffer: SharedArrayBuffer, offset: number, fd: number, fileOffset: number, length: number): void;
  unmapFromMemory(buffer: SharedArrayBuffer, offset: number, length: number): void;
  memfdCreate(name: string, size: number): number;
  pageSize(): number;
}

const ADDON_RELATIVE = join('build', 'Release', 'xenpv_native.node');

/** Repository (package) root, where build/Release lives. Works from src/ and dist/src/. */
export function packageRoot(): string {
  return packageRootOf(fileURLToPath(import.meta.url));
}

let cached: NativeAddon | undefined;

/** What to install and run when the addon is missing; the install script (tools/build/install-native.mjs) says the same. */
export const BUILD_HINT =
  'To build it: install python3, make and g++ (Debian/Ubuntu: apt-get install python3 make g++), ' +
  'then run `npm rebuild xenpv` (inside the xenpv repository: npm run build:native)';

/**
 * Every function the addon's sources register (NODE_SET_METHOD in
 * src/native/*.cc; test/native-load.test.ts holds the two together). A
 * build that lacks one predates its sources: `npm run build` compiles
 * TypeScript and Wasm, not the addon, so a checkout that gained native code
 * keeps its old build until `npm ci` or `npm run build:native`.
 */
export const ADDON_EXPORTS = [
  'mapIntoMemory', 'unmapFromMemory', 'memfdCreate', 'pageSize',
  'evtchnBindUnboundPort', 'evtchnBindInterdomain', 'evtchnUnbind', 'evtchnNotify', 'evtchnReset',
  'gntallocAllocGref', 'gntallocDeallocGref', 'gntallocSetUnmapNotify', 'gntdevMapGrantRef', 'gntdevUnmapGrantRef', 'xenDevAbi',
  'fdPollStart', 'fdPollRef', 'fdPollStop',
  'punchHole', 'blkZeroout', 'blkGetSize64', 'ofdLock',
  'fdWriteByte', 'fdReadBytes',
] as const;

/** A NativeError naming what a stale build at `path` lacks, or undefined when it has everything. */
export function staleAddon(addon: object, path: string): NativeError | undefined {
  const missing = ADDON_EXPORTS.filter((name) => typeof (addon as Record<string, unknown>)[name] !== 'function');
  if (missing.length === 0) return undefined;
  return new NativeError(
    `native addon ${path} is older than its sources (it lacks ${missing.join(', ')}): rebuild it with \`npm run build:native\` (or \`npm ci\`).`,
  );
}

/** Load the addon once; a missing, broken or stale build is a NativeError saying how to rebuild. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  const path = join(root, ADDON_RELATIVE);
  if (!existsSync(path)) {
    throw new NativeError(
      `native addon not built: ${path} is missing (it is needed on real Xen and for foreign peers, not by the simulation). ` +
        `${BUILD_HINT}, in ${root}.`,
    );
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    const stale = staleAddon(addon, path);
    if (stale) throw stale;
    cached = addon;
  } catch (cause) {
    if (cause instanceof NativeError) throw cause;
    const first = ((cause as Error).message ?? String(cause)).split('\n')[0];
    throw new NativeError(`native addon ${path} failed to load (${first}). ${BUILD_HINT}.`, { cause });
  }
  return cached;
}
