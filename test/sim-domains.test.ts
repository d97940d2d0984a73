/**
 * Domains of the simulated hypervisor with the real simulated xenstored:
 * a worker domain gets its own xenstore connection; destroying it drops the
 * connection and fires @releaseDomain. Needs the compiled agent
 * (`npx tsc -p tsconfig.build.json`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { Agent } from '../src/platform/sim/fixtures/agent-client.js';

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);

describe('simulated domains', () => {
  let hv: Hypervisor;
  afterEach(() => hv.shutdown());

  it('gives a worker domain its own xenstore connection and releases it on destroy, firing @releaseDomain', async () => {
    hv = Hypervisor.create({ poolPages: 128, maxDomains: 4, scratchBytes: 1 << 16 });
    const dom0 = hv.createDomain('dom0');
    expect(dom0.domid).toBe(0);
    const guest = Agent.start(hv, 'guest');
    expect(guest.domid).toBe(1);
    const home = await guest.call<string>({ op: 'xs-domain-path' });
    expect(home).toBe('/local/domain/1');
    await dom0.xenstore.mkdir(home);
    await dom0.xenstore.setPermissions(home, [{ domid: 1, perm: 'n' }]);
    await guest.call({ op: 'xs-write', path: `${home}/hello`, value: 'world' });
    expect(await dom0.xenstore.read(`${home}/hello`)).toBe('world');
    await expect(guest.call({ op: 'xs-write', path: '/local/domain/0/x', value: 'y' })).rejects.toMatchObject({ code: 'xenstore' });

    const watch = await dom0.xenstore.watch('@releaseDomain', 'rel');
    const it = watch[Symbol.asyncIterator]();
    expect((await within(it.next(), 2000, 'immediate watch event')).value).toMatchObject({ path: '@releaseDomain', token: 'rel' });
    const connsBefore = hv.xenstored!.stats().connections;
    await hv.destroyDomain(guest.domid);
    expect((await within(it.next(), 2000, '@releaseDomain event')).value).toMatchObject({ path: '@releaseDomain', token: 'rel' });
    expect(hv.xenstored!.stats().connections).toBe(connsBefore - 1);
    expect(hv.domainState(guest.domid)).toBe('nonexistent');
    await watch.unwatch();
  });

  it('hands out disjoint scratch arenas and reuses a freed slot for a new domid', async () => {
    hv = Hypervisor.create({ poolPages: 128, maxDomains: 2, scratchBytes: 1 << 16, xenstore: 'none' });
    const a = hv.createDomain('a');
    const b = hv.createDomain('b');
    expect(a.scratch.base + a.scratch.size).toBeLessThanOrEqual(b.scratch.base);
    expect(() => hv.createDomain('c')).toThrow(/slots are in use/);
    await hv.destroyDomain(a.domid);
    const c = hv.createDomain('c');
    expect(c.domid).toBe(2); // domids are not reused
    expect(c.grants.pagesInUse()).toBe(0);
    expect(c.evtchn.openPorts()).toEqual([]);
    await expect(c.xenstore.read('/')).rejects.toMatchObject({ code: 'unsupported' });
  });
});
