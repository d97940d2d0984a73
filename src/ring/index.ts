/**
 * Engine factory: the Wasm data path or its TypeScript twin, over one shared
 * memory. Both implement RingEngine byte for byte; callers pick by name.
 */
import type { RingEngine } from './engine.js';
import { InvalidArgumentError } from '../errors.js';
import { createJsEngine } from './js/engine.js';
import { createWasmEngine } from '../wasm/engine.js';

export type EngineKind = RingEngine['kind'];
export type { RingEngine } from './engine.js';
export { Abi, COMPLETION_BYTES, REQUEST_DESC_BYTES, RING_STATE_BYTES, TAKE_SEGMENT_AREA_BYTES } from './engine.js';
export { BlkifStatus, statusMessage, statusToError } from './status.js';
export { JsEngine, createJsEngine } from './js/engine.js';

/** Create an engine of `kind` over `memory` (synchronous). */
export function createEngine(kind: EngineKind, memory: WebAssembly.Memory): RingEngine {
  if (!(memory instanceof WebAssembly.Memory) || !(memory.buffer instanceof SharedArrayBuffer)) {
    throw new InvalidArgumentError('memory', 'must be a shared WebAssembly.Memory');
  }
  switch (kind) {
    case 'wasm':
      return createWasmEngine(memory);
    case 'js':
      return createJsEngine(memory);
    default:
      throw new InvalidArgumentError('engine', `must be 'wasm' or 'js', got ${String(kind as unknown)}`);
  }
}
