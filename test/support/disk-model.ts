/**
 * Test support: a plain byte-array model of a disk, and random I/O built
 * from a seeded PRNG. The model is the oracle: it never goes through the
 * code under test.
 */

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

export function randomBytes(rnd: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

/**
 * Split `bytes` into 1..4 buffers of whole sectors, each a subarray at an
 * odd offset of a larger allocation (any alignment, scatter/gather).
 */
export function scatter(rnd: () => number, bytes: Uint8Array, sectorSize: number): Uint8Array[] {
  const sectors = bytes.length / sectorSize;
  const parts = Math.min(sectors, randInt(rnd, 1, 4));
  const cuts = new Set<number>();
  while (cuts.size < parts - 1) cuts.add(randInt(rnd, 1, sectors - 1));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), sectors];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const len = (bounds[i + 1]! - bounds[i]!) * sectorSize;
    const pad = randInt(rnd, 1, 7);
    const backing = new Uint8Array(len + pad + 3);
    const view = backing.subarray(pad, pad + len);
    view.set(bytes.subarray(bounds[i]! * sectorSize, bounds[i + 1]! * sectorSize));
    out.push(view);
  }
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Disjoint extents [start, start+len) in sectors, shuffled, covering at most the device. */
export function disjointExtents(rnd: () => number, sizeSectors: number, count: number, maxLen: number): [number, number][] {
  const slot = Math.floor(sizeSectors / count);
  if (slot < 1) throw new Error('device too small for that many extents');
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const len = randInt(rnd, 1, Math.min(maxLen, slot));
    const start = i * slot + randInt(rnd, 0, slot - len);
    out.push([start, len]);
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rnd, 0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
