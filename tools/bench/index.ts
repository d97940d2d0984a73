/**
 * `npm run bench`: the Wasm engine against its JS twin, in one process.
 *
 *   node dist/tools/bench/index.js [--json] [--out DIR] [--quick]
 *
 * Prints a table (median ns/op, ops/s, Wasm/JS speedup = JS ns ÷ Wasm ns);
 * `--json` prints the results as JSON instead. Progress goes to stderr.
 * Writes DIR/bench.json and DIR/bench.svg (default bench-results/).
 * Each engine runs over its own shared memory with identical tables; the
 * same engine calls are timed on both sides, warmed up, and the median of
 * interleaved samples is kept.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { createEngine } from '../../src/ring/index.js';
import { createSharedLayout } from '../../src/memory/layout.js';
import { CASES } from './cases.js';
import { measure } from './measure.js';
import { barChart } from './svg.js';

export interface BenchEntry {
  name: string;
  engine: 'wasm' | 'js';
  medianNsPerOp: number;
  opsPerSec: number;
  /** Wasm/JS speedup for this case: JS ns/op ÷ Wasm ns/op (> 1: Wasm faster). */
  speedup: number;
}

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const outIdx = args.indexOf('--out');
const outDir = outIdx >= 0 ? args[outIdx + 1]! : 'bench-results';
const opts = quick ? { sampleMs: 5, samples: 5, warmupMs: 50 } : { sampleMs: 25, samples: 15, warmupMs: 300 };

const progress = (s: string): void => {
  process.stderr.write(s);
};

const results: BenchEntry[] = [];
const started = Date.now();
for (const [i, c] of CASES.entries()) {
  progress(`[${i + 1}/${CASES.length}] ${c.name} ... `);
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
  progress(`wasm ${wasm!.medianNsPerOp.toFixed(1)} ns/op, js ${js!.medianNsPerOp.toFixed(1)} ns/op (${speedup.toFixed(2)}x)\n`);
}
progress(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

const meta = {
  node: process.version,
  v8: process.versions.v8,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  date: new Date().toISOString(),
  samples: opts.samples,
  sampleMs: opts.sampleMs,
};

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'bench.json'), JSON.stringify({ meta, results }, null, 2) + '\n');
const rows = CASES.map((c) => ({
  name: c.name,
  values: results.filter((r) => r.name === c.name).map((r) => ({ engine: r.engine, nsPerOp: r.medianNsPerOp })),
}));
writeFileSync(join(outDir, 'bench.svg'), barChart(`xenpv ring engines: Wasm vs JS twin (${meta.node}, ${meta.cpu})`, rows));
progress(`wrote ${join(outDir, 'bench.json')} and ${join(outDir, 'bench.svg')}\n`);

if (json) {
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
} else {
  const head = ['case', 'engine', 'median ns/op', 'ops/s', 'wasm/js speedup'];
  const body = results.map((r) => [
    r.name,
    r.engine,
    r.medianNsPerOp.toFixed(1),
    Math.round(r.opsPerSec).toLocaleString('en-US'),
    r.engine === 'wasm' ? `${r.speedup.toFixed(2)}x` : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${body.map(line).join('\n')}\n`);
}
