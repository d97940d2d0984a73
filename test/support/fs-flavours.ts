/**
 * One table of BlockDevice flavours for the file-system and serve tests
 * (liburing style: one test body, rerun under every configuration). Each
 * flavour opens a device over a copy of an image file built by the real
 * tools, and hands back an image file holding the device's bytes after
 * the test, for the tools to check.
 *
 *   file:   FileBlockDevice on the image itself
 *   memory: MemoryBlockDevice holding the image's bytes; written out at the end
 *   xen:    the simulation: blkfront → ring → blkback → the image file
 */
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { FileBlockDevice } from '../../src/block/file.js';
import { MemoryBlockDevice } from '../../src/block/memory.js';
import type { BlockDevice } from '../../src/block/types.js';
import { Simulation } from '../../src/sim/simulation.js';

export interface OpenedDevice {
  readonly dev: BlockDevice;
  /** Disconnects and returns the path of an image file with the device's final bytes. */
  finish(): Promise<string>;
}

export interface Flavour {
  readonly name: 'file' | 'memory' | 'xen';
  /** Opens a device on a private copy of `image` (`work` is the copy's path). */
  open(image: string, work: string, opts?: { readOnly?: boolean }): Promise<OpenedDevice>;
}

export const FLAVOURS: readonly Flavour[] = [
  {
    name: 'file',
    async open(image, work, opts) {
      copyFileSync(image, work);
      const dev = await FileBlockDevice.open(work, { readOnly: opts?.readOnly });
      return {
        dev,
        async finish() {
          await dev.disconnect();
          return work;
        },
      };
    },
  },
  {
    name: 'memory',
    async open(image, work, opts) {
      const dev = MemoryBlockDevice.fromBytes(new Uint8Array(readFileSync(image)), { readOnly: opts?.readOnly });
      return {
        dev,
        async finish() {
          await dev.disconnect();
          writeFileSync(work, dev.bytes);
          return work;
        },
      };
    },
  },
  {
    name: 'xen',
    async open(image, work, opts) {
      copyFileSync(image, work);
      const sim = await Simulation.start();
      try {
        const disk = await sim.createDisk({ sizeBytes: statSync(work).size, path: work, readOnly: opts?.readOnly });
        const dev = await sim.attach(disk);
        return {
          dev,
          async finish() {
            await dev.disconnect();
            await sim.stop();
            return work;
          },
        };
      } catch (err) {
        await sim.stop();
        throw err;
      }
    },
  },
];
