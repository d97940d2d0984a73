/**
 * Engine factory: the Wasm data path or its TypeScript twin, over one shared
 * memory. Both implement RingEngine byte for byte; callers pick by name.
 */
import type { RingEngine } from './engine.js';
import { createJsEngine } from './js/engine.js';
import { createWasmEngine } from '../wasm/engine.js';

export type EngineKind = RingEngine['kind'];
export type { RingEngine } from './engine.js';
export { Abi, COMPLETION_BYTES, REQUEST_DESC_BYTES, RING_STATE_BYTES, TAKE_SEGMENT_AREA_BYTES } from './engine.js';
export { BlkifStatus, statusMessage, statusToError } from './status.js';
export { JsEngine, createJsEngine } from './js/engine.js';

/** Create an engine of `kind` over `memory` (synchronous). */
export function createEngine(kind: EngineKind, memory: WebAssembly.Memory): RingEngine {
  switch (kind) {
    case 'wasm':
      return createWasmEngine(memory);
    case 'js':
      return createJsEngine(memory);
  }
}
