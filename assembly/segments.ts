/**
 * Segment arrays (struct blkif_request_segment[], io/blkif.h): the request
 * seg[11] area, the back's copies, indirect pages. Copy with pads cleared,
 * and the sector-range check first_sect ≤ last_sect ≤ 7, branch-free.
 *
 * Segment, 8 bytes:
 *
 * ```
 *  0           4            5           6     8
 *  +-----------+------------+-----------+-----+
 *  | gref u32  | first_sect | last_sect | pad |
 *  +-----------+------------+-----------+-----+
 * ```
 *
 * The Wasm builds (asconfig.json: release and debug) enable SIMD and move two
 * segments per v128; a build without it (the as-pect specs) compiles the
 * scalar loops instead, same results byte for byte. The request-sized
 * helpers (n ≤ 11) are unrolled into five guarded pairs at constant offsets
 * plus the odd last segment.
 */
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_SEGMENT_BYTES, SECTORS_PER_PAGE } from './constants';
import { BAD_SECTOR_RANGE, OK } from './status';

/** Keeps gref, first_sect, last_sect of a segment; clears its pad u16. */
@inline export const SEGMENT_PAD_MASK: u64 = 0x0000_ffff_ffff_ffff;

/** Copy one segment, clearing its pad: every segment we write has pad 0. */
@inline export function copySegment(src: usize, dst: usize): void {
  store<u64>(dst, load<u64>(src) & SEGMENT_PAD_MASK);
}

/**
 * Sector-range check of one segment, folded into a running i32 without a
 * branch: the result is negative iff first_sect > last_sect (last − first < 0)
 * or last_sect ≥ 8 (last + 0x7fff_fff8 reaches the sign bit). OR-ing these
 * over a segment array and testing the sign once gives the same answer as
 * checking them one by one: every failing segment yields BAD_SECTOR_RANGE.
 */
@inline export function sectorCheck(first: u32, last: u32): i32 {
  return (<i32>last - <i32>first) | <i32>(last + (0x8000_0000 - SECTORS_PER_PAGE));
}

/** sectorCheck of a segment given as the u64 read from it (first_sect at bits 32..39, last_sect at 40..47). */
@inline export function segmentCheck(seg: u64): i32 {
  const hi = <u32>(seg >> 32);
  return sectorCheck(hi & 0xff, (hi >> 8) & 0xff);
}

// ---- segment arrays, two segments per v128 when SIMD is enabled ----
//
// A v128 holds two segments: bytes 0..7 and 8..15, each `gref u32, first
// u8 @4, last u8 @5, pad u16 @6`. Within the u16 lane at byte 4 (first |
// last << 8), a logical shift right by 8 puts `last` under `first`, so
// i8x16.sub_sat_u(v, v >> 8) is non-zero at byte 4 exactly when first >
// last. last ≥ 8 shows as any of bits 3..7 of byte 5; OR-ing the raw
// vectors keeps them. One any_true over both accumulators, masked to those
// bytes, gives the verdict for the whole array (every bad segment yields the
// same BAD_SECTOR_RANGE, so which one failed first does not matter). An odd
// last segment is loaded with load64_zero: its zero upper half passes.
// Without SIMD (the as-pect build), the scalar loops do the same.

/** first > last, as a non-zero byte 4 (and 12) of the result. */
@inline export function pairOrder(v: v128): v128 { return i8x16.sub_sat_u(v, i16x8.shr_u(v, 8)); }

/** True if the accumulated order / raw vectors show a bad segment. */
@inline export function pairsBad(order: v128, raw: v128): bool {
  const firstBytes = i64x2.splat(0x0000_00ff_0000_0000); // byte 4 of each segment
  const lastHighBits = i64x2.splat(0x0000_f800_0000_0000); // last ≥ 8: bits 3..7 of byte 5
  return v128.any_true(v128.or(v128.and(order, firstBytes), v128.and(raw, lastHighBits)));
}

