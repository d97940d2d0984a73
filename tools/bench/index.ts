/**
 * `npm run bench`: every benchmark family, one table and one SVG chart each.
 *
 *   xenpv bench [--micro] [--e2e] [--quick] [--out DIR] [--json]
 *
 * The flags pick families (none: all, in the order of FAMILIES). Prints
 * each family's table; `--json` prints `{ meta, families: { name: entries } }`
 * instead. Writes DIR/bench.json (the same object) and one chart per family
 * (DIR/bench.svg for micro, DIR/bench-<family>.svg for the others; default
 * DIR bench-results/). Progress goes to stderr when it is a TTY.
 */
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import os from 'node:os';
import { IoError } from '../../src/errors.js';
import { defineCommand, EXIT_OK, usageError } from '../command.js';
import { crossThread } from './cross-thread.js';
import { e2e } from './e2e.js';
import type { Family } from './family.js';
import { micro } from './micro.js';
import { fuzzRates } from './fuzz-rates.js';

/** The families, in the order they run. */
export const FAMILIES: readonly Family[] = [
  micro,
  crossThread,
  e2e,
  fuzzRates,
];

const familyOptions = Object.fromEntries(FAMILIES.map((f) => [f.name, { type: 'boolean' as const, help: `run the ${f.name} family: ${f.help}` }]));

export const main = defineCommand({
  name: 'bench',
  synopsis: `[${FAMILIES.map((f) => `--${f.name}`).join('] [')}] [--quick] [--out DIR] [--json]`,
  description: `Benchmark families, each with one table and one SVG chart:
  micro   the Wasm ring engine against its TypeScript twin, in this process
  cross-thread  one ring against a C null backend in another process,
          fronts Wasm, JS and C on ring.h (req/s, notifications/req)
  e2e     the simulated device (blkfront -> blkback worker -> file) on each
          engine, next to plain fs on the same kind of file
  fuzz    cases/s and CPU per case of every fuzz target
With no family flag, all run. Writes DIR/bench.json and the charts.`,
  reports: true,
  options: {
    ...familyOptions,
    quick: { type: 'boolean', help: 'short samples (a smoke run; figures are rough)' },
    out: { type: 'string', arg: 'DIR', default: 'bench-results', help: 'where bench.json and the charts go' },
  },
}, async ({ values, out, signal }) => {
  if (values.out === '') throw usageError('--out', 'must name a directory');
  const picked = FAMILIES.filter((f) => (values as Record<string, unknown>)[f.name] === true);
  const run = picked.length > 0 ? picked : FAMILIES;
  // Make sure the results can be written before spending minutes measuring.
  try {
    makeDir(resolve(values.out));
    accessSync(values.out, constants.W_OK);
  } catch (err) {
    throw new IoError(`--out ${values.out}: cannot write there: ${(err as Error).message}`, { cause: err });
  }
  const quick = values.quick === true;
  const meta = {
    node: process.version,
    v8: process.versions.v8,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadAverage: os.loadavg()[0],
    date: new Date().toISOString(),
    quick,
  };
  const families: Record<string, readonly unknown[]> = {};
  const tables: string[] = [];
  for (const f of run) {
    signal.throwIfAborted();
    const report = await f.run({ quick, out, signal });
    families[f.name] = report.results;
    tables.push(`== ${f.name}\n${report.table}`);
    writeFileSync(join(values.out, f.svgFile), report.svg);
    out.note(`wrote ${join(values.out, f.svgFile)}`);
  }
  const result = { meta, families };
  writeFileSync(join(values.out, 'bench.json'), JSON.stringify(result, null, 2) + '\n');
  out.note(`wrote ${join(values.out, 'bench.json')}`);
  out.result(result, () => tables.join('\n\n'));
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
