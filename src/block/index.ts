/** Public surface of the BlockDevice layer. */
export type { BlockDevice, BlockFeatures, BlockInfo, DiscardInfo, DiscardMethod, MediaKind, ResizeListener } from './types.js';
export type { ImageLock } from './file-lock.js';
export { MemoryBlockDevice } from './memory.js';
export type { MemoryBlockDeviceOptions } from './memory.js';
export { FileBlockDevice, FileKind } from './file.js';
export type { FileBlockDeviceOptions } from './file.js';
export { openBlockDevice, registerFlavour, flavours, parseSpec, parseSize } from './registry.js';
export type { FlavourOpener, OpenOptions } from './registry.js';
export { parseVdev, encodeVdev, decodeVdev, vdevName, diskLetters, VdevType } from './vdev.js';
export type { Vdev } from './vdev.js';
export { LifecycleState, IoGate } from './lifecycle.js';
export { ResizeNotifier } from './resize.js';
export {
  validateRead,
  validateWrite,
  validateDiscard,
  validateFlush,
  checkConnected,
  checkSector,
  checkCount,
  checkBuffers,
  checkRange,
  checkSectorSize,
  checkWritable,
  isUint8Array,
  MIN_SECTOR_SIZE,
  MAX_SECTOR_SIZE,
} from './validate.js';
export type { IoRequest, DiscardRequest } from './validate.js';