/** Sector ranges of `n` segments at `segs`: OK or BAD_SECTOR_RANGE. */
@inline export function checkSegments(segs: usize, n: u32): i32 {
  if (ASC_FEATURE_SIMD) {
    let order = i64x2.splat(0);
    let raw = i64x2.splat(0);
    let i: u32 = 0;
    for (; i + 2 <= n; i += 2) {
      const v = v128.load(segs + <usize>(i << 3));
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (i < n) {
      const v = v128.load64_zero(segs + <usize>(i << 3));
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    return pairsBad(order, raw) ? BAD_SECTOR_RANGE : OK;
  } else {
    let acc: i32 = 0;
    for (let i: u32 = 0; i < n; i++) {
      const fl = <u32>load<u16>(segs + <usize>(i * BLKIF_SEGMENT_BYTES), 4); // first | last << 8
      acc |= sectorCheck(fl & 0xff, fl >> 8);
    }
    return acc < 0 ? BAD_SECTOR_RANGE : OK;
  }
}

/** checkSegments for a request's seg[] (n ≤ 11), unrolled like copySegmentsChecked. */
@inline export function checkRequestSegments(segs: usize, n: u32): i32 {
  if (ASC_FEATURE_SIMD) {
    let order = i64x2.splat(0);
    let raw = i64x2.splat(0);
    if (n >= 2) {
      const v = v128.load(segs, 0);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 4) {
      const v = v128.load(segs, 16);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 6) {
      const v = v128.load(segs, 32);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 8) {
      const v = v128.load(segs, 48);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 10) {
      const v = v128.load(segs, 64);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n & 1) {
      const v = v128.load64_zero(segs + <usize>((n - 1) << 3));
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    return pairsBad(order, raw) ? BAD_SECTOR_RANGE : OK;
  } else {
    return checkSegments(segs, n);
  }
}

/**
 * Copy `n` segments from `src` to `dst` (pads cleared), reading each once,
 * and return the sector-range check of the values copied (negative: some
 * segment is bad). Checking the registers that were stored is checking the
 * copy: a peer rewriting `src` meanwhile cannot change the verdict.
 */
@inline export function copySegmentsChecked(src: usize, dst: usize, n: u32): i32 {
  if (ASC_FEATURE_SIMD) {
    // n ≤ 11: five guarded pairs at constant offsets (no loop counter or
    // address arithmetic), then the odd last segment.
    const padMask = i64x2.splat(<i64>SEGMENT_PAD_MASK);
    let order = i64x2.splat(0);
    let raw = i64x2.splat(0);
    if (n >= 2) {
      const v = v128.load(src, 0);
      v128.store(dst, v128.and(v, padMask), 0);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 4) {
      const v = v128.load(src, 16);
      v128.store(dst, v128.and(v, padMask), 16);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 6) {
      const v = v128.load(src, 32);
      v128.store(dst, v128.and(v, padMask), 32);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 8) {
      const v = v128.load(src, 48);
      v128.store(dst, v128.and(v, padMask), 48);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n >= 10) {
      const v = v128.load(src, 64);
      v128.store(dst, v128.and(v, padMask), 64);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    if (n & 1) {
      const off = <usize>((n - 1) << 3);
      const v = v128.load64_zero(src + off);
      v128.store64_lane(dst + off, v128.and(v, padMask), 0);
      order = v128.or(order, pairOrder(v));
      raw = v128.or(raw, v);
    }
    return pairsBad(order, raw) ? -1 : 0;
  } else {
    let acc: i32 = 0;
    for (let i: u32 = 0; i < n; i++) {
      const off = <usize>(i * BLKIF_SEGMENT_BYTES);
      const seg = load<u64>(src + off);
      store<u64>(dst + off, seg & SEGMENT_PAD_MASK);
      acc |= segmentCheck(seg);
    }
    return acc;
  }
}

/**
 * Write a request's 88-byte seg[11] area at `tail`: `n` ≤ 11 segments from
 * `segs` (pads cleared), zero after them; every byte stored once.
 */
@inline export function encodeSegmentArea(segs: usize, tail: usize, n: u32): void {
  if (ASC_FEATURE_SIMD) {
    const padMask = i64x2.splat(<i64>SEGMENT_PAD_MASK);
    const zero = i64x2.splat(0);
    if (n >= 2) v128.store(tail, v128.and(v128.load(segs, 0), padMask), 0);
    else if (n == 1) v128.store(tail, v128.and(v128.load64_zero(segs, 0), padMask), 0);
    else v128.store(tail, zero, 0);
    if (n >= 4) v128.store(tail, v128.and(v128.load(segs, 16), padMask), 16);
    else if (n == 3) v128.store(tail, v128.and(v128.load64_zero(segs, 16), padMask), 16);
    else v128.store(tail, zero, 16);
    if (n >= 6) v128.store(tail, v128.and(v128.load(segs, 32), padMask), 32);
    else if (n == 5) v128.store(tail, v128.and(v128.load64_zero(segs, 32), padMask), 32);
    else v128.store(tail, zero, 32);
    if (n >= 8) v128.store(tail, v128.and(v128.load(segs, 48), padMask), 48);
    else if (n == 7) v128.store(tail, v128.and(v128.load64_zero(segs, 48), padMask), 48);
    else v128.store(tail, zero, 48);
    if (n >= 10) v128.store(tail, v128.and(v128.load(segs, 64), padMask), 64);
    else if (n == 9) v128.store(tail, v128.and(v128.load64_zero(segs, 64), padMask), 64);
    else v128.store(tail, zero, 64);
    if (n == BLKIF_MAX_SEGMENTS_PER_REQUEST) store<u64>(tail, load<u64>(segs, 80) & SEGMENT_PAD_MASK, 80);
    else store<u64>(tail, 0, 80);
  } else {
    for (let i: u32 = 0; i < n; i++) copySegment(segs + <usize>(i << 3), tail + <usize>(i << 3));
    for (let i: u32 = n; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) store<u64>(tail + <usize>(i << 3), 0);
  }
}

/** Zero `words` u64 words at `at` (unrolled by the optimiser for constant counts). */
@inline export function zeroWords64(at: usize, words: u32): void {
  for (let i: u32 = 0; i < words; i++) store<u64>(at + <usize>(i << 3), 0);
}
