/**
 * Opening the devices a command names, for `attach` and `dd`:
 *
 *   memory:64MiB  file:/path  xen:xvda   any registered flavour (src/block/registry.ts)
 *   ./disk.img  /dev/sdb                 a plain path is file:<path>
 *
 * `xen:` opens through the real Xen platform (/dev/xen/*) unless the command
 * got `--sim BACKING`: then a Simulation starts in this process, one backend
 * domain per --sim serves BACKING (a file, or memory:SIZE), and xen:xvda,
 * xen:xvdb, ... are opened through the registry's xen flavour on the
 * simulation's dom0 platform: the same opener as on real Xen, over the
 * simulated hypervisor. (A simulation lives inside one process, so the CLI
 * cannot reach one that another process started.)
 */
import { stat } from 'node:fs/promises';
import '../src/blkfront/flavour.js';
import { openBlockDevice, parseSize, parseSpec } from '../src/block/registry.js';
import type { BlockDevice } from '../src/block/types.js';
import { InvalidArgumentError } from '../src/errors.js';
import { Simulation } from '../src/sim/simulation.js';
import type { OptionTable } from './command.js';

export const SIM_OPTION = {
  sim: {
    type: 'string',
    multiple: true,
    arg: 'BACKING',
    help: 'serve xen:xvda (then xvdb, ...) from BACKING (a file, or memory:SIZE) on a simulated hypervisor in this process',
  },
} as const satisfies OptionTable;

/** A plain path becomes file:<path>; a spec stays as it is. */
export function normaliseSpec(arg: string): string {
  if (arg === '') throw new InvalidArgumentError('device', 'empty device name');
  return /^[a-z][a-z0-9-]{0,31}:/.test(arg) ? arg : `file:${arg}`;
}

/** What `xen:` specs open through: a started simulation, or the real platform. */
export class DeviceOpener {
  private sim: Simulation | undefined;
  private readonly opened: BlockDevice[] = [];

  private constructor(private readonly backings: readonly string[]) {}

  static async create(backings: readonly string[] = []): Promise<DeviceOpener> {
    const o = new DeviceOpener(backings);
    if (backings.length > 0) {
      o.sim = await Simulation.start();
      try {
        for (const b of backings) await o.sim.createDisk(await simDisk(b));
      } catch (err) {
        await o.close();
        throw err;
      }
    }
    return o;
  }

  /** Opens `arg`; `create` sizes a file output that does not exist yet. */
  async open(arg: string, opts: { readOnly?: boolean; createBytes?: number } = {}): Promise<BlockDevice> {
    const spec = normaliseSpec(arg);
    const { flavour, target } = parseSpec(spec);
    let dev: BlockDevice;
    if (flavour === 'xen') {
      dev = await openBlockDevice(spec, { readOnly: opts.readOnly, ...(this.sim ? { platform: this.sim.dom0 } : {}) });
    } else if (flavour === 'file' && opts.createBytes !== undefined && (await stat(target).catch(() => undefined)) === undefined) {
      dev = await openBlockDevice(spec, { create: { sizeBytes: opts.createBytes } });
    } else {
      dev = await openBlockDevice(spec, { readOnly: opts.readOnly });
    }
    this.opened.push(dev);
    return dev;
  }

  /** Disconnects what was opened, then stops the simulation: nothing is left running. */
  async close(): Promise<void> {
    for (const d of this.opened.splice(0).reverse()) await d.disconnect().catch(() => undefined);
    const sim = this.sim;
    this.sim = undefined;
    await sim?.stop();
  }
}

async function simDisk(backing: string): Promise<{ sizeBytes: number; path?: string }> {
  if (backing.startsWith('memory:')) return { sizeBytes: Number(parseSize(backing.slice('memory:'.length), '--sim')) };
  const path = backing.startsWith('file:') ? backing.slice('file:'.length) : backing;
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new InvalidArgumentError('--sim', `${path}: not an existing file (or use memory:SIZE)`);
  if (st.size === 0 || st.size % 512 !== 0) throw new InvalidArgumentError('--sim', `${path}: ${st.size} bytes is not a positive multiple of 512`);
  return { sizeBytes: st.size, path };
}

/** BlockDevice plus its stats, when the flavour keeps them (xen: does). */
export function deviceStats(dev: BlockDevice): unknown {
  const s = (dev as { stats?: () => unknown }).stats;
  return typeof s === 'function' ? s.call(dev) : undefined;
}
