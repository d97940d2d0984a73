/**
 * xenpv: Xen paravirtual block frontend for Node.js.
 *
 * The package root: the simulation, the drivers, the BlockDevice layer, the
 * codec API, the engines, the platform interfaces and the errors.
 */
export * as blkif from './blkif/index.js';
export { Simulation } from './sim/simulation.js';
export type { SimulationOptions, DiskOptions, SimDisk, AttachOptions } from './sim/simulation.js';
export { Blkfront } from './blkfront/blkfront.js';
export type { BlkfrontOptions, BlkfrontStats } from './blkfront/blkfront.js';
export { createVbd, destroyVbd, vbdPaths } from './blkfront/toolstack.js';
export type { VbdSpec, VbdPaths } from './blkfront/toolstack.js';
export { Blkback } from './blkback/blkback.js';
export type { BlkbackOptions } from './blkback/blkback.js';
export type { BackendFeatures } from './blkback/features.js';
export { MemoryBlockDevice, FileBlockDevice, FileKind, openBlockDevice, registerFlavour, parseVdev, vdevName, VdevType } from './block/index.js';
export type {
  BlockDevice,
  BlockInfo,
  BlockFeatures,
  DiscardInfo,
  MediaKind,
  ResizeListener,
  OpenOptions,
  FlavourOpener,
  MemoryBlockDeviceOptions,
  FileBlockDeviceOptions,
  Vdev,
} from './block/index.js';
export { openXenBlockDevice, registerXenFlavour } from './block/xen-flavour.js';
export type { XenOpenOptions, XenCreateSpec } from './block/xen-flavour.js';
export { openLinuxPlatform } from './platform/linux/index.js';
export type { LinuxPlatform, LinuxPlatformOptions } from './platform/linux/index.js';
export { createEngine, Abi } from './ring/index.js';
export type { RingEngine, EngineKind } from './ring/index.js';
export { XenstoreClient, XenstoreServer, XenstoreError, connectXenstoreSocket } from './xenstore/index.js';
export type { DomId, Platform, XenStore, XsOps, XsPerm, XsWatch, EventChannels, GrantTable } from './platform/types.js';
export {
  XenpvError,
  DisconnectedError,
  ReadOnlyError,
  UnsupportedError,
  OutOfRangeError,
  InvalidArgumentError,
  IoError,
  ProtocolError,
  TimeoutError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export { debug, enableDebug, setDebugSink } from './util/debug.js';
export type { DebugLogger } from './util/debug.js';
export type { QueueStats } from './blkfront/stats.js';
export type { LatencySummary } from './util/histogram.js';
