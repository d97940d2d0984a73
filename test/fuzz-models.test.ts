/**
 * The fuzzers' oracles checked against facts from Xen's headers and
 * xenstore.txt, so a wrong model cannot silently bless a wrong engine.
 */
import { describe, expect, it } from 'vitest';
import { RingModel, ringSize, ST } from '../tools/fuzz/model/ring-model.js';
import { buildRequest, buildResponse, parseRequest } from '../tools/fuzz/model/blkif-wire.js';
import { XsModel, type Tree } from '../tools/fuzz/model/xenstore-model.js';

const req = (id: bigint, op = 0) => ({ op, flag: 0, handle: 0, nrSegments: 1, id, sector: 0n, segs: [{ gref: 1, first: 0, last: 7 }], nrSectors: 0n, igrefs: [] });

describe('ring model (ring.h)', () => {
  it('sizes a one-page blkif ring at 32 entries and two pages at 64 (__CONST_RING_SIZE)', () => {
    expect(ringSize(1, 112)).toBe(32);
    expect(ringSize(1, 108)).toBe(32);
    expect(ringSize(2, 112)).toBe(64);
    expect(ringSize(1, 4096)).toBe(0);
  });

  it('asks for notify when req_event lies in (old, new], across the 2^32 wrap', () => {
    const m = new RingModel(32, 0xfffffffe);
    m.writeRequests([req(0n), req(1n), req(2n)]);
    // req_event = start + 1 = 0xffffffff, in (0xfffffffe, 0x00000001]
    expect(m.pushRequestsAndCheckNotify()).toBe(1);
    expect(m.reqProd).toBe(1);
    m.reqEvent = 5; // the back wants a kick only at 5
    m.writeRequests([req(3n)]);
    expect(m.pushRequestsAndCheckNotify()).toBe(0);
  });

  it('stops writing when the ring is full and rejects an id already in flight', () => {
    const m = new RingModel(32, 0);
    const all = Array.from({ length: 33 }, (_, i) => req(BigInt(i % 32)));
    const r = m.writeRequests(all);
    expect(r.processed).toBe(32);
    expect(m.freeRequests()).toBe(0);
    const again = new RingModel(32, 0);
    expect(again.writeRequests([req(4n), req(4n)]).statuses).toEqual([[ST.OK], [ST.ID_IN_FLIGHT]]);
  });

  it('final check re-arms rsp_event at rsp_cons + 1 when nothing is waiting', () => {
    const m = new RingModel(32, 100);
    expect(m.finalCheckForResponses()).toBe(0);
    expect(m.rspEvent).toBe(101);
  });

  it('treats rsp_prod more than a ring ahead of rsp_cons as overflow and consumes nothing', () => {
    const m = new RingModel(32, 0xfffffff0);
    m.rspProd = (0xfffffff0 + 33) >>> 0;
    const out = m.reapResponses(64);
    expect(out.kind).toBe('violation');
    expect(m.rspCons).toBe(0xfffffff0);
  });

  it('reaps a good response, then calls a duplicate not in flight', () => {
    const m = new RingModel(32, 0);
    m.writeRequests([req(7n, 1)]);
    m.pushRequestsAndCheckNotify();
    m.takeRequests(32);
    m.writeResponses([{ id: 7n, op: 1, status: 0 }, { id: 7n, op: 1, status: 0 }]);
    m.pushResponsesAndCheckNotify();
    const out = m.reapResponses(1);
    expect(out).toMatchObject({ kind: 'ok', count: 1 });
    expect(m.reapResponses(1)).toMatchObject({ kind: 'violation', statuses: [ST.RSP_NOT_IN_FLIGHT] });
  });
});

describe('blkif wire builder (blkif.h offsets)', () => {
  it('puts id at 8 and sector at 16 on x86_64, at 4 and 12 on x86_32', () => {
    const r = { op: 1, flag: 0, handle: 0x1234, nrSegments: 1, id: 0x0102030405060708n, sector: 0x1112131415161718n, segs: [{ gref: 0xaabbccdd, first: 1, last: 6 }], nrSectors: 0n, grefs: [] };
    const b64 = buildRequest(0, r);
    expect(b64.length).toBe(112);
    expect(Buffer.from(b64.subarray(0, 32)).toString('hex')).toBe('0101341200000000' + '0807060504030201' + '1817161514131211' + 'ddccbbaa01060000');
    const b32 = buildRequest(1, r);
    expect(b32.length).toBe(108);
    expect(Buffer.from(b32.subarray(0, 28)).toString('hex')).toBe('01013412' + '0807060504030201' + '1817161514131211' + 'ddccbbaa01060000');
    expect(parseRequest(1, b32)).toEqual({ ...r, segs: r.segs });
  });
  it('lays a response out as id@0, operation@8, status@10', () => {
    expect(Buffer.from(buildResponse(0, { id: 5n, op: 3, status: -2 })).toString('hex')).toBe('0500000000000000' + '0300feff' + '00000000');
    expect(buildResponse(1, { id: 5n, op: 3, status: -2 }).length).toBe(12);
  });
});

describe('xenstore model (xenstore.txt)', () => {
  const initial = (): Tree => new Map([
    ['/', { value: '', perms: [{ domid: 0, perm: 'n' as const }] }],
    ['/local', { value: '', perms: [{ domid: 0, perm: 'r' as const }] }],
    ['/local/domain', { value: '', perms: [{ domid: 0, perm: 'r' as const }] }],
    ['/local/domain/1', { value: '', perms: [{ domid: 1, perm: 'n' as const }] }],
  ]);
  const only = (outs: ReturnType<XsModel['step']>) => { expect(outs).toHaveLength(1); outs[0].apply(); return outs[0].result; };

  it('lets a domain write under its home, owning what it creates; others get EACCES', () => {
    const m = new XsModel(initial());
    expect(only(m.step(1, { op: 'write', path: 'a/b', value: 'v' }))).toEqual({ ok: '' });
    expect(m.tree.get('/local/domain/1/a/b')?.perms[0]).toEqual({ domid: 1, perm: 'n' });
    expect(only(m.step(2, { op: 'read', path: '/local/domain/1/a/b' }))).toEqual({ err: 'EACCES' });
    expect(only(m.step(0, { op: 'read', path: '/local/domain/1/a/b' }))).toEqual({ ok: 'v' });
  });

  it('rejects doubled and trailing slashes with EINVAL', () => {
    const m = new XsModel(initial());
    expect(only(m.step(0, { op: 'read', path: '/local//domain' }))).toEqual({ err: 'EINVAL' });
    expect(only(m.step(0, { op: 'read', path: '/local/' }))).toEqual({ err: 'EINVAL' });
  });

  it('fires a watch for a change below its path, not beside it', () => {
    const m = new XsModel(initial());
    only(m.addWatch(0, '/local/domain/1', 'tok'));
    only(m.step(0, { op: 'write', path: '/local/domain/1/x', value: '1' }));
    only(m.step(0, { op: 'write', path: '/local/domainx', value: '1' }));
    expect([...m.watches[0].must.keys()].sort()).toEqual(['/local/domain/1', '/local/domain/1/x']);
  });

  it('requires EAGAIN when a node the transaction read changed before commit', () => {
    const m = new XsModel(initial());
    only(m.step(0, { op: 'write', path: '/k', value: '1' }));
    const tx = m.txStart(0);
    const r = m.txStep(tx, { op: 'read', path: '/k' });
    r[0].apply();
    only(m.step(0, { op: 'write', path: '/k', value: '2' }));
    expect(m.txCommit(tx).map((o) => o.result)).toEqual([{ err: 'EAGAIN' }]);
  });
});
