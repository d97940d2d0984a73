/**
 * `xenpv fuzz --coverage`, the fuzz-rates bench family and the event-driven
 * waits the driver targets use. The coverage oracle is V8 itself run on a
 * file whose called and never-called functions we wrote by hand.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzzRatesSvg, fuzzRatesTable, runFuzzRates } from '../tools/bench/fuzz-rates.js';
import { readV8Coverage, summarise } from '../tools/fuzz/coverage.js';
import { eventually } from '../tools/fuzz/peers/world.js';
import { runCli } from './support/cli.js';

describe('coverage summary', () => {
  it('counts called and never-called functions and lines as V8 reported them, and lists files never loaded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-cov-'));
    try {
      const src = join(dir, 'dist', 'src');
      mkdirSync(join(src, 'sub'), { recursive: true });
      writeFileSync(join(src, 'used.js'), [
        'export function called(x) {',
        '  if (x > 0) return x;',
        '  return -x;',
        '}',
        'export function neverCalled() {',
        '  return 42;',
        '}',
        'called(1);',
        '',
      ].join('\n'));
      writeFileSync(join(src, 'sub', 'unused.js'), 'export const y = 1;\n');
      writeFileSync(join(dir, 'main.mjs'), `import '${join(src, 'used.js')}';\n`);
      const v8 = join(dir, 'v8');
      execFileSync(process.execPath, [join(dir, 'main.mjs')], { env: { ...process.env, NODE_V8_COVERAGE: v8 } });
      const r = summarise(src, readV8Coverage(v8, src));
      expect(r.files.map((f) => f.file)).toEqual(['src/used.ts']);
      const f = r.files[0]!;
      expect(f.functions).toBe(2);
      expect(f.functionsReached).toBe(1);
      expect(f.unreached).toEqual(['neverCalled@5']);
      // Counted lines: the 2 headers, 3 bodies and the call; `return -x` and `return 42` never ran.
      expect(f.lines).toBe(6);
      expect(f.linesReached).toBe(4);
      expect(r.functionPercent).toBe(50);
      expect(r.notLoaded).toEqual(['src/sub/unused.ts']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('xenpv fuzz ring --coverage reports the ring code reached and blkback never loaded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-cov-cli-'));
    try {
      const run = await runCli(['fuzz', 'ring', '--runs', '20', '--seed', '1', '--no-save', '--json', '--coverage-dir', dir], { timeoutMs: 120_000 });
      expect(run.code, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout) as { cases: number; coverage: { functionsReached: number; files: { file: string; functionsReached: number }[]; notLoaded: string[] } };
      expect(out.cases).toBe(20);
      expect(out.coverage.files.find((f) => f.file === 'src/ring/js/ring.ts')?.functionsReached).toBeGreaterThan(0);
      expect(out.coverage.notLoaded).toContain('src/blkback/blkback.ts');
      const saved = JSON.parse(readFileSync(join(dir, 'coverage-ring.json'), 'utf8')) as { target: string; functionsReached: number };
      expect(saved.target).toBe('ring');
      expect(saved.functionsReached).toBe(out.coverage.functionsReached);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('xenpv fuzz --coverage refuses an unknown target as a usage error', async () => {
    const run = await runCli(['fuzz', 'nosuch', '--coverage', '--runs', '1']);
    expect(run.code).toBe(2);
  });
});

describe('fuzz rates bench family', () => {
  it('runs a target for a bounded time from a seed and charts time per case', async () => {
    const rows = await runFuzzRates({ seconds: 1, targets: ['blkif'], seed: 7 });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.target).toBe('blkif');
    expect(rows[0]!.failed).toBe(false);
    expect(rows[0]!.cases).toBeGreaterThan(0);
    expect(rows[0]!.casesPerSecond).toBeGreaterThan(0);
    expect(rows[0]!.cpuUsPerCase).toBeGreaterThan(0);
    expect(rows[0]!.offCpuPct).toBeGreaterThanOrEqual(0);
    expect(rows[0]!.offCpuPct).toBeLessThanOrEqual(100);
    expect(fuzzRatesTable(rows)).toMatch(/^target .* off-cpu\nblkif .*%$/);
    const svg = fuzzRatesSvg(rows);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('blkif');
  });
});

describe('eventually', () => {
  it('ends one event-loop turn after its condition holds, not a timer step later', async () => {
    let ready = false;
    setImmediate(() => (ready = true));
    const t0 = Date.now();
    expect(await eventually(() => ready, 60_000, 30_000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('gives up after its time limit when the condition never holds', async () => {
    const t0 = Date.now();
    expect(await eventually(() => false, 50, 5)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
  });
});
