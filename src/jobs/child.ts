/**
 * The unprivileged side: what runs in the child the master spawned (as
 * `nobody`, no capabilities). It receives its plan over IPC, builds its
 * devices only from what the master passed (child-plan.ts), runs the job
 * with the same runner as an in-process job, reports its states, and exits
 * with the job's exit status.
 *
 * For `xen:` devices on the simulation the child is a domain of its own:
 * it maps the pool the master passed (fd 6) over its Wasm memory, writes its
 * grant entries in its own slot, talks xenstore through the master's proxy
 * (fd 4) and reaches the backend's event channels over the link (fd 5).
 * On real Xen it is a dom0 process holding /dev/xen descriptors the master
 * opened (fds 5, 6 and maybe 7) and the same proxied xenstore (fd 4).
 */
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { openBlockDevice } from '../block/registry.js';
import { FileBlockDevice } from '../block/file.js';
import type { BlockDevice } from '../block/types.js';
import '../blkfront/flavour.js';
import { createSharedLayout } from '../memory/layout.js';
import { ForeignEventChannels } from '../sim/evtchn-socket.js';
import { mapPages } from '../native/index.js';
import { scratchArena } from '../platform/sim/domain.js';
import { SimGrantTable } from '../platform/sim/grant-table.js';
import { PoolView } from '../platform/sim/pool.js';
import { openLinuxPlatform, type LinuxPlatform } from '../platform/linux/platform.js';
import type { Platform } from '../platform/types.js';
import { XenstoreClient } from '../xenstore/client.js';
import { socketTransport } from '../xenstore/transport/socket.js';
import { FD_EVTCHN, FD_GNTALLOC, FD_GNTDEV, FD_POOL, FD_XENSTORE, type ChildMessage, type ChildPlan, type MasterMessage, type SimPlan } from './child-plan.js';
import { JobExit, exitStatus } from './exit.js';
import { inheritedHandle } from './fd-handle.js';
import { jobFromModule } from './job.js';
import { runJob } from './run.js';
import type { DeviceOpener, JobRunner } from './runner.js';

/** The platform of domain plan.domid, from the inherited pool, xenstore socket and link. */
export function childPlatform(plan: SimPlan): Platform & { close(): Promise<void> } {
  const layout = createSharedLayout({ poolPages: plan.poolPages, scratchBytes: plan.scratchBytes });
  mapPages(layout.memory, layout, layout.poolBase, FD_POOL, 0, plan.poolPages * 4096);
  const view = new PoolView(layout);
  const xenstore = new XenstoreClient(socketTransport(new Socket({ fd: FD_XENSTORE, readable: true, writable: true })));
  const evtchn = new ForeignEventChannels(new Socket({ fd: FD_EVTCHN, readable: true, writable: true }), plan.domid, plan.backendDomid);
  return {
    domid: plan.domid,
    memory: layout.memory,
    scratch: scratchArena(view, plan.domid),
    xenstore,
    evtchn,
    grants: new SimGrantTable(view, plan.domid),
    async close() {
      evtchn.dispose();
      await xenstore.close();
    },
  };
}

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

export async function childMain(): Promise<number> {
  if (!process.send) {
    console.error('xenpv job child: must be started by the xenpv master (no IPC channel)');
    return JobExit.Usage;
  }
  let runner: JobRunner | undefined;
  let stopAsked = false;
  let planned = false;
  const plan = await new Promise<ChildPlan>((resolve) => {
    process.on('message', (m: MasterMessage) => {
      if (m.type === 'plan') { planned = true; resolve(m); }
      else if (m.type === 'stop') { stopAsked = true; runner?.stop(); }
    });
    // The master going away (its end of IPC closed) is a stop too; before a plan, nothing to stop.
    process.on('disconnect', () => {
      stopAsked = true;
      runner?.stop();
      if (!planned) process.exit(JobExit.Failure);
    });
  });

  const platform = plan.sim ? childPlatform(plan.sim) : undefined;
  // Real Xen: built on first use, so a failure is the device's open failure (exit 5), not a crash of the child.
  let linux: Promise<LinuxPlatform> | undefined;
  const xen = plan.xen;
  const linuxPlatform = (): Promise<LinuxPlatform> => (linux ??= openLinuxPlatform({
    fds: { evtchn: FD_EVTCHN, gntalloc: FD_GNTALLOC, gntdev: xen!.gntdev ? FD_GNTDEV : undefined, xenstore: FD_XENSTORE },
    domid: xen!.domid,
  }));
  const open: DeviceOpener = async (name, _spec, options) => {
    const d = plan.devices[name];
    if (d === undefined) throw new Error(`the master passed no device ${name}`);
    switch (d.kind) {
      case 'spec':
        return openBlockDevice(d.spec, options);
      case 'fd':
        return FileBlockDevice.fromHandle(inheritedHandle(d.fd), d.path, { readOnly: d.readOnly, sectorSize: d.sectorSize });
      case 'xen-sim':
        if (!platform) throw new Error('xen device without a simulation plan');
        return openBlockDevice(d.spec, { ...options, platform, backendDomid: plan.sim!.backendDomid }) as Promise<BlockDevice>;
      case 'xen':
        if (!xen) throw new Error('xen device without a real-Xen plan');
        return openBlockDevice(d.spec, { ...options, platform: await linuxPlatform(), backendDomid: 0 }) as Promise<BlockDevice>;
    }
  };
  const url = plan.module.startsWith('file:') ? plan.module : pathToFileURL(plan.module).href;
  const job = jobFromModule(await import(url), plan.module);
  const outcome = await runJob(job, {
    name: plan.name,
    open,
    stopTimeoutMs: plan.stopTimeoutMs,
    restartsBefore: plan.restarts,
    log: (line) => console.error(line),
    onRunner: (r) => { runner = r; if (stopAsked) r.stop(); },
    onState: (state) => void send({ type: 'state', state, restarts: runner?.restartCount ?? 0 }),
  });
  await platform?.close();
  if (linux) await (await linux.catch(() => undefined))?.close();
  const exit = exitStatus(outcome);
  await send({
    type: 'outcome', kind: outcome.kind, exit, error: outcome.error?.message,
    stopErrors: outcome.stopErrors.map((e) => e.message), restarts: outcome.restarts,
  });
  return exit;
}
