/**
 * The target table. Each target is its own module, loaded on demand so a
 * target whose prerequisites are missing does not break the others.
 * `frontend` and `backend` attack our drivers with the hostile peers in
 * ../peers/.
 */
import type { FuzzTarget } from '../target.js';

export const TARGETS: Record<string, () => Promise<FuzzTarget<any>>> = {
  ring: async () => (await import('./ring.js')).ringTarget,
  blkif: async () => (await import('./blkif.js')).blkifTarget,
  xenstore: async () => (await import('./xenstore.js')).xenstoreTarget,
  frontend: async () => (await import('./frontend.js')).frontendTarget,
  backend: async () => (await import('./backend.js')).backendTarget,
};

export const TARGET_NAMES = Object.keys(TARGETS);

export async function loadTarget(name: string): Promise<FuzzTarget<any>> {
  const load = TARGETS[name];
  if (!load) throw new Error(`unknown fuzz target '${name}' (have: ${TARGET_NAMES.join(', ')})`);
  return load();
}
