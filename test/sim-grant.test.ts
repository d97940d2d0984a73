import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { GrantError } from '../src/platform/sim/errors.js';
import type { SimPlatform } from '../src/platform/sim/domain.js';

// Independent oracle: grant_entry_v1 read with a DataView at the offsets of
// xen/include/public/grant_table.h (flags u16@0, domid u16@2, frame u32@4).
const GTF_permit_access = 1, GTF_readonly = 4, GTF_reading = 8, GTF_writing = 16;

function entry(hv: Hypervisor, d: SimPlatform, gref: number): { flags: number; domid: number; frame: number } {
  const info = hv.view.slotInfo(hv.view.slotOf(d.domid, true));
  const dv = new DataView(d.memory.buffer, hv.layout.poolBase + info.grantFrame * 4096 + gref * 8, 8);
  return { flags: dv.getUint16(0, true), domid: dv.getUint16(2, true), frame: dv.getUint32(4, true) };
}

function refused(fn: () => unknown, reason: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GrantError);
  expect((caught as GrantError).code).toBe('grant');
  expect((caught as GrantError).reason).toBe(reason);
}

describe('simulated grant table', () => {
  let hv: Hypervisor, front: SimPlatform, back: SimPlatform, other: SimPlatform;
  beforeEach(() => {
    hv = Hypervisor.create({ poolPages: 256, maxDomains: 4, scratchBytes: 1 << 16 });
    front = hv.createDomain('front');
    back = hv.createDomain('back');
    other = hv.createDomain('other');
  });
  afterEach(() => hv.shutdown());

  it('grants zeroed contiguous pages and writes v1 entries naming the grantee and pool frame', () => {
    const u8 = new Uint8Array(front.memory.buffer);
    const g = front.grants.grantPages(back.domid, 3);
    expect(g.addresses.map((a) => a - g.addresses[0])).toEqual([0, 4096, 8192]);
    for (const [i, gref] of g.grefs.entries()) {
      expect(gref).toBeGreaterThanOrEqual(8); // reserved entries are never handed out
      expect(entry(hv, front, gref)).toEqual({ flags: GTF_permit_access, domid: back.domid, frame: (g.addresses[i] - hv.layout.poolBase) / 4096 });
      expect(u8.subarray(g.addresses[i], g.addresses[i] + 4096).every((b) => b === 0)).toBe(true);
    }
    const ro = front.grants.grantPages(back.domid, 1, true);
    expect(entry(hv, front, ro.grefs[0]).flags).toBe(GTF_permit_access | GTF_readonly);
  });

  it('a writable map sets reading|writing, shares the bytes, and unmap clears them', () => {
    const g = front.grants.grantPages(back.domid, 2);
    const m = back.grants.mapForeign(front.domid, g.grefs, false);
    expect(m.addresses).toEqual(g.addresses);
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    new Uint8Array(back.memory.buffer)[m.addresses[1] + 7] = 0x5a;
    expect(new Uint8Array(front.memory.buffer)[g.addresses[1] + 7]).toBe(0x5a);
    expect(back.grants.activeMappings()).toBe(2);
    back.grants.unmapForeign(m);
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access);
    expect(back.grants.activeMappings()).toBe(0);
  });

  it('refuses end access while mapped, frees nothing, and succeeds after unmap', () => {
    const g = front.grants.grantPages(back.domid, 3);
    const m = back.grants.mapForeign(front.domid, [g.grefs[2]], true);
    refused(() => front.grants.ungrantPages(g), 'busy');
    expect(front.grants.activeGrants()).toBe(3);
    expect(front.grants.pagesInUse()).toBe(3);
    for (const gref of g.grefs) expect(entry(hv, front, gref).flags & GTF_permit_access).toBe(GTF_permit_access);
    back.grants.unmapForeign(m);
    front.grants.ungrantPages(g);
    expect(front.grants.activeGrants()).toBe(0);
    expect(front.grants.pagesInUse()).toBe(0);
    for (const gref of g.grefs) expect(entry(hv, front, gref).flags).toBe(0);
  });

  it('refuses to map a revoked gref', () => {
    const g = front.grants.grantPages(back.domid, 1);
    front.grants.ungrantPages(g);
    refused(() => back.grants.mapForeign(front.domid, g.grefs, true), 'not-granted');
    refused(() => back.grants.mapForeign(front.domid, [9999], true), 'bad-gref');
  });

  it('refuses a map by a domain the entry does not name', () => {
    const g = front.grants.grantPages(back.domid, 1);
    refused(() => other.grants.mapForeign(front.domid, g.grefs, true), 'wrong-domain');
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access);
  });

  it('refuses a writable map and a copy into a read-only grant; a read-only map works', () => {
    const g = front.grants.grantPages(back.domid, 1, true);
    refused(() => back.grants.mapForeign(front.domid, g.grefs, false), 'read-only');
    refused(() => back.grants.copy({ source: { buffer: new Uint8Array(16) }, dest: { domid: front.domid, gref: g.grefs[0], offset: 0 }, len: 16 }), 'read-only');
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access | GTF_readonly);
    const m = back.grants.mapForeign(front.domid, g.grefs, true);
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access | GTF_readonly | GTF_reading);
    back.grants.unmapForeign(m);
  });

  it('a failing multi-gref map maps nothing', () => {
    const g = front.grants.grantPages(back.domid, 2);
    front.grants.ungrantPages(front.grants.grantPages(back.domid, 1)); // a gref that is now revoked
    const revoked = g.grefs[1] + 1;
    refused(() => back.grants.mapForeign(front.domid, [g.grefs[0], g.grefs[1], revoked], false), 'not-granted');
    for (const gref of g.grefs) expect(entry(hv, front, gref).flags).toBe(GTF_permit_access);
    expect(back.grants.activeMappings()).toBe(0);
  });

  it('keeps busy bits until the last mapping of a gref goes', () => {
    const g = front.grants.grantPages(back.domid, 1);
    const w = back.grants.mapForeign(front.domid, g.grefs, false);
    const r = back.grants.mapForeign(front.domid, g.grefs, true);
    back.grants.unmapForeign(w);
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access | GTF_reading);
    refused(() => front.grants.ungrantPages(g), 'busy');
    back.grants.unmapForeign(r);
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access);
    refused(() => back.grants.unmapForeign(r), 'not-granted'); // double unmap
    front.grants.ungrantPages(g);
  });

  it('grant copy moves bytes both ways with the map checks, and rejects ranges crossing the page', () => {
    const g = front.grants.grantPages(back.domid, 1);
    const src = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    back.grants.copy({ source: { buffer: src }, dest: { domid: front.domid, gref: g.grefs[0], offset: 4000 }, len: 96 });
    expect([...new Uint8Array(front.memory.buffer, g.addresses[0] + 4000, 96)]).toEqual([...src.subarray(0, 96)]);
    const out = new Uint8Array(10);
    back.grants.copy({ source: { domid: front.domid, gref: g.grefs[0], offset: 4010 }, dest: { buffer: out }, len: 10 });
    expect([...out]).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    refused(() => back.grants.copy({ source: { buffer: src }, dest: { domid: front.domid, gref: g.grefs[0], offset: 4000 }, len: 97 }), 'bad-range');
    refused(() => other.grants.copy({ source: { domid: front.domid, gref: g.grefs[0], offset: 0 }, dest: { buffer: out }, len: 1 }), 'wrong-domain');
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access); // copies leave no pin behind
    front.grants.ungrantPages(g);
  });

  it('refuses an entry whose frame is not a page of its granter', () => {
    const g = front.grants.grantPages(back.domid, 1);
    const info = hv.view.slotInfo(hv.view.slotOf(front.domid));
    // A hostile granter points its entry at the directory page (frame 0).
    new DataView(front.memory.buffer).setUint32(hv.layout.poolBase + info.grantFrame * 4096 + g.grefs[0] * 8 + 4, 0, true);
    refused(() => back.grants.mapForeign(front.domid, g.grefs, false), 'bad-frame');
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access); // busy bits undone
  });

  it('runs out of pages with a typed error and leaks nothing', () => {
    refused(() => front.grants.grantPages(back.domid, hv.pagesPerDomain + 1), 'exhausted');
    expect(front.grants.activeGrants()).toBe(0);
    expect(front.grants.pagesInUse()).toBe(0);
    const all = front.grants.grantPages(back.domid, hv.pagesPerDomain);
    refused(() => front.grants.grantPages(back.domid, 1), 'exhausted');
    front.grants.ungrantPages(all);
    expect(front.grants.pagesInUse()).toBe(0);
  });

  it('destroying a granter leaves a mapped page valid for its mapper until unmapped', async () => {
    const g = front.grants.grantPages(back.domid, 2);
    const m = back.grants.mapForeign(front.domid, [g.grefs[0]], false);
    new Uint8Array(front.memory.buffer)[g.addresses[0]] = 0x77;
    await hv.destroyDomain(front.domid);
    expect(hv.domainState(front.domid)).toBe('dying');
    expect(entry(hv, front, g.grefs[1]).flags).toBe(0); // the unmapped one is revoked
    expect(new Uint8Array(back.memory.buffer)[m.addresses[0]]).toBe(0x77);
    refused(() => back.grants.mapForeign(front.domid, [g.grefs[0]], true), 'no-domain');
    back.grants.unmapForeign(m);
    expect(hv.reap()).toBe(1);
    expect(hv.domainState(front.domid)).toBe('nonexistent');
  });

  it('destroying a mapper drops its pins so the granter can end access', async () => {
    const g = front.grants.grantPages(back.domid, 1);
    back.grants.mapForeign(front.domid, g.grefs, false);
    await hv.destroyDomain(back.domid);
    expect(entry(hv, front, g.grefs[0]).flags).toBe(GTF_permit_access);
    front.grants.ungrantPages(g);
    expect(front.grants.activeGrants()).toBe(0);
  });
});
