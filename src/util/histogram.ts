/**
 * A cheap latency histogram: log-linear buckets (HdrHistogram's idea, in
 * small): values are integers (microseconds here); each power of two is cut
 * into SUB = 8 equal buckets, so a percentile is known to within 1/8 of its
 * value (12.5 %), in a fixed 8 × 32 counters whatever the number of samples.
 * Recording is a clz32, a shift and an increment; nothing is sorted.
 *
 *   value v < 8         bucket v                       (exact)
 *   value v >= 8        e = floor(log2 v) (>= 3), m = (v >> (e - 3)) & 7
 *                       bucket 8 + (e - 3) × 8 + m    covers [ (8+m)·2^(e-3), (9+m)·2^(e-3) )
 */
const SUB_BITS = 3;
const SUB = 1 << SUB_BITS;
const BUCKETS = SUB + (32 - SUB_BITS) * SUB;

export interface LatencySummary {
  count: number;
  /** Upper bounds of the buckets holding the 50th, 90th, 99th percentile; and the largest value seen. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private n = 0;
  private maxSeen = 0;

  /** Record one value (clamped to [0, 2^32 - 1], truncated to an integer). */
  record(value: number): void {
    const v = value <= 0 ? 0 : value >= 0xffffffff ? 0xffffffff : value >>> 0;
    this.counts[bucketOf(v)]!++;
    this.n++;
    if (v > this.maxSeen) this.maxSeen = v;
  }

  get count(): number {
    return this.n;
  }

  /** The smallest bucket upper bound with at least fraction `q` (0..1] of the values at or below it. */
  percentile(q: number): number {
    if (this.n === 0) return 0;
    const want = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= want) return Math.min(upperBound(b), this.maxSeen);
    }
    return this.maxSeen;
  }

  summary(): LatencySummary {
    return { count: this.n, p50: this.percentile(0.5), p90: this.percentile(0.9), p99: this.percentile(0.99), max: this.maxSeen };
  }
}

function bucketOf(v: number): number {
  if (v < SUB) return v;
  const e = 31 - Math.clz32(v);
  return SUB + (e - SUB_BITS) * SUB + ((v >>> (e - SUB_BITS)) & (SUB - 1));
}

/** Largest value that falls in bucket `b`. */
function upperBound(b: number): number {
  if (b < SUB) return b;
  const e = Math.floor((b - SUB) / SUB) + SUB_BITS;
  const m = (b - SUB) % SUB;
  return (SUB + m + 1) * 2 ** (e - SUB_BITS) - 1;
}
