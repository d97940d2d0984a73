/**
 * What the hypervisor does after a domain dies (its thread is gone, so
 * nothing here races with the dead domain itself):
 *  - its ports are closed, so every peer end becomes unbound;
 *  - mappings it held of other domains' grants are dropped (pins cleared,
 *    GTF_reading/GTF_writing cleared), so those granters can end access;
 *  - its own grants are ended where nobody maps them. A page still mapped
 *    by a peer stays valid for that peer (as in Xen: the dead domain
 *    lingers as a zombie, slot state Dying) until the peer unmaps it; the
 *    slot is reclaimed by `reapSlot` once no pin is left.
 */
import type { DomId } from '../types.js';
import { SimEventChannels } from './evtchn.js';
import { GTF_reading, GTF_writing, entryIndex } from './grant-table.js';
import { SlotState, type PoolView } from './pool.js';

/** Close every port of dead domain `domid` (slot already Dying). */
export function releasePorts(view: PoolView, domid: DomId): void {
  new SimEventChannels(view, domid, {}, true).dispose();
}

/** Drop every pin `dead` holds on any slot's grants. Returns grefs released. */
export function releaseMappingsBy(view: PoolView, dead: DomId): number {
  let n = 0;
  for (let s = 0; s < view.maxDomains; s++) {
    if (view.slotState(s) === SlotState.Free) continue;
    const info = view.slotInfo(s);
    for (let g = 0; g < info.grantEntries; g++) {
      const e = entryIndex(view, info, g);
      if (Atomics.load(view.u32, e.pin) === 0) continue;
      if (Atomics.load(view.u16, e.flags + 1) !== dead) continue;
      // Pins first, then busy bits, as releaseGrant orders them.
      Atomics.store(view.u32, e.pin, 0);
      Atomics.and(view.u16, e.flags, ~(GTF_reading | GTF_writing) & 0xffff);
      n++;
    }
  }
  return n;
}

/** End every grant of `slot` that is not mapped. Returns the grefs still mapped. */
export function revokeGrants(view: PoolView, slot: number): number {
  const info = view.slotInfo(slot);
  let mapped = 0;
  for (let g = 0; g < info.grantEntries; g++) {
    const e = entryIndex(view, info, g);
    for (;;) {
      const flags = Atomics.load(view.u16, e.flags);
      if (flags === 0) break;
      if ((flags & (GTF_reading | GTF_writing)) !== 0) {
        mapped++;
        break;
      }
      if (Atomics.compareExchange(view.u16, e.flags, flags, 0) === flags) break;
    }
  }
  return mapped;
}

/** Free a Dying slot whose grants nobody maps any more. True if freed. */
export function reapSlot(view: PoolView, slot: number): boolean {
  if (view.slotState(slot) !== SlotState.Dying) return false;
  if (revokeGrants(view, slot) > 0) return false;
  const info = view.slotInfo(slot);
  // Zero the slot's own tables (event channels, grant entries, pins,
  // allocation bitmap) before the slot is offered again; data pages are
  // zeroed on allocation.
  view.zeroFrames(info.evtchnFrame, info.allocFrame - info.evtchnFrame + 1);
  view.setSlotState(slot, SlotState.Free);
  return true;
}
