/**
 * Event channels and grants across worker_threads. The workers run the
 * compiled domain agent (dist/src/platform/sim/fixtures/domain-agent.js):
 * build first with `npx tsc -p tsconfig.build.json`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { Agent, AgentFailure } from '../src/platform/sim/fixtures/agent-client.js';

interface Drain { deliveries: number; last: number; monotonic: boolean; late: number; timedOut: boolean }
interface PingPong { rounds: number; timedOut: boolean }

describe('event channels and grants across two worker domains', () => {
  let hv: Hypervisor, a: Agent, b: Agent;
  let pa: number, pb: number, seqAddr: number, seqGref: number;

  beforeEach(async () => {
    hv = Hypervisor.create({ poolPages: 128, maxDomains: 4, scratchBytes: 1 << 16 });
    a = Agent.start(hv, 'a');
    b = Agent.start(hv, 'b');
    pb = await b.call<number>({ op: 'alloc', remote: a.domid });
    pa = await a.call<number>({ op: 'bind', remote: b.domid, port: pb });
    // The sequence word lives in a page A grants read-only to B.
    const g = await a.call<{ grefs: number[] }>({ op: 'grant', remote: b.domid, count: 1, readOnly: true });
    seqGref = g.grefs[0];
    seqAddr = (await b.call<{ addresses: number[] }>({ op: 'map', remote: a.domid, grefs: g.grefs, readOnly: true })).addresses[0];
  });
  afterEach(() => hv.shutdown());

  it('loses no wake-up under a 100k notify flood: the receiver observes the final sequence number', async () => {
    const count = 100_000;
    const drain = b.call<Drain>({ op: 'drain', seqAddr, until: count, idleTimeoutMs: 10_000 });
    const sent = await a.call<number>({ op: 'notify', port: pa, count, seqAddr });
    const d = await drain;
    expect(sent).toBe(count);
    expect(d.timedOut).toBe(false);
    expect(d.late).toBe(0);
    expect(d.last).toBe(count);
    expect(d.monotonic).toBe(true);
    expect(d.deliveries).toBeGreaterThanOrEqual(1);
    expect(d.deliveries).toBeLessThanOrEqual(count); // coalescing, never invention
  });

  it('loses no wake-up when 100k notifies come in bursts the receiver sleeps between', async () => {
    const count = 100_000;
    const drain = b.call<Drain>({ op: 'drain', seqAddr, until: count, idleTimeoutMs: 3_000 });
    await a.call<number>({ op: 'notify', port: pa, count, seqAddr, burst: 1000, pauseMs: 1 });
    expect(await drain).toMatchObject({ last: count, monotonic: true, late: 0, timedOut: false });
  });

  it('loses no wake-up in 20k ping-pong rounds where both sides sleep between events', async () => {
    const rounds = 20_000;
    const server = b.call<PingPong>({ op: 'pingpong', role: 'server', port: pb, rounds, timeoutMs: 10_000 });
    const driver = a.call<PingPong>({ op: 'pingpong', role: 'driver', port: pa, rounds, timeoutMs: 10_000 });
    expect(await driver).toMatchObject({ rounds, timedOut: false });
    expect(await server).toMatchObject({ rounds, timedOut: false });
  });

  it('a masked port stays quiet under notifies until unmasked, then delivers once', async () => {
    await b.call({ op: 'mask', port: pb });
    await a.call({ op: 'notify', port: pa, count: 1000 });
    expect(await b.call({ op: 'wait', timeoutMs: 200 })).toEqual([]);
    await b.call({ op: 'unmask', port: pb });
    expect(await b.call({ op: 'wait', timeoutMs: 2000 })).toEqual([pb]);
    expect(await b.call({ op: 'wait', timeoutMs: 50 })).toEqual([]);
  });

  it('refuses a second bind to the same port and a bind by the wrong domain, across threads', async () => {
    const forB = await a.call<number>({ op: 'alloc', remote: b.domid });
    await b.call({ op: 'bind', remote: a.domid, port: forB });
    const again = b.call({ op: 'bind', remote: a.domid, port: forB });
    await expect(again).rejects.toBeInstanceOf(AgentFailure);
    await expect(again).rejects.toMatchObject({ code: 'evtchn', reason: 'not-unbound' });
    const forSelf = await a.call<number>({ op: 'alloc', remote: a.domid });
    await expect(b.call({ op: 'bind', remote: a.domid, port: forSelf })).rejects.toMatchObject({ code: 'evtchn', reason: 'wrong-domain' });
    await expect(b.call({ op: 'map', remote: a.domid, grefs: [seqGref], readOnly: false })).rejects.toMatchObject({ code: 'grant', reason: 'read-only' });
    await expect(a.call({ op: 'ungrant', gref: seqGref })).rejects.toMatchObject({ code: 'grant', reason: 'busy' });
  });

  it('destroyDomain stops a sleeping worker and releases its ports and grants; the mapper keeps its page', async () => {
    const sleeping = a.call({ op: 'wait', timeoutMs: 60_000 }).catch((e: Error) => e);
    await hv.destroyDomain(a.domid);
    expect(await a.domain.exited).toBe(1);
    expect(await sleeping).toBeInstanceOf(Error);
    // B's port is still open but now unbound; its mapping of A's page remains.
    expect(await b.call({ op: 'counts' })).toEqual({ ports: 1, grants: 0, mappings: 1 });
    expect(hv.domainState(a.domid)).toBe('dying');
    await b.call({ op: 'notify', port: pb, count: 1 }); // unbound: a no-op, no error
    await b.call({ op: 'unmap', gref: seqGref });
    expect(hv.reap()).toBe(1);
    expect(hv.domainState(a.domid)).toBe('nonexistent');
    await b.call({ op: 'close', port: pb });
    expect(await b.call({ op: 'counts' })).toEqual({ ports: 0, grants: 0, mappings: 0 });
  });
});
