/**
 * /dev/xen/gntalloc and /dev/xen/gntdev as LinuxGrantTable uses them: an
 * ioctl sets pages up and names them by an `index` (a page-aligned offset
 * into the device file); mmap(fd, index) places them, here MAP_SHARED |
 * MAP_FIXED over pool pages of the shared Wasm memory, so the Wasm engine
 * reads and writes the very pages the peer maps.
 *
 *   grant:   IOCTL_GNTALLOC_ALLOC_GREF -> index, grefs; mmap(gntalloc, index)
 *   ungrant: replace the pages with private zero pages (munmap of the
 *            gntalloc vma); IOCTL_GNTALLOC_DEALLOC_GREF. The kernel ends the
 *            grants once the peer has unmapped them too.
 *   map:     IOCTL_GNTDEV_MAP_GRANT_REF -> index; mmap(gntdev, index) (the
 *            hypervisor maps the grants here, or mmap fails)
 *   unmap:   replace with private zero pages (unmaps the grants);
 *            IOCTL_GNTDEV_UNMAP_GRANT_REF
 *
 * GrantDevices is that surface; tests give it a stand-in backed by a memfd,
 * grantDevicesOnFds() the real files.
 */
import { closeSync } from 'node:fs';
import type { SharedLayout } from '../../memory/layout.js';
import { mapPages, unmapPages } from '../../native/index.js';
import {
  gntallocAllocGref,
  gntallocDeallocGref,
  gntdevMapGrantRef,
  gntdevUnmapGrantRef,
  mapPagesReadOnly,
} from '../../native/xen-dev.js';

export interface GrantDevices {
  /** IOCTL_GNTALLOC_ALLOC_GREF then mmap at `address`. */
  allocAndMap(address: number, domid: number, count: number, writable: boolean): { index: number; grefs: number[] };
  /** Unmap `count` pages at `address`, then IOCTL_GNTALLOC_DEALLOC_GREF. */
  unmapAndDealloc(address: number, index: number, count: number): void;
  /** IOCTL_GNTDEV_MAP_GRANT_REF then mmap at `address` (read-only: PROT_READ). */
  mapForeign(address: number, domid: number, grefs: readonly number[], readOnly: boolean): { index: number };
  /** Unmap `count` pages at `address`, then IOCTL_GNTDEV_UNMAP_GRANT_REF. */
  unmapForeign(address: number, index: number, count: number): void;
  close(): void;
}

const PAGE = 4096;

/**
 * The real devices. `gntdev` is a descriptor already open, or opened on
 * first use by calling it (a frontend never needs it; it may throw a typed
 * error). close() closes both.
 */
export function grantDevicesOnFds(layout: SharedLayout, gntallocFd: number, gntdev_: number | (() => number)): GrantDevices {
  let gntdevFd: number | undefined = typeof gntdev_ === 'number' ? gntdev_ : undefined;
  const openGntdev = typeof gntdev_ === 'number' ? () => gntdev_ : gntdev_;
  const gntdev = (): number => (gntdevFd ??= openGntdev());
  return {
    allocAndMap(address, domid, count, writable) {
      const out = gntallocAllocGref(gntallocFd, domid, count, writable);
      try {
        // Our own view is always writable; `writable` is what the peer gets.
        mapPages(layout.memory, layout, address, gntallocFd, out.index, count * PAGE);
      } catch (err) {
        try { gntallocDeallocGref(gntallocFd, out.index, count); } catch { /* the fd's close frees it */ }
        throw err;
      }
      return out;
    },
    unmapAndDealloc(address, index, count) {
      unmapPages(layout.memory, layout, address, count * PAGE);
      gntallocDeallocGref(gntallocFd, index, count);
    },
    mapForeign(address, domid, grefs, readOnly) {
      const fd = gntdev();
      const index = gntdevMapGrantRef(fd, domid, grefs);
      try {
        if (readOnly) mapPagesReadOnly(layout.memory, layout, address, fd, index, grefs.length * PAGE);
        else mapPages(layout.memory, layout, address, fd, index, grefs.length * PAGE);
      } catch (err) {
        try { gntdevUnmapGrantRef(fd, index, grefs.length); } catch { /* the fd's close frees it */ }
        throw err;
      }
      return { index };
    },
    unmapForeign(address, index, count) {
      // munmap first: gntdev refuses UNMAP_GRANT_REF while the pages are mapped.
      unmapPages(layout.memory, layout, address, count * PAGE);
      gntdevUnmapGrantRef(gntdev(), index, count);
    },
    close() {
      closeSync(gntallocFd);
      if (gntdevFd !== undefined) closeSync(gntdevFd);
    },
  };
}
