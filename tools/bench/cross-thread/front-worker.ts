/**
 * Worker thread of the cross-thread bench: one engine (Wasm or JS) over the
 * host's shared memory, running one front session per message (so the
 * engine stays warm across runs). Blocking on the event port is why this is
 * a worker: the main thread must not block in read().
 *
 *   workerData: { kind, memory, scratch, poolBase }
 *   message in: FrontRun          message out: FrontResult
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createEngine, type EngineKind } from '../../../src/ring/index.js';
import { runEngineFront, type FrontRun } from './engine-front.js';

export interface FrontWorkerData {
  kind: EngineKind;
  memory: WebAssembly.Memory;
  scratch: number;
  poolBase: number;
}

const data = workerData as FrontWorkerData;
const engine = createEngine(data.kind, data.memory);
parentPort!.on('message', (run: FrontRun) => {
  parentPort!.postMessage(runEngineFront(engine, { scratch: data.scratch, poolBase: data.poolBase }, run));
});
