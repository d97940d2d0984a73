/**
 * Notify -> wake-up latency of the simulated event channels between two
 * worker domains. Domain A stamps process.hrtime (a clock shared by all
 * threads) into a page it grants to B, then notifies; B, woken from
 * waitForEvents, records now - stamp and answers, and A waits for that
 * answer before the next round, so B is asleep (or spinning) each time.
 *
 *   npx tsc -p tsconfig.build.json && node dist/tools/evtchn-latency.js [rounds] [spin...]
 *
 * Defaults: 20000 rounds, spin 0 (sleep at once) and 10000 iterations.
 */
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { Agent } from '../src/platform/sim/fixtures/agent-client.js';

interface PingPong { rounds: number; samples: number[]; timedOut: boolean }

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const us = (ns: number): string => (ns / 1000).toFixed(1);

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 20_000);
  const spins = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [0, 10_000];
  const hv = Hypervisor.create({ poolPages: 64, maxDomains: 2, scratchBytes: 1 << 16 });
  const a = Agent.start(hv, 'a');
  const b = Agent.start(hv, 'b');
  try {
    const pb = await b.call<number>({ op: 'alloc', remote: a.domid });
    const pa = await a.call<number>({ op: 'bind', remote: b.domid, port: pb });
    const g = await a.call<{ grefs: number[]; addresses: number[] }>({ op: 'grant', remote: b.domid, count: 1, readOnly: true });
    await b.call({ op: 'map', remote: a.domid, grefs: g.grefs, readOnly: true });
    const stampAddr = g.addresses[0];
    console.log(`notify -> wake-up, ${rounds} rounds, node ${process.version}`);
    for (const spin of spins) {
      const server = b.call<PingPong>({ op: 'pingpong', role: 'server', port: pb, rounds, timeoutMs: 10_000, spin, stampAddr });
      const driver = a.call<PingPong>({ op: 'pingpong', role: 'driver', port: pa, rounds, timeoutMs: 10_000, spin, stampAddr });
      const [s, d] = await Promise.all([server, driver]);
      if (s.timedOut || d.timedOut) throw new Error(`spin ${spin}: a side timed out (lost wake-up?)`);
      const sorted = s.samples.slice(Math.floor(rounds / 10)).sort((x, y) => x - y); // drop the first 10% (warm-up)
      console.log(
        `spin ${String(spin).padStart(6)}: median ${us(quantile(sorted, 0.5))} us, p99 ${us(quantile(sorted, 0.99))} us, ` +
          `min ${us(sorted[0])} us, max ${us(sorted[sorted.length - 1])} us (n=${sorted.length})`,
      );
    }
  } finally {
    await hv.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
