/**
 * Both RingEngines over their own fresh memories, for differential targets,
 * made by src/ring/index.ts `createEngine(kind, memory)`. A Wasm module that
 * is not built is a prerequisite error naming the fix, not a crash.
 */
import { createSharedLayout, type SharedLayout } from '../../../src/memory/layout.js';
import type { RingEngine } from '../../../src/ring/engine.js';
import { createEngine } from '../../../src/ring/index.js';
import { FuzzPrerequisiteError } from '../target.js';

export interface EnginePair {
  wasm: RingEngine;
  js: RingEngine;
  wasmLayout: SharedLayout;
  jsLayout: SharedLayout;
}

/** A small memory: 64 KiB of scratch and `poolPages` pool pages. */
export function smallLayout(poolPages = 16): SharedLayout {
  return createSharedLayout({ scratchBytes: 64 * 1024, poolPages });
}

export async function createEnginePair(poolPages = 16): Promise<EnginePair> {
  const wasmLayout = smallLayout(poolPages);
  const jsLayout = smallLayout(poolPages);
  let wasm: RingEngine;
  try {
    wasm = createEngine('wasm', wasmLayout.memory);
  } catch (e) {
    throw new FuzzPrerequisiteError(`cannot create the Wasm engine: ${(e as Error).message}. Run: npm run build`);
  }
  const js = createEngine('js', jsLayout.memory);
  return { wasm, js, wasmLayout, jsLayout };
}

/** First differing byte of two memories over [from, to), or -1. */
export function firstDifference(a: WebAssembly.Memory, b: WebAssembly.Memory, from: number, to: number): number {
  const x = new Uint8Array(a.buffer, from, to - from);
  const y = new Uint8Array(b.buffer, from, to - from);
  if (Buffer.compare(x, y) === 0) return -1;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return from + i;
  return -1;
}

export function hexAround(m: WebAssembly.Memory, at: number, span = 16): string {
  const from = Math.max(0, at - (at % span));
  return Buffer.from(new Uint8Array(m.buffer, from, span)).toString('hex');
}
