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

/** Load the addon once; a missing or broken build is a NativeError saying how to rebuild. */
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
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    const first = ((cause as Error).message ?? String(cause)).split('\n')[0];
    throw new NativeError(`native addon ${path} failed to load (${first}). ${BUILD_HINT}.`, { cause });
  }
  return cached;
}
