/** The simulated hypervisor: control plane, data plane, errors. */
export { Hypervisor, DomainState, type HypervisorOptions, type DomainOptions, type WorkerEntry, type WorkerDomain } from './hypervisor.js';
export { platformFromWorkerData, noXenstore, type SimPlatform, type XenstoreWiring, type DomainWorkerData, type WorkerPlatformOptions } from './domain.js';
export { SimEventChannels, PortState, NR_EVTCHN_PORTS, type EvtchnOptions } from './evtchn.js';
export {
  SimGrantTable,
  GrantAccess,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  GNTTAB_NR_RESERVED_ENTRIES,
  type CopyOp,
  type CopyPtr,
} from './grant-table.js';
export { GrantError, EvtchnError, type GrantRefusal, type EvtchnRefusal } from './errors.js';
export { PoolView, SlotState, PageAllocator } from './pool.js';
