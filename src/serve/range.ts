/**
 * The `Range` header (RFC 9110 section 14.1.2 / 14.2): a set of byte
 * ranges, `bytes=a-b`, `bytes=a-`, `bytes=-n`, separated by commas.
 *
 *   none           no header, another unit, bad syntax, a range whose last
 *                  byte is before its first, or more than MAX_RANGES
 *                  ranges: the header is ignored and the whole file is
 *                  sent (the RFC allows ignoring any of these)
 *   unsatisfiable  every range lies past the end (or is `-0`): 416
 *   ranges         the satisfiable ones, clamped to the file (end inclusive)
 *
 * Against range amplification (many overlapping ranges over one big
 * file): when two ranges overlap or touch, all of them are sorted and
 * merged (RFC 9110 14.6 lets a server coalesce "regardless of the order");
 * otherwise they stay in the order asked, as the RFC recommends. Either
 * way no byte is sent twice, so a multipart body is never larger than the
 * file plus MAX_RANGES part headers.
 */
export type RangeResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'unsatisfiable' }
  | { readonly kind: 'ranges'; readonly ranges: readonly ByteRange[] };

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

/** More range-specs than this and the header is ignored (Apache's MaxRanges is 200). */
export const MAX_RANGES = 64;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' };
  const m = /^bytes[ \t]*=[ \t]*(.*)$/i.exec(header.trim());
  if (m === null) return { kind: 'none' };
  // Empty list elements (`bytes=0-1,,2-3`) are allowed by the list rule (RFC 9110 5.6.1).
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0 || specs.length > MAX_RANGES) return { kind: 'none' };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const r = /^(\d*)-(\d*)$/.exec(spec);
    if (r === null || (r[1] === '' && r[2] === '')) return { kind: 'none' };
    if (r[1] === '') {
      // suffix-range: the last n bytes; `-0` is satisfiable by nothing.
      const suffix = Number(r[2]);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const start = Number(r[1]);
    if (r[2] !== '' && Number(r[2]) < start) return { kind: 'none' }; // invalid: the whole header is ignored
    if (start >= size) continue; // unsatisfiable on its own; others may still be
    ranges.push({ start, end: r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1) });
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'ranges', ranges: needsCoalescing(ranges) ? coalesce(ranges) : ranges };
}

function needsCoalescing(ranges: readonly ByteRange[]): boolean {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  return sorted.some((r, i) => i > 0 && r.start <= sorted[i - 1]!.end + 1);
}

function coalesce(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: { start: number; end: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}
