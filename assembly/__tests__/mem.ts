// Test memory for the as-pect specs: one static, 4096-aligned arena that each
// test clears. Offsets below are fixed so failing tests can be read by hand.
export const ARENA: usize = memory.data(20 * 4096 + 4096, 4096);
export const ARENA_BYTES: usize = 20 * 4096;
/** Shared ring pages (up to 16). */
export const SRING: usize = ARENA;
/** Private tables after the ring pages. */
export const STATE: usize = ARENA + 16 * 4096;
export const SHADOW: usize = STATE + 64;
export const DESCS: usize = STATE + 1024;
export const SEGS: usize = STATE + 2048;
export const COMPS: usize = STATE + 4096;
export const EXPECT: usize = STATE + 2 * 4096;
export const SCRATCH: usize = STATE + 3 * 4096;

export function clearArena(): void {
  memory.fill(ARENA, 0, ARENA_BYTES);
}

/** Byte-for-byte equality of two regions. */
export function sameBytes(a: usize, b: usize, n: usize): bool {
  return memory.compare(a, b, n) == 0;
}
