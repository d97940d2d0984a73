/**
 * The target table. Each target is its own module, loaded on demand so a
 * target whose prerequisites are missing does not break the others.
 * `frontend` and `backend` (hostile peers against our drivers) plug in here
 * as two more lines once src/blkfront and src/blkback exist.
 */
import type { FuzzTarget } from '../target.js';

export const TARGETS: Record<string, () => Promise<FuzzTarget<any>>> = {
  ring: async () => (await import('./ring.js')).ringTarget,
  blkif: async () => (await import('./blkif.js')).blkifTarget,
  xenstore: async () => (await import('./xenstore.js')).xenstoreTarget,
};

export const TARGET_NAMES = Object.keys(TARGETS);

export async function loadTarget(name: string): Promise<FuzzTarget<any>> {
  const load = TARGETS[name];
  if (!load) throw new Error(`unknown fuzz target '${name}' (have: ${TARGET_NAMES.join(', ')})`);
  return load();
}
