/**
 * Loads dist/wasm/xenpv.wasm once per process (synchronously, so worker threads
 * can create engines at startup) and checks its static data stays below
 * SCRATCH_BASE, where host tables start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeError } from '../native/errors.js';
import { SCRATCH_BASE } from '../memory/layout.js';
import { packageRoot } from '../util/compiled.js';

const modules = new Map<string, WebAssembly.Module>();

/** The compiled module (release, or debug with source maps), compiled once per process. */
export function xenpvModule(debug = false): WebAssembly.Module {
  const file = debug ? 'xenpv.debug.wasm' : 'xenpv.wasm';
  let mod = modules.get(file);
  if (mod) return mod;
  const path = join(packageRoot(fileURLToPath(import.meta.url)), 'dist', 'wasm', file);
  if (!existsSync(path)) {
    throw new NativeError(`${path} is missing: run \`npm run build\` (asbuild) first`);
  }
  try {
    mod = new WebAssembly.Module(readFileSync(path));
  } catch (err) {
    // The module uses threads and SIMD (x86-64 with SSE4.1, or arm64).
    throw new NativeError(`cannot compile ${path}: ${(err as Error).message} (needs Wasm threads and SIMD)`, { cause: err });
  }
  modules.set(file, mod);
  return mod;
}

/** Instantiate over the host's shared memory and check the static-data bound. */
export function instantiateXenpv(memory: WebAssembly.Memory, debug = false): WebAssembly.Exports {
  const instance = new WebAssembly.Instance(xenpvModule(debug), {
    env: {
      memory,
      // Only reachable in the debug build (assertions); release is --noAssert.
      abort(): never {
        throw new NativeError('xenpv wasm aborted');
      },
    },
  });
  const heapBase = (instance.exports.xenpvHeapBase as () => number)() >>> 0;
  if (heapBase > SCRATCH_BASE) {
    throw new NativeError(`xenpv wasm static data ends at ${heapBase}, past SCRATCH_BASE ${SCRATCH_BASE}`);
  }
  return instance.exports;
}
