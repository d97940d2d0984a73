/** Public surface of the LVM layer (registers the `lvm:` flavour on import). */
export { openVolumeGroup, VolumeGroup, checkLvName } from './volume-group.js';
export type { LogicalVolumeInfo, LvSize, OpenLvOptions } from './volume-group.js';
export { LogicalVolumeDevice } from './lv-device.js';
export { openLvmBlockDevice, registerLvmFlavour } from './flavour.js';
export type { LvmOpenOptions } from './flavour.js';
export { CorruptMetadataError, NoSpaceError } from './errors.js';
export type { MetadataPart } from './errors.js';
export type { VolumeGroupMetadata, PhysicalVolume, LogicalVolume, Segment, Area } from './metadata.js';
