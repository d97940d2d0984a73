/** Jobs: lifecycle, instances, the privileged master and its unprivileged child. */
export { defineJob, jobFromModule, restartDelay, type Job, type JobContext, type RestartPolicy } from './job.js';
export { JobState, JobEvent, TRANSITIONS, nextState, isFinal } from './state.js';
export { JobRunner, type RunnerOptions, type DeviceOpener } from './runner.js';
export { runJob, type RunJobOptions } from './run.js';
export { JobExit, OutcomeKind, exitStatus, type JobOutcome } from './exit.js';
export { JobError, type JobErrorReason } from './errors.js';
export { InstanceSocket, listInstances, stopInstance, runtimeDir, socketPath, type InstanceStatus, type InstanceList } from './instances.js';
export { runMaster, describeJob, type MasterOptions, type MasterResult, type MasterInfo, type JobDeclaration } from './master.js';
export { XenstoreProxy, type XsProxyOptions } from './xs-proxy.js';
export { SimHost, BACKEND_DOMID, type SimVbd } from './sim-host.js';
export { XenHost, DOM0, type XenDeviceSpec, type XenHostOptions } from './xen-host.js';
