/**
 * What the privileged master hands its unprivileged child, and where.
 *
 * ```
 *  child fd  what                                   master side
 *  0         /dev/null                              -
 *  1, 2      the master's stdout, stderr            -
 *  3         IPC channel (JSON messages below)      ChildProcess.send / 'message'
 *  4         xenstore (wire protocol, via proxy)    XenstoreProxy -> xenstored (sim: as dom<N>)
 *  5         sim: event-channel link to the backend ForeignEventChannels on the backend domain
 *            real Xen: /dev/xen/evtchn              opened by the master, its copy closed
 *  6         sim: the page pool (memfd)             createPoolFile(hypervisor.layout)
 *            real Xen: /dev/xen/gntalloc            opened by the master, its copy closed
 *  7         real Xen: /dev/xen/gntdev, only for a job that maps other domains' grants
 *  8 ...     one per `file:` device, opened by the master (root), in plan order
 * ```
 * 4, 5, 6 and 7 are not passed when unused (the child's own files may take the numbers).
 */
export const FD_XENSTORE = 4;
export const FD_EVTCHN = 5;
export const FD_POOL = 6;
export const FD_GNTALLOC = 6;
export const FD_GNTDEV = 7;
export const FD_FIRST_FILE = 8;

export type DevicePlan =
  /** Opened by the child itself: needs no privilege (memory:, or any flavour the child can open). */
  | { readonly kind: 'spec'; readonly spec: string }
  /** A file the master opened; the child wraps the descriptor. */
  | { readonly kind: 'fd'; readonly spec: string; readonly fd: number; readonly path: string; readonly readOnly: boolean; readonly sectorSize?: number }
  /** A vbd on the master's simulation; the child runs blkfront as domain `sim.domid`. */
  | { readonly kind: 'xen-sim'; readonly spec: string; readonly devid: number }
  /** A vbd on real Xen the master created (frontend and backend dom0); the child runs blkfront on the passed fds. */
  | { readonly kind: 'xen'; readonly spec: string; readonly devid: number };

/** Real Xen: what the child builds its Linux platform from (fds 4-7). */
export interface XenPlan {
  readonly domid: number;
  /** Whether fd 7 is /dev/xen/gntdev. */
  readonly gntdev: boolean;
}

export interface SimPlan {
  readonly domid: number;
  readonly backendDomid: number;
  readonly poolPages: number;
  readonly scratchBytes: number;
}

/** Master -> child, first message. */
export interface ChildPlan {
  readonly type: 'plan';
  readonly name: string;
  /** Absolute path (or file URL) of the job module. */
  readonly module: string;
  readonly devices: Readonly<Record<string, DevicePlan>>;
  readonly sim?: SimPlan;
  readonly xen?: XenPlan;
  /** Restarts already made by earlier children (a respawn): they count against the job's restart policy. */
  readonly restarts: number;
  readonly stopTimeoutMs?: number;
}

export type MasterMessage = ChildPlan | { readonly type: 'stop' };

/** Child -> master. */
export type ChildMessage =
  | { readonly type: 'state'; readonly state: string; readonly restarts: number }
  | { readonly type: 'outcome'; readonly kind: string; readonly exit: number; readonly error?: string; readonly stopErrors: readonly string[]; readonly restarts: number };
