/**
 * The program a simulated backend domain runs (in its worker thread): open
 * the disk, serve it with Blkback, obey the toolstack's few messages.
 */
import { parentPort } from 'node:worker_threads';
import { Blkback } from '../blkback/blkback.js';
import type { BackendFeatures } from '../blkback/features.js';
import { FileBlockDevice } from '../block/file.js';
import { MemoryBlockDevice } from '../block/memory.js';
import type { BlockDevice } from '../block/types.js';
import { platformFromWorkerData } from '../platform/sim/domain.js';
import { createEngine } from '../ring/index.js';
import { connectMessagePort } from '../xenstore/transport/message-port.js';
import { toWireError, type WireError } from '../util/wire-error.js';

export interface BackendDomainData {
  backend: string;
  /** Serve this file; else a memory disk of `sizeBytes`. */
  path?: string;
  sizeBytes: number;
  sectorSize?: number;
  readOnly?: boolean;
  features?: Partial<BackendFeatures>;
  engine?: 'wasm' | 'js';
}

/** Messages from the toolstack. */
export type BackendCommand = { type: 'resize'; sizeBytes: number } | { type: 'stop' };
export type BackendReply = { type: 'ready' } | { type: 'error'; error: WireError } | { type: 'done' };

async function main(): Promise<void> {
  const platform = platformFromWorkerData({ connectXenstore: connectMessagePort });
  const d = platform.data as BackendDomainData;
  const engine = createEngine(d.engine ?? 'wasm', platform.memory);
  let device: BlockDevice & { resize?: (n: bigint) => unknown };
  if (d.path) {
    device = await FileBlockDevice.open(d.path, { readOnly: d.readOnly, sectorSize: d.sectorSize });
  } else {
    device = new MemoryBlockDevice({ sizeBytes: d.sizeBytes, sectorSize: d.sectorSize, readOnly: d.readOnly });
  }
  const back = await Blkback.start(platform, {
    backend: d.backend,
    device,
    engine,
    features: d.features,
    readOnly: d.readOnly,
    // This worker is the backend's own thread: blocking it on pread/pwrite
    // (in slices) is cheaper than a libuv pool hop per call.
    syncIo: true,
  });
  parentPort!.on('message', (cmd: BackendCommand) => {
    void (async () => {
      try {
        if (cmd.type === 'resize') await device.resize!(BigInt(cmd.sizeBytes / device.info().sectorSize));
        if (cmd.type === 'stop') {
          await back.stop();
          await device.disconnect();
        }
        parentPort!.postMessage({ type: 'done' } satisfies BackendReply);
      } catch (err) {
        parentPort!.postMessage({ type: 'error', error: toWireError(err) } satisfies BackendReply);
      }
    })();
  });
  parentPort!.postMessage({ type: 'ready' } satisfies BackendReply);
}

main().catch((err: unknown) => {
  parentPort!.postMessage({ type: 'error', error: toWireError(err) } satisfies BackendReply);
});
