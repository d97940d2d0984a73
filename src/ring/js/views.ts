/**
 * Typed-array views over the engine's shared memory, created once.
 *
 * The memory is created with initial == maximum (src/memory/layout.ts), so
 * its buffer never changes and these views never go stale. Every address the
 * engine receives is a byte offset; a u16 field at byte `a` is `u16[a >>> 1]`,
 * a u32 field is `u32[a >>> 2]`. The contract's tables and Xen's wire structs
 * keep every multi-byte field naturally aligned (u64 fields as two u32 words,
 * 4-aligned, which is all the x86_32 ABI guarantees), so whole-word access is
 * always possible: callers pass 4-aligned table and slot addresses.
 *
 * Multi-byte values are read in the host's byte order; Xen's wire format is
 * little-endian and so is every host Node runs this package on (x86, arm64).
 */
export class Views {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i16: Int16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;

  constructor(memory: WebAssembly.Memory) {
    const buffer = memory.buffer;
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.i16 = new Int16Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.i32 = new Int32Array(buffer);
  }
}

/** Zero `bytes` (a multiple of 4) at the 4-aligned byte address `addr`. */
export function zeroWords(u32: Uint32Array, addr: number, bytes: number): void {
  const start = addr >>> 2;
  const end = start + (bytes >>> 2);
  // A short loop beats TypedArray.prototype.fill's call overhead for the
  // few dozen words of a slot tail.
  for (let i = start; i < end; i++) u32[i] = 0;
}
