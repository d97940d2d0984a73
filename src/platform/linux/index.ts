/** The Linux (/dev/xen) platform: a Node process in a real Xen domain. */
export { openLinuxPlatform, openXenDevice, XEN_DEVICE_DIR } from './platform.js';
export type { LinuxPlatform, LinuxPlatformOptions, LinuxPlatformFds } from './platform.js';
export { LinuxEventChannels } from './evtchn.js';
export type { LinuxEvtchnOptions } from './evtchn.js';
export { evtchnDeviceOnFd, type EvtchnDevice } from './evtchn-device.js';
export { LinuxGrantTable } from './grant-table.js';
export { grantDevicesOnFds, type GrantDevices } from './grant-devices.js';
export { PageRuns } from './page-runs.js';
