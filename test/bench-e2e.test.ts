import { describe, expect, it } from 'vitest';
import { createOutput } from '../tools/command.js';
import { CONTENDERS, e2eTable, runE2e, WORKLOADS } from '../tools/bench/e2e.js';

const quiet = createOutput(false, true);

describe('bench e2e family: structure and accounting (no speed is asserted)', () => {
  it('measures every workload on fs, wasm, js and wasm-copy, reads back what was written, and its counts add up', async () => {
    const sizeMiB = 4;
    const randomOps = 64;
    const results = await runE2e({ sizeMiB, randomOps, rounds: 1 }, quiet, new AbortController().signal);
    expect(results.map((r) => `${r.workload}/${r.contender}`)).toEqual(
      WORKLOADS.flatMap((w) => CONTENDERS.map((c) => `${w.name}/${c}`)),
    );
    for (const r of results) {
      const w = WORKLOADS.find((x) => x.name === r.workload)!;
      const ops = w.random ? randomOps : (sizeMiB << 20) / w.blockBytes;
      expect(r.ops, r.workload).toBe(ops);
      expect(r.bytes).toBe(ops * w.blockBytes);
      expect(r.verified, `${r.workload}/${r.contender}`).toBe(true);
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.cpuUsPerOp).toBeGreaterThan(0);
      expect(r.frontBusy).toBeGreaterThanOrEqual(0);
      expect(r.frontBusy).toBeLessThanOrEqual(1);
      if (r.contender === 'fs') {
        expect(r.ofFs).toBe(1);
        expect(r.ringRequests).toBeNull();
        expect(r.backBusy).toBeNull();
      } else {
        // Every operation became at least one ring request (a 1 MiB one may
        // be split), and the backend thread was measured.
        expect(r.ringRequests!).toBeGreaterThanOrEqual(ops);
        expect(r.notificationsPerRequest!).toBeGreaterThan(0);
        expect(r.backBusy!).toBeGreaterThanOrEqual(0);
        expect(r.backBusy!).toBeLessThanOrEqual(1);
        // wasm and js go through I/O buffers: blkfront copies nothing; the
        // plain-buffer device copies every byte once (write in, read out).
        expect(r.ioBuffers, r.contender).toBe(r.contender !== 'wasm-copy');
        if (r.ioBuffers) expect(r.copiedPerByte, `${r.workload}/${r.contender}`).toBe(0);
        else expect(r.copiedPerByte, `${r.workload}/${r.contender}`).toBeCloseTo(1, 6);
      }
    }
    const table = e2eTable(results);
    expect(table.split('\n')).toHaveLength(2 + results.length);
    expect(table).toContain('notif/req');
    expect(table).toContain('io-buffer');
  }, 120_000);
});
