import { describe, expect, it } from 'vitest';
import { createOutput } from '../tools/command.js';
import { crossThreadSvg, crossThreadTable, DEPTHS, FRONTS, runCrossThread, runSession, type Front } from '../tools/bench/cross-thread.js';

const quiet = createOutput(false, true);
const COUNT = { 1: 1_500, 8: 6_000, 32: 12_000 } as Record<number, number>;

describe('bench cross-thread family: one ring against the C null backend (no speed is asserted)', () => {
  it('every front completes every request, each answered once with its own id, and the event counts are consistent', async () => {
    const results = await runCrossThread(
      { rounds: 1, count: (d) => COUNT[d]!, warmup: 2_000, spinUs: 0 },
      quiet,
      new AbortController().signal,
    );
    expect(results.map((r) => `${r.front}/${r.depth}`)).toEqual(DEPTHS.flatMap((d) => FRONTS.map((f) => `${f}/${d}`)));
    for (const r of results) {
      const what = `${r.front} depth ${r.depth}`;
      const f = r.frontCounters;
      const b = r.backCounters;
      // The C backend answered exactly the requests; the front checked each
      // response against its own in-flight set (id, BLKIF_OP_READ, OKAY).
      expect(r.requests, what).toBe(COUNT[r.depth]);
      expect(f.completed, what).toBe(r.requests);
      expect(b.answered, what).toBe(r.requests);
      expect(f.mismatches, what).toBe(0);
      expect(f.error, what).toBeUndefined();
      expect(r.requestsPerSec, what).toBeGreaterThan(0);
      // The ring starts with req_event = rsp_event = 1, so the first push in
      // each direction must notify; no push notifies twice.
      expect(f.notifies, what).toBeGreaterThanOrEqual(1);
      expect(b.notifies, what).toBeGreaterThanOrEqual(1);
      expect(f.notifies, what).toBeLessThanOrEqual(f.pushes);
      expect(b.notifies, what).toBeLessThanOrEqual(b.pushes);
      // A front keeps `depth` in flight: at least requests/depth pushes.
      expect(f.pushes, what).toBeGreaterThanOrEqual(r.requests / r.depth);
      // A wake is only ever sent with a notification; a side that slept was
      // woken (each blocking read returns on a byte: the peer's wakes, plus
      // at most one left from the handshake, plus the stop event for the back).
      expect(f.wakes, what).toBeLessThanOrEqual(f.notifies);
      expect(b.wakes, what).toBeLessThanOrEqual(b.notifies);
      expect(b.sleeps, what).toBeLessThanOrEqual(f.wakes + 2);
      expect(f.sleeps, what).toBeLessThanOrEqual(b.wakes + 1);
      expect(r.notificationsPerRequest).toBeCloseTo((f.notifies + b.notifies) / r.requests, 12);
    }
    // At depth 1 with no polling, every request leaves a side with nothing
    // to do: over 1,500 of them someone slept, so the chain above (sleeps
    // need wakes, wakes need notifications) was exercised, not vacuous.
    for (const r of results.filter((x) => x.depth === 1)) {
      expect(r.frontCounters.sleeps + r.backCounters.sleeps, r.front).toBeGreaterThan(0);
      expect(r.frontCounters.wakes + r.backCounters.wakes, r.front).toBeGreaterThan(0);
    }
    const table = crossThreadTable(results);
    expect(table.split('\n')).toHaveLength(2 + results.length);
    expect(crossThreadSvg(results)).toContain('<svg');
  }, 180_000);

  it.each<Front>(['c', 'wasm', 'js'])('the %s front refuses a backend that answers a request twice', async (front) => {
    await expect(runSession(front, 8, 2_000, { fault: { kind: 'duplicate', at: 100 } })).rejects.toThrow(
      /does not match|refused the ring|exited 4/,
    );
  }, 60_000);

  it.each<Front>(['c', 'wasm', 'js'])('the %s front reports a backend that never answers one request as a stall, and the run ends', async (front) => {
    await expect(runSession(front, 8, 2_000, { fault: { kind: 'drop', at: 100 }, timeoutMs: 1_500 })).rejects.toMatchObject({
      code: 'timeout',
    });
  }, 60_000);
});
