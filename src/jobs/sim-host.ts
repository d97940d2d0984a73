/**
 * The simulated machine behind `xenpv run --sim`: a hypervisor, a xenstored,
 * dom0 (the toolstack, and the frontend domain of an in-process job), and
 * one backend domain running our blkback for every `xen:` device a job
 * declares, each served from a backing BlockDevice (a memory disk, or any
 * registry spec). The backend domain's event channels are routed, so a job
 * in an unprivileged child process (a foreign domain, see master.ts) can
 * reach it over an event-channel link.
 *
 * ```
 *  dom0 (toolstack)         backend domain (BACKEND_DOMID)     frontend domain
 *  createVbd(fe, be, devid) Blkback.start(routed, backing) ◄─► dom0 in-process, or
 *                                                              a child (domid >= 2)
 * ```
 */
import { Blkback } from '../blkback/blkback.js';
import { createVbd, destroyVbd, vbdPaths, type VbdPaths } from '../blkfront/toolstack.js';
import type { BlockDevice } from '../block/types.js';
import { vdevName } from '../block/vdev.js';
import type { SimPlatform } from '../platform/sim/domain.js';
import { Hypervisor } from '../platform/sim/hypervisor.js';
import type { DomId } from '../platform/types.js';
import { createEngine } from '../ring/index.js';
import { RoutedEventChannels } from '../sim/foreign-evtchn.js';
import type { RoutedPlatform } from '../sim/foreign.js';
import { XenstoreServer } from '../xenstore/server/server.js';

export const BACKEND_DOMID = 1;

export interface SimHostOptions {
  /** Pool pages (default 8192 = 32 MiB). */
  readonly poolPages?: number;
  /** Domain slots, dom0 and the backend domain included (default 8). */
  readonly maxDomains?: number;
}

/** One served vbd. */
export interface SimVbd {
  readonly devid: number;
  readonly frontendDomid: DomId;
  readonly paths: VbdPaths;
  readonly blkback: Blkback;
  readonly backing: BlockDevice;
}

export class SimHost {
  private readonly vbds: SimVbd[] = [];
  private closed = false;

  private constructor(
    readonly hypervisor: Hypervisor,
    readonly xenstored: XenstoreServer,
    readonly dom0: SimPlatform,
    readonly backend: RoutedPlatform,
  ) {}

  static start(opts: SimHostOptions = {}): SimHost {
    const xenstored = new XenstoreServer();
    const hypervisor = Hypervisor.create({
      xenstore: xenstored,
      poolPages: opts.poolPages ?? 8192,
      maxDomains: opts.maxDomains ?? 8,
      grantFrames: 4,
      scratchBytes: 16 << 20,
    });
    const dom0 = hypervisor.createDomain('dom0', undefined, { domid: 0 });
    const sim = hypervisor.createDomain('blkback', undefined, { domid: BACKEND_DOMID });
    const backend: RoutedPlatform = {
      domid: sim.domid, memory: sim.memory, scratch: sim.scratch, xenstore: sim.xenstore,
      grants: sim.grants, evtchn: new RoutedEventChannels(sim.evtchn), sim,
    };
    return new SimHost(hypervisor, xenstored, dom0, backend);
  }

  /**
   * Write the vbd directories for `frontendDomid`'s device `devid` (as
   * `xl block-attach` does) and start a blkback serving `backing` there.
   */
  async serve(frontendDomid: DomId, devid: number, backing: BlockDevice): Promise<SimVbd> {
    const paths = await createVbd(this.dom0.xenstore, {
      frontendDomid, backendDomid: BACKEND_DOMID, devid, params: `sim:${(vdevName(devid) ?? String(devid))}`,
      readOnly: !backing.info().readWrite, dev: (vdevName(devid) ?? String(devid)),
    });
    try {
      const blkback = await Blkback.start(this.backend, {
        backend: paths.backend, device: backing, engine: createEngine('wasm', this.backend.memory),
        readOnly: !backing.info().readWrite,
      });
      const vbd: SimVbd = { devid, frontendDomid, paths, blkback, backing };
      this.vbds.push(vbd);
      return vbd;
    } catch (err) {
      await destroyVbd(this.dom0.xenstore, paths).catch(() => undefined);
      throw err;
    }
  }

  /** Paths a frontend domain's device uses (for the xenstore proxy's allow list). */
  pathsOf(frontendDomid: DomId, devid: number): VbdPaths {
    return vbdPaths({ frontendDomid, backendDomid: BACKEND_DOMID, devid });
  }

  /**
   * The frontend domain is gone: stop the blkbacks serving it (they unmap
   * its grants) and remove its vbd directories, as the toolstack does when a
   * domain dies. The backing devices are flushed and closed, unless
   * `keepBacking` (the caller serves them again to a respawned frontend).
   */
  async releaseFrontend(frontendDomid: DomId, opts: { keepBacking?: boolean } = {}): Promise<void> {
    const mine = this.vbds.filter((v) => v.frontendDomid === frontendDomid);
    for (const v of mine.reverse()) {
      this.vbds.splice(this.vbds.indexOf(v), 1);
      await v.blkback.stop().catch(() => undefined);
      await destroyVbd(this.dom0.xenstore, v.paths).catch(() => undefined);
      await v.backing.flush().catch(() => undefined);
      if (!opts.keepBacking) await v.backing.disconnect().catch(() => undefined);
    }
  }

  /** Stop every blkback, remove the vbds, close the backing devices and the machine. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.vbds.splice(0).reverse()) {
      await v.blkback.stop().catch(() => undefined);
      await destroyVbd(this.dom0.xenstore, v.paths).catch(() => undefined);
      await v.backing.flush().catch(() => undefined);
      await v.backing.disconnect().catch(() => undefined);
    }
    this.backend.evtchn.dispose();
    await this.hypervisor.shutdown();
    await this.xenstored.close();
  }
}
