/**
 * `npm run bench`: the Wasm engine against its JS twin, in one process.
 *
 *   xenpv bench [--json] [--out DIR] [--quick]
 *
 * Prints a table (median ns/op, ops/s, Wasm/JS speedup = JS ns ÷ Wasm ns);
 * `--json` prints the results as JSON instead. Progress goes to stderr.
 * Writes DIR/bench.json and DIR/bench.svg (default bench-results/).
 * Each engine runs over its own shared memory with identical tables; the
 * same engine calls are timed on both sides, warmed up, and the median of
 * interleaved samples is kept.
 */
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import os from 'node:os';
import { createEngine } from '../../src/ring/index.js';
import { createSharedLayout } from '../../src/memory/layout.js';
import { CASES } from './cases.js';
import { measure } from './measure.js';
import { barChart } from './svg.js';
import { IoError } from '../../src/errors.js';
import { defineCommand, EXIT_OK, usageError, type Output } from '../command.js';

export interface BenchEntry {
  name: string;
  engine: 'wasm' | 'js';
  medianNsPerOp: number;
  opsPerSec: number;
  /** Wasm/JS speedup for this case: JS ns/op ÷ Wasm ns/op (> 1: Wasm faster). */
  speedup: number;
}

export const main = defineCommand({
  name: 'bench',
  synopsis: '[--quick] [--out DIR] [--json]',
  description: `Benchmark the Wasm ring engine against its TypeScript twin in this process:
codec encode/decode with 1 and 11 segments; produce -> consume -> respond ->
reap round trips at batch 1, 8, 32. Prints median ns/op, ops/s and the
Wasm/JS speedup (JS ns / Wasm ns); writes DIR/bench.json and DIR/bench.svg.`,
  reports: true,
  options: {
    quick: { type: 'boolean', help: 'short samples (a smoke run; figures are rough)' },
    out: { type: 'string', arg: 'DIR', default: 'bench-results', help: 'where bench.json and bench.svg go' },
  },
}, async ({ values, out, signal }) => {
  if (values.out === '') throw usageError('--out', 'must name a directory');
  // Make sure the results can be written before spending a minute measuring.
  try {
    makeDir(resolve(values.out));
    accessSync(values.out, constants.W_OK);
  } catch (err) {
    throw new IoError(`--out ${values.out}: cannot write there: ${(err as Error).message}`, { cause: err });
  }
  const results = runBench(values.quick === true, out, signal);
  writeResults(values.out, results, values.quick === true, out);
  out.result(results, () => table(results));
  return EXIT_OK;
});

/**
 * mkdir -p, one level at a time: Node's recursive mkdirSync never returns on
 * some paths (under /proc it loops), and a bad --out must fail, not hang.
 */
function makeDir(dir: string): void {
  if (existsSync(dir)) return;
  const up = dirname(dir);
  if (up !== dir) makeDir(up);
  mkdirSync(dir);
}

function runBench(quick: boolean, out: Output, signal: AbortSignal): BenchEntry[] {
  const opts = quick ? QUICK : FULL;
  const results: BenchEntry[] = [];
  for (const [i, c] of CASES.entries()) {
    signal.throwIfAborted();
    out.progress(`[${i + 1}/${CASES.length}] ${c.name}`, i, CASES.length);
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
  out.progress('bench', CASES.length, CASES.length);
  return results;
}

const QUICK = { sampleMs: 5, samples: 5, warmupMs: 50 };
const FULL = { sampleMs: 25, samples: 15, warmupMs: 300 };

function writeResults(outDir: string, results: BenchEntry[], quick: boolean, out: Output): void {
  const opts = quick ? QUICK : FULL;
  const meta = {
    node: process.version,
    v8: process.versions.v8,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    date: new Date().toISOString(),
    samples: opts.samples,
    sampleMs: opts.sampleMs,
  };
  writeFileSync(join(outDir, 'bench.json'), JSON.stringify({ meta, results }, null, 2) + '\n');
  const rows = CASES.map((c) => ({
    name: c.name,
    values: results.filter((r) => r.name === c.name).map((r) => ({ engine: r.engine, nsPerOp: r.medianNsPerOp })),
  }));
  writeFileSync(join(outDir, 'bench.svg'), barChart(`xenpv ring engines: Wasm vs JS twin (${meta.node}, ${meta.cpu})`, rows));
  out.note(`wrote ${join(outDir, 'bench.json')} and ${join(outDir, 'bench.svg')}`);
}

function table(results: BenchEntry[]): string {
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
  return `${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${body.map(line).join('\n')}`;
}
