/**
 * The micro family: the Wasm engine against its JS twin, in this process
 * (codec encode/decode with 1 and 11 segments; produce -> consume ->
 * respond -> reap round trips at batch 1, 8, 32). Median ns/op, ops/s and
 * the Wasm/JS speedup (JS ns ÷ Wasm ns). Each engine runs over its own
 * shared memory with identical tables; the same engine calls are timed on
 * both sides, warmed up, and the median of interleaved samples is kept.
 */
import os from 'node:os';
import { createEngine } from '../../src/ring/index.js';
import { createSharedLayout } from '../../src/memory/layout.js';
import { CASES } from './cases.js';
import { measure } from './measure.js';
import { barChart } from './svg.js';
import { formatTable } from './e2e.js';
import type { Family, FamilyContext, FamilyReport } from './family.js';

export interface BenchEntry {
  name: string;
  engine: 'wasm' | 'js';
  medianNsPerOp: number;
  opsPerSec: number;
  /** Wasm/JS speedup for this case: JS ns/op ÷ Wasm ns/op (> 1: Wasm faster). */
  speedup: number;
}

const QUICK = { sampleMs: 5, samples: 5, warmupMs: 50 };
const FULL = { sampleMs: 25, samples: 15, warmupMs: 300 };

function runMicro({ quick, out, signal }: FamilyContext): BenchEntry[] {
  const opts = quick ? QUICK : FULL;
  const results: BenchEntry[] = [];
  for (const [i, c] of CASES.entries()) {
    signal.throwIfAborted();
    out.progress(`micro [${i + 1}/${CASES.length}] ${c.name}`, i, CASES.length);
    const contenders = (['wasm', 'js'] as const).map((kind) => {
      const layout = createSharedLayout({ scratchBytes: 1 << 16, poolPages: 16 });
      const engine = createEngine(kind, layout.memory);
      return { kind, run: c.prepare(engine, layout.poolBase), opsPerIteration: c.opsPerIteration };
    });
    const [wasm, js] = measure(contenders, opts);
    const speedup = js!.medianNsPerOp / wasm!.medianNsPerOp;
    for (const [kind, t] of [['wasm', wasm!], ['js', js!]] as const) {
      results.push({ name: c.name, engine: kind, medianNsPerOp: t.medianNsPerOp, opsPerSec: 1e9 / t.medianNsPerOp, speedup });
    }
  }
  out.progress('micro', CASES.length, CASES.length);
  return results;
}

function microTable(results: readonly BenchEntry[]): string {
  const head = ['case', 'engine', 'median ns/op', 'ops/s', 'wasm/js speedup'];
  const body = results.map((r) => [
    r.name,
    r.engine,
    r.medianNsPerOp.toFixed(1),
    Math.round(r.opsPerSec).toLocaleString('en-US'),
    r.engine === 'wasm' ? `${r.speedup.toFixed(2)}x` : '',
  ]);
  return formatTable(head, body, 2);
}

export const micro: Family = {
  name: 'micro',
  help: 'engine micro-benchmarks in this process (codecs, ring round trips)',
  svgFile: 'bench.svg',
  async run(ctx): Promise<FamilyReport> {
    const results = runMicro(ctx);
    const rows = CASES.map((c) => ({
      name: c.name,
      values: results.filter((r) => r.name === c.name).map((r) => ({ engine: r.engine, value: r.medianNsPerOp })),
    }));
    const title = `xenpv ring engines: Wasm vs JS twin (${process.version}, ${os.cpus()[0]?.model ?? 'unknown'})`;
    return { results, table: microTable(results), svg: barChart(title, rows, { unit: 'ns', axis: 'median ns/op (lower is better)' }) };
  },
};
