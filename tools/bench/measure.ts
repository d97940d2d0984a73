/**
 * Timing: calibrate an iteration count per engine so one sample takes about
 * `sampleMs`, warm up, then take `samples` samples alternating the two
 * engines (so drift hits both alike) and keep the median ns/op of each.
 */
export interface Timed {
  medianNsPerOp: number;
  samplesNsPerOp: number[];
}

const now = (): bigint => process.hrtime.bigint();

function time(run: (n: number) => void, n: number): number {
  const t0 = now();
  run(n);
  return Number(now() - t0);
}

/** Iterations that take about `ms` milliseconds. */
export function calibrate(run: (n: number) => void, ms: number): number {
  let n = 16;
  for (;;) {
    const ns = time(run, n);
    if (ns >= ms * 1e6 / 4 || n > 1 << 26) return Math.max(1, Math.round((n * ms * 1e6) / Math.max(ns, 1)));
    n *= 4;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface Contender {
  run: (n: number) => void;
  opsPerIteration: number;
}

/** Measure several contenders interleaved. */
export function measure(contenders: Contender[], opts: { sampleMs: number; samples: number; warmupMs: number }): Timed[] {
  // Warm up each (JIT tiers up, Wasm tiers up from Liftoff to TurboFan).
  for (const c of contenders) {
    const deadline = Date.now() + opts.warmupMs;
    while (Date.now() < deadline) c.run(256);
  }
  const iters = contenders.map((c) => calibrate(c.run, opts.sampleMs));
  const samples: number[][] = contenders.map(() => []);
  for (let s = 0; s < opts.samples; s++) {
    contenders.forEach((c, i) => {
      const ns = time(c.run, iters[i]!);
      samples[i]!.push(ns / (iters[i]! * c.opsPerIteration));
    });
  }
  return samples.map((xs) => ({ medianNsPerOp: median(xs), samplesNsPerOp: xs }));
}
