import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { EvtchnError } from '../src/platform/sim/errors.js';
import { PortState } from '../src/platform/sim/evtchn.js';
import type { SimPlatform } from '../src/platform/sim/domain.js';

function refused(fn: () => unknown, reason: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(EvtchnError);
  expect((caught as EvtchnError).code).toBe('evtchn');
  expect((caught as EvtchnError).reason).toBe(reason);
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('simulated event channels, one thread', () => {
  let hv: Hypervisor, a: SimPlatform, b: SimPlatform, c: SimPlatform;
  beforeEach(() => {
    hv = Hypervisor.create({ poolPages: 128, maxDomains: 4, scratchBytes: 1 << 16 });
    a = hv.createDomain('a');
    b = hv.createDomain('b');
    c = hv.createDomain('c');
  });
  afterEach(() => hv.shutdown());

  function connect(): { pa: number; pb: number } {
    const pa = a.evtchn.allocUnbound(b.domid);
    const pb = b.evtchn.bindInterdomain(a.domid, pa);
    return { pa, pb };
  }

  it('binds an unbound port and links both ends', () => {
    const { pa, pb } = connect();
    expect(pa).toBeGreaterThan(0); // port 0 is never handed out
    expect(a.evtchn.describe(pa)).toEqual({ state: PortState.Interdomain, remoteDomid: b.domid, remotePort: pb });
    expect(b.evtchn.describe(pb)).toEqual({ state: PortState.Interdomain, remoteDomid: a.domid, remotePort: pa });
  });

  it('delivers a notify to the handler through the async loop, and the reverse direction too', async () => {
    const { pa, pb } = connect();
    const gotB: number[] = [], gotA: number[] = [];
    b.evtchn.setHandler(pb, (p) => gotB.push(p));
    a.evtchn.setHandler(pa, (p) => gotA.push(p));
    a.evtchn.notify(pa);
    await tick();
    expect(gotB).toEqual([pb]);
    b.evtchn.notify(pb);
    await tick();
    expect(gotA).toEqual([pa]);
  });

  it('a masked port stays quiet until unmasked, then delivers once', async () => {
    const { pa, pb } = connect();
    const got: number[] = [];
    b.evtchn.mask(pb);
    b.evtchn.setHandler(pb, (p) => got.push(p));
    for (let i = 0; i < 10; i++) a.evtchn.notify(pa);
    await tick(50);
    expect(got).toEqual([]);
    b.evtchn.unmask(pb);
    await tick();
    expect(got).toEqual([pb]);
  });

  it('holds events for a port without a handler until one is set', async () => {
    const { pa, pb } = connect();
    a.evtchn.notify(pa);
    await tick();
    const got: number[] = [];
    b.evtchn.setHandler(pb, (p) => got.push(p));
    await tick();
    expect(got).toEqual([pb]);
  });

  it('refuses binds to a port allocated for another domain, to a bound or free port, and to a missing domain', () => {
    const forC = a.evtchn.allocUnbound(c.domid);
    refused(() => b.evtchn.bindInterdomain(a.domid, forC), 'wrong-domain');
    const { pa } = connect();
    refused(() => b.evtchn.bindInterdomain(a.domid, pa), 'not-unbound');
    refused(() => b.evtchn.bindInterdomain(a.domid, 200), 'not-unbound');
    refused(() => b.evtchn.bindInterdomain(a.domid, 0), 'bad-port');
    refused(() => b.evtchn.bindInterdomain(a.domid, 4096), 'bad-port');
    refused(() => b.evtchn.bindInterdomain(999, 1), 'no-domain');
    refused(() => a.evtchn.allocUnbound(999), 'no-domain');
    expect(b.evtchn.openPorts()).toHaveLength(1); // refused binds leave no local port behind
    expect(c.evtchn.bindInterdomain(a.domid, forC)).toBeGreaterThan(0);
  });

  it('close makes the peer end unbound (for the closer) and notify on it a no-op', () => {
    const { pa, pb } = connect();
    a.evtchn.close(pa);
    expect(a.evtchn.openPorts()).toEqual([]);
    expect(b.evtchn.describe(pb)).toEqual({ state: PortState.Unbound, remoteDomid: a.domid, remotePort: 0 });
    b.evtchn.notify(pb); // unbound: nothing to tell, no error
    refused(() => a.evtchn.notify(pa), 'bad-port');
    refused(() => a.evtchn.close(pa), 'bad-port');
    // the unbound end can be bound again by its old peer
    const again = a.evtchn.bindInterdomain(b.domid, pb);
    expect(b.evtchn.describe(pb).state).toBe(PortState.Interdomain);
    expect(a.evtchn.describe(again).remotePort).toBe(pb);
  });

  it('dispose closes every port and refuses further use', () => {
    const { pb } = connect();
    a.evtchn.allocUnbound(c.domid);
    a.evtchn.dispose();
    expect(a.evtchn.openPorts()).toEqual([]);
    expect(b.evtchn.describe(pb).state).toBe(PortState.Unbound);
    refused(() => a.evtchn.allocUnbound(b.domid), 'disposed');
  });

  it('destroyDomain closes the dead domain\'s ports: peers see unbound', async () => {
    const { pb } = connect();
    await hv.destroyDomain(a.domid);
    expect(b.evtchn.describe(pb)).toEqual({ state: PortState.Unbound, remoteDomid: a.domid, remotePort: 0 });
    expect(hv.domainState(a.domid)).toBe('nonexistent');
    refused(() => b.evtchn.bindInterdomain(a.domid, 1), 'no-domain');
  });

  it('waitForEvents returns pending ports and times out empty', () => {
    const { pa, pb } = connect();
    expect(b.evtchn.waitForEvents(10)).toEqual([]);
    a.evtchn.notify(pa);
    a.evtchn.notify(pa);
    expect(b.evtchn.waitForEvents(10)).toEqual([pb]); // coalesced: one pending bit
    expect(b.evtchn.waitForEvents(10)).toEqual([]);
  });
});
