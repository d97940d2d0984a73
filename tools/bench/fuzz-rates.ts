/**
 * The "fuzz rates" bench family: each fuzz target run for a bounded time from
 * a fixed seed (the same cases every run), reported as cases per second, with
 * the process CPU time each case took (on a shared machine wall-clock rates
 * move with the load; CPU per case much less).
 *
 * A run that finds a failure is not a rate: it is reported as `failed` (and
 * nothing is saved under test/fixtures; replay it with `xenpv fuzz`).
 */
import { runFuzz } from '../fuzz/runner.js';
import { loadTarget, TARGET_NAMES } from '../fuzz/targets/index.js';
import { barChart } from './svg.js';
import type { Family } from './family.js';

export interface FuzzRate {
  target: string;
  seed: number;
  cases: number;
  seconds: number;
  casesPerSecond: number;
  /** Process CPU time (user + system, all threads) per case, µs. */
  cpuUsPerCase: number;
  /**
   * Share of a case's wall time the process was not on a CPU: what cases
   * wait on (timers, real timeouts) plus, on a busy machine, waiting for a
   * core. Near 0: the rate is CPU-bound.
   */
  offCpuPct: number;
  failed: boolean;
}

export interface FuzzRatesOptions {
  /** Seconds per target (default 5). */
  seconds?: number;
  /** Default: every target. */
  targets?: readonly string[];
  /** Default 1. */
  seed?: number;
  /** Called before each target (progress). */
  onTarget?: (name: string, index: number, total: number) => void;
}

export async function runFuzzRates(opts: FuzzRatesOptions = {}): Promise<FuzzRate[]> {
  const names = opts.targets ?? TARGET_NAMES;
  const seconds = opts.seconds ?? 5;
  const seed = opts.seed ?? 1;
  const rows: FuzzRate[] = [];
  for (const [i, name] of names.entries()) {
    opts.onTarget?.(name, i, names.length);
    const target = await loadTarget(name);
    const cpu0 = process.cpuUsage();
    const r = await runFuzz(target, { seed, timeSec: seconds, save: false, progressMs: 0, log: () => undefined });
    const cpu = process.cpuUsage(cpu0);
    const wallUs = r.cases ? (r.elapsedMs * 1000) / r.cases : 0;
    const cpuUs = r.cases ? (cpu.user + cpu.system) / r.cases : 0;
    rows.push({
      target: name,
      seed,
      cases: r.cases,
      seconds: r.elapsedMs / 1000,
      casesPerSecond: r.casesPerSecond,
      cpuUsPerCase: Math.round(cpuUs),
      offCpuPct: wallUs > 0 ? Math.max(0, Math.round(100 * (1 - cpuUs / wallUs))) : 0,
      failed: r.failed,
    });
  }
  return rows;
}

/** One bar per target: wall time per case (1 / rate), lower is better. */
export function fuzzRatesSvg(rows: readonly FuzzRate[], title = 'xenpv fuzz targets: time per case'): string {
  return barChart(title, rows.map((r) => ({
    name: `${r.target} (${r.casesPerSecond}/s)`,
    values: [{ engine: 'wall', value: r.casesPerSecond > 0 ? 1e6 / r.casesPerSecond : 0 }, { engine: 'cpu', value: r.cpuUsPerCase }],
  })), { unit: 'µs', axis: 'µs per case, wall and CPU (lower is better)', colors: { wall: '#654ff0', cpu: '#f0a020' } });
}

/** Rows for a text table. */
export function fuzzRatesTable(rows: readonly FuzzRate[]): string {
  const head = `${'target'.padEnd(10)} ${'cases'.padStart(7)} ${'s'.padStart(5)} ${'cases/s'.padStart(8)} ${'cpu µs/case'.padStart(12)} ${'off-cpu'.padStart(8)}`;
  return [head, ...rows.map((r) => `${r.target.padEnd(10)} ${String(r.cases).padStart(7)} ${r.seconds.toFixed(1).padStart(5)} ${String(r.casesPerSecond).padStart(8)} ${String(r.cpuUsPerCase).padStart(12)} ${`${r.offCpuPct}%`.padStart(8)}${r.failed ? '  FAILED' : ''}`)].join('\n');
}

/** The `fuzz` family of `xenpv bench`: every target for a bounded time, seed 1. */
export const fuzzRates: Family = {
  name: 'fuzz',
  help: 'cases/s and CPU per case of every fuzz target (seed 1, nothing saved)',
  svgFile: 'bench-fuzz.svg',
  async run({ quick, out, signal }) {
    signal.throwIfAborted();
    const rows = await runFuzzRates({ seconds: quick ? 1 : 10, seed: 1, onTarget: (name, i, n) => out.progress(`fuzz ${name}`, i, n) });
    return { results: rows, table: fuzzRatesTable(rows), svg: fuzzRatesSvg(rows) };
  },
};
