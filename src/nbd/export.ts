/** One exported BlockDevice, with what the handshake advertises about it. */
import type { BlockDevice } from '../block/types.js';
import * as C from './constants.js';

export interface Export {
  readonly name: string;
  readonly description?: string;
  readonly device: BlockDevice;
  readonly sizeBytes: bigint;
  readonly sectorSize: number;
  readonly transmissionFlags: number;
}

export function describeExport(name: string, device: BlockDevice, description?: string): Export {
  const info = device.info();
  let flags = C.NBD_FLAG_HAS_FLAGS;
  if (!info.readWrite) flags |= C.NBD_FLAG_READ_ONLY;
  if (info.features.flush) flags |= C.NBD_FLAG_SEND_FLUSH | C.NBD_FLAG_SEND_FUA;
  if (info.readWrite && info.features.discard) flags |= C.NBD_FLAG_SEND_TRIM;
  if (info.readWrite) flags |= C.NBD_FLAG_SEND_WRITE_ZEROES;
  return { name, description, device, sizeBytes: info.sizeSectors * BigInt(info.sectorSize), sectorSize: info.sectorSize, transmissionFlags: flags };
}
