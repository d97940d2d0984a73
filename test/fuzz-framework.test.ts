/**
 * The fuzz framework itself (tools/fuzz): determinism, shrinking, saved
 * cases, deadlines, and BigInt-safe serialisation — on synthetic targets,
 * so a failure here is the framework's, not a driver's.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadFixture } from '../tools/fuzz/fixtures.js';
import { fuzzMain } from '../tools/fuzz/index.js';
import { replayCase, runFuzz } from '../tools/fuzz/runner.js';
import { fromJson, toJson } from '../tools/fuzz/serialize.js';
import { check, FuzzViolation, type FuzzHarness, type FuzzTarget } from '../tools/fuzz/target.js';

type Op = { k: 'add'; n: bigint } | { k: 'bytes'; b: Uint8Array };

/** Fails when the running sum of `add` ops reaches 1000 or more (a bug needing a sequence). */
function sumTarget(seen?: Op[][]): FuzzTarget<Op[]> {
  return {
    name: 'synthetic-sum',
    summary: 'test target',
    caseDeadlineMs: 1000,
    async setup(): Promise<FuzzHarness<Op[]>> {
      return {
        arbitrary: fc.array(fc.oneof(
          fc.record({ k: fc.constant('add' as const), n: fc.bigInt({ min: 0n, max: 600n }) }),
          fc.record({ k: fc.constant('bytes' as const), b: fc.uint8Array({ maxLength: 4 }) }),
        ), { maxLength: 10 }),
        format: (ops) => ops.map((o) => (o.k === 'add' ? `add ${o.n}` : `bytes ${Buffer.from(o.b).toString('hex')}`)).join('\n'),
        runCase(ops) {
          seen?.push(ops);
          let sum = 0n;
          for (const o of ops) if (o.k === 'add') sum += o.n;
          check(sum < 1000n, `sum reached ${sum}`);
        },
      };
    },
  };
}

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'xenpv-fuzz-')); dirs.push(d); return d; };

