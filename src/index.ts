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
export { createVbd, destroyVbd, vbdPaths, physicalDeviceKey, blockDeviceNumbers } from './blkfront/toolstack.js';
export { attachLoop, loopDevicesOf, type LoopDevice } from './blkfront/loop-device.js';
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
export { openXenBlockDevice, registerXenFlavour } from './blkfront/flavour.js';
export type { XenOpenOptions, XenCreateSpec } from './blkfront/flavour.js';
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
  LockedError,
} from './errors.js';
export { GrantError, EvtchnError } from './platform/sim/errors.js';
export type { GrantRefusal, EvtchnRefusal } from './platform/sim/errors.js';
export { NativeError, ForeignEvtchnError } from './native/errors.js';
export type { ErrorCode } from './errors.js';
export {
  openVolumeGroup,
  VolumeGroup,
  LogicalVolumeDevice,
  openLvmBlockDevice,
  registerLvmFlavour,
  CorruptMetadataError,
  NoSpaceError,
} from './lvm/index.js';
export type { LogicalVolumeInfo, LvSize, OpenLvOptions, LvmOpenOptions, VolumeGroupMetadata, MetadataPart } from './lvm/index.js';
// Layers above BlockDevice: the persistent queue and the NBD export.
export { PersistentQueue, crc32c } from './queue/index.js';
export type { QueueFormatOptions, QueueStats } from './queue/index.js';
export { NbdServer } from './nbd/index.js';
export type { NbdServerOptions, NbdExportSpec } from './nbd/index.js';

// File systems over any BlockDevice (src/fs) and a website served from one (src/serve).
export { openFileSystem, detectFileSystem, openFat, openExt4, mkfs, FileSystemError } from './fs/index.js';
export type { FileSystem, FileSystemKind, FsStats, ReadStreamOptions, FsReason, OpenFileSystemOptions, MkfsOptions } from './fs/index.js';
export { serveFileSystem, createStaticHandler } from './serve/index.js';
export type { ServeOptions, FileSystemServer, HandlerOptions, RequestHandler } from './serve/index.js';
export * from './jobs/index.js';
export { debug, enableDebug, setDebugSink } from './util/debug.js';
export type { DebugLogger } from './util/debug.js';
export type { QueueStats as BlkfrontQueueStats } from './blkfront/stats.js';
export type { LatencySummary } from './util/histogram.js';
