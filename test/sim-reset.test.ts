/**
 * Hypervisor.resetDomain: a fresh platform for an in-process domain that
 * holds nothing, refused (naming what is left) otherwise. The oracle is a
 * newly created domain: the reset one hands out the same grefs and ports.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';

const PLAN = { xenstore: 'none' as const, scratchBytes: 1 << 20, poolPages: 256 };

describe('Hypervisor.resetDomain', () => {
  it('gives a domain that gave everything back the grefs, ports and zeroed pages a new domain gets', async () => {
    const ref = Hypervisor.create(PLAN);
    const r0 = ref.createDomain('a', undefined, { domid: 0 });
    ref.createDomain('b', undefined, { domid: 1 });
    const want = { gref: r0.grants.grantPages(1, 1).grefs[0], port: r0.evtchn.allocUnbound(1) };
    await ref.shutdown();

    const hv = Hypervisor.create(PLAN);
    let a = hv.createDomain('a', undefined, { domid: 0 });
    hv.createDomain('b', undefined, { domid: 1 });
    const g1 = a.grants.grantPages(1, 3);
    const g2 = a.grants.grantPages(1, 1);
    new Uint8Array(a.memory.buffer).fill(0xaa, g2.addresses[0]!, g2.addresses[0]! + 4096);
    a.grants.ungrantPages(g1);
    a.grants.ungrantPages(g2);
    a.evtchn.close(a.evtchn.allocUnbound(1));
    const blk = a.scratch.alloc(256);
    new Uint8Array(a.memory.buffer).fill(0x55, blk, blk + 256);
    a.scratch.release(blk);
    const old = a;
    a = hv.resetDomain(0);
    expect(a).not.toBe(old);
    const g = a.grants.grantPages(1, 1);
    expect(g.grefs[0]).toBe(want.gref);
    expect(a.evtchn.allocUnbound(1)).toBe(want.port);
    expect(new Uint8Array(a.memory.buffer, g.addresses[0]!, 4096).every((x) => x === 0)).toBe(true);
    expect(new Uint8Array(a.memory.buffer, blk, 256).every((x) => x === 0)).toBe(true);
    // The old platform is dead: its event channels refuse work.
    expect(() => old.evtchn.allocUnbound(1)).toThrow(/disposed/);
    await hv.shutdown();
  });

  it('refuses a domain that still holds a grant, a port, a mapping or scratch, naming each', async () => {
    const hv = Hypervisor.create(PLAN);
    const a = hv.createDomain('a', undefined, { domid: 0 });
    const b = hv.createDomain('b', undefined, { domid: 1 });
    const g = a.grants.grantPages(1, 2);
    b.grants.mapForeign(0, g.grefs, true);
    a.evtchn.allocUnbound(1);
    b.scratch.alloc(100);
    expect(() => hv.resetDomain(0)).toThrow(InvalidArgumentError);
    expect(() => hv.resetDomain(0)).toThrow(/open ports 1; 2 grant\(s\); 2 allocated page\(s\)/);
    expect(() => hv.resetDomain(1)).toThrow(/2 mapped foreign grant\(s\); \d+ bytes of scratch/);
    expect(() => hv.resetDomain(7)).toThrow(/not running/);
    await hv.shutdown();
  });
});