describe('fuzz runner', () => {
  it('generates the same cases from the same seed', async () => {
    const a: Op[][] = [];
    const b: Op[][] = [];
    await runFuzz(sumTarget(a), { seed: 42, runs: 30, save: false, log: () => undefined, watchdogMs: 0 });
    await runFuzz(sumTarget(b), { seed: 42, runs: 30, save: false, log: () => undefined, watchdogMs: 0 });
    expect(toJson(a)).toBe(toJson(b));
  });

  it('shrinks a failing sequence, prints it with seed and path, and saves a replayable record', async () => {
    const dir = tmp();
    const lines: string[] = [];
    const target = sumTarget();
    const r = await runFuzz(target, { seed: 7, runs: 2000, fixturesDir: dir, log: (l) => lines.push(l), watchdogMs: 0 });
    expect(r.failed).toBe(true);
    const ops = r.counterexample as Op[];
    // Minimal: only add ops, and removing any one would make the sum < 1000.
    expect(ops.every((o) => o.k === 'add')).toBe(true);
    const total = ops.reduce((s, o) => s + (o as { n: bigint }).n, 0n);
    expect(total).toBe(1000n);
    expect(lines.join('\n')).toMatch(/seed 7, path \d+(:\d+)*/);
    expect(lines.join('\n')).toContain('minimal case:');
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    const rec = loadFixture(join(dir, files[0]));
    expect(rec.target).toBe('synthetic-sum');
    expect(rec.seed).toBe(7);
    expect(rec.path).toBe(r.path);
    expect(rec.case).toEqual(ops);
    expect(readFileSync(join(dir, files[0]), 'utf8')).toContain('"$bigint"');
    const harness = await target.setup();
    await expect(replayCase(target, harness, rec.case)).rejects.toThrow(/sum reached 1000/);
  });

  it('replays a search from its seed and path', async () => {
    const first = await runFuzz(sumTarget(), { seed: 11, runs: 2000, save: false, log: () => undefined, watchdogMs: 0 });
    expect(first.failed).toBe(true);
    const again = await runFuzz(sumTarget(), { seed: 11, path: first.path, runs: 2000, save: false, log: () => undefined, watchdogMs: 0 });
    expect(again.failed).toBe(true);
    expect(toJson(again.counterexample)).toBe(toJson(first.counterexample));
  });

  it('fails a case that never settles, by its deadline', async () => {
    const hang: FuzzTarget<number> = {
      name: 'synthetic-hang', summary: '', caseDeadlineMs: 50,
      async setup() {
        return { arbitrary: fc.nat(), format: String, runCase: (n: number) => (n > 5 ? new Promise<void>(() => undefined) : undefined) };
      },
    };
    const r = await runFuzz(hang, { seed: 1, runs: 100, save: false, log: () => undefined, watchdogMs: 0 });
    expect(r.failed).toBe(true);
    expect(r.error).toMatch(/deadline of 50 ms/);
    expect(r.counterexample).toBe(6);
  });

  it('fails a synchronous case that overran its deadline', async () => {
    const slow: FuzzTarget<number> = {
      name: 'synthetic-slow', summary: '', caseDeadlineMs: 20,
      async setup() {
        return { arbitrary: fc.nat(), format: String, runCase: (n: number) => { const end = Date.now() + (n > 3 ? 40 : 0); while (Date.now() < end) { /* spin */ } } };
      },
    };
    const r = await runFuzz(slow, { seed: 1, runs: 50, save: false, log: () => undefined, watchdogMs: 0 });
    expect(r.failed).toBe(true);
    expect(r.error).toMatch(/DeadlineExceeded/);
  });

  it('does not fail a case that overran once but not when re-run (a machine stall)', async () => {
    // The stall is simulated on the clock the deadline reads (10 s jump on
    // the first run of the first case), not spun in real time: a loaded
    // machine cannot make a normal case overrun a 5 s budget, so the test
    // sees exactly one overrun however slow the machine is.
    const realNow = performance.now.bind(performance);
    let offset = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + offset);
    let stalled = false;
    const t: FuzzTarget<number> = {
      name: 'synthetic-stall', summary: '', caseDeadlineMs: 5_000,
      async setup() {
        return {
          arbitrary: fc.nat(), format: String,
          runCase: () => { if (!stalled) { stalled = true; offset += 10_000; } },
        };
      },
    };
    const lines: string[] = [];
    try {
      const r = await runFuzz(t, { seed: 1, runs: 20, save: false, log: (l) => lines.push(l), watchdogMs: 0 });
      expect(r.failed).toBe(false);
      expect(r.cases).toBe(20);
    } finally {
      clock.mockRestore();
    }
    expect(lines.join('\n')).toMatch(/1 case\(s\) overran the deadline once/);
  });

  it('reports a violation thrown as FuzzViolation with its detail', async () => {
    const t: FuzzTarget<number> = {
      name: 'synthetic-detail', summary: '', caseDeadlineMs: 100,
      async setup() {
        return { arbitrary: fc.constant(1), format: String, runCase: () => { throw new FuzzViolation('bad', { want: 1n, got: 2n }); } };
      },
    };
    const r = await runFuzz(t, { seed: 1, runs: 1, save: false, log: () => undefined, watchdogMs: 0 });
    expect(r.error).toContain('FuzzViolation: bad');
    expect(r.error).toContain('"$bigint": "2"');
  });
});

describe('fuzz case serialisation', () => {
  it('round-trips BigInt, bytes, undefined in arrays, -0 and NaN', () => {
    const v = { a: 1n << 64n, b: new Uint8Array([0, 255, 16]), c: [undefined, 1, -0, NaN], d: 'x', e: { f: -5n } };
    const back = fromJson(toJson(v)) as typeof v;
    expect(back.a).toBe(1n << 64n);
    expect(Array.from(back.b)).toEqual([0, 255, 16]);
    expect(back.c[0]).toBeUndefined();
    expect(Object.is(back.c[2], -0)).toBe(true);
    expect(Number.isNaN(back.c[3])).toBe(true);
    expect(back.e.f).toBe(-5n);
  });
});

describe('xenpv fuzz command line', () => {
  it('rejects an unknown target with exit code 2', async () => {
    expect(await fuzzMain(['no-such-target', '--runs', '1'])).toBe(2);
  });
  it('rejects a malformed --runs with exit code 2', async () => {
    expect(await fuzzMain(['ring', '--runs', 'lots'])).toBe(2);
  });
});
