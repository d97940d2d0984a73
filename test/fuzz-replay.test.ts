/**
 * The fuzzers in CI: every saved case under test/fixtures/fuzz/<target>/ is
 * replayed (forever: a case stays once written), and each target runs for a
 * short, seeded budget. A long campaign is `npx xenpv fuzz <target> --time 600`.
 */
import { describe, expect, it } from 'vitest';
import { listFixtures, loadFixture } from '../tools/fuzz/fixtures.js';
import { replayCase, runFuzz } from '../tools/fuzz/runner.js';
import { loadTarget, TARGET_NAMES } from '../tools/fuzz/targets/index.js';
import { toJson } from '../tools/fuzz/serialize.js';

/** Cases per target in CI; `FUZZ_RUNS` overrides (e.g. 20 for a quick local run). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
/** The driver targets run a whole xenbus handshake and teardown per case (about 10 ms of CPU each): fewer cases. */
const DRIVER_RUNS: Record<string, number> = { frontend: 60, backend: 100 };
const runsFor = (name: string): number => (process.env.FUZZ_RUNS ? RUNS : DRIVER_RUNS[name] ?? RUNS);
/** Fixed seed so CI is reproducible; `FUZZ_SEED` overrides. */
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

describe('saved fuzz cases replay', () => {
  const saved = listFixtures();
  it('names a known target in every saved case', () => {
    for (const { target } of saved) expect(TARGET_NAMES).toContain(target);
  });
  for (const { target, file } of saved) {
    it(`${target}: ${file.split('/').pop()}`, async () => {
      const rec = loadFixture(file);
      expect(rec.target).toBe(target);
      const t = await loadTarget(target);
      const harness = await t.setup();
      try {
        await replayCase(t, harness, rec.case);
      } finally {
        await harness.dispose?.();
      }
    });
  }
});

describe('fuzz targets, short seeded budget', () => {
  for (const name of TARGET_NAMES) {
    it(`${name}: ${runsFor(name)} cases from seed ${SEED} hold every invariant`, async () => {
      const lines: string[] = [];
      const t = await loadTarget(name);
      const result = await runFuzz(t, { seed: SEED, runs: runsFor(name), timeSec: 20, save: false, progressMs: 0, watchdogMs: 0, log: (l) => lines.push(l) });
      if (result.failed) {
        throw new Error(`${lines.join('\n')}\ncase: ${toJson(result.counterexample)}`);
      }
      expect(result.cases).toBeGreaterThan(0);
    });
  }
});
