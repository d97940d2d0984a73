import {
  backRingAttach, finalCheckForRequests, finalCheckForResponses, freeRequests, frontRingInit,
  pushRequestsAndCheckNotify, pushResponsesAndCheckNotify, requestProdOverflow, requestSlot,
  responseProdOverflow, ringSize, unconsumedRequests,
} from '../ring';
import { clearArena, SRING, STATE } from './mem';

// Shared header and state offsets, written here from ring.h / engine.ts.
function reqProd(): u32 { return load<u32>(SRING + 0); }
function reqEvent(): u32 { return load<u32>(SRING + 4); }
function rspProd(): u32 { return load<u32>(SRING + 8); }
function rspEvent(): u32 { return load<u32>(SRING + 12); }
function setShared(rq: u32, rqEv: u32, rp: u32, rpEv: u32): void {
  store<u32>(SRING, rq); store<u32>(SRING + 4, rqEv); store<u32>(SRING + 8, rp); store<u32>(SRING + 12, rpEv);
}
function setState(nrEnts: u32, slot: u32, prodPvt: u32, cons: u32): void {
  store<u32>(STATE, <u32>SRING); store<u32>(STATE + 4, nrEnts); store<u32>(STATE + 8, slot);
  store<u32>(STATE + 12, prodPvt); store<u32>(STATE + 16, cons);
}

describe('ringSize (__CONST_RING_SIZE)', () => {
  it('gives 32 blkif entries in one page for both ABIs', () => {
    expect(ringSize(1, 112)).toBe(32);
    expect(ringSize(1, 108)).toBe(32);
  });
  it('rounds down to a power of two', () => {
    expect(ringSize(1, 16)).toBe(128); // 252 fit
    expect(ringSize(3, 112)).toBe(64); // 109 fit
    expect(ringSize(2, 112)).toBe(64);
    expect(ringSize(16, 112)).toBe(512);
    expect(ringSize(16, 1)).toBe(32768); // 65472 fit
  });
  it('is 0 when nothing fits or the geometry is out of range', () => {
    expect(ringSize(1, 4033)).toBe(0);
    expect(ringSize(1, 0)).toBe(0);
    expect(ringSize(0, 112)).toBe(0);
    expect(ringSize(17, 112)).toBe(0);
  });
});

describe('frontRingInit', () => {
  beforeEach(clearArena);
  it('sets producers 0, events 1, zeroes the header pad and fills the state', () => {
    memory.fill(SRING, 0xaa, 4096);
    memory.fill(STATE, 0xaa, 32);
    expect(frontRingInit(STATE, SRING, 1, 112)).toBe(32);
    expect(reqProd()).toBe(0);
    expect(reqEvent()).toBe(1);
    expect(rspProd()).toBe(0);
    expect(rspEvent()).toBe(1);
    for (let i: usize = 16; i < 64; i++) expect(load<u8>(SRING + i)).toBe(0);
    expect(load<u8>(SRING + 64)).toBe(0xaa, 'slots are not touched');
    expect(load<u32>(STATE)).toBe(<u32>SRING);
    expect(load<u32>(STATE + 4)).toBe(32);
    expect(load<u32>(STATE + 8)).toBe(112);
    expect(load<u32>(STATE + 12)).toBe(0);
    expect(load<u32>(STATE + 16)).toBe(0);
    for (let i: usize = 20; i < 32; i++) expect(load<u8>(STATE + i)).toBe(0);
  });
  it('accepts 1..16 pages in powers of two and sizes multi-page rings', () => {
    expect(frontRingInit(STATE, SRING, 16, 112)).toBe(512);
    expect(frontRingInit(STATE, SRING, 4, 108)).toBe(128);
  });
  it('refuses 0, 3 and 32 pages with BAD_RING_PAGES and writes nothing', () => {
    store<u32>(SRING + 4, 77);
    expect(frontRingInit(STATE, SRING, 0, 112)).toBe(-30);
    expect(frontRingInit(STATE, SRING, 3, 112)).toBe(-30);
    expect(frontRingInit(STATE, SRING, 32, 112)).toBe(-30);
    expect(reqEvent()).toBe(77);
    expect(load<u32>(STATE + 4)).toBe(0);
  });
  it('refuses a slot that does not fit with BAD_SLOT_SIZE', () => {
    expect(frontRingInit(STATE, SRING, 1, 5000)).toBe(-31);
    expect(frontRingInit(STATE, SRING, 1, 0)).toBe(-31);
  });
});

describe('backRingAttach', () => {
  beforeEach(clearArena);
  it('starts from the shared rsp_prod and never rewrites the shared page', () => {
    setShared(7, 3, 5, 6);
    expect(backRingAttach(STATE, SRING, 1, 112)).toBe(32);
    expect(load<u32>(STATE + 12)).toBe(5); // rsp_prod_pvt
    expect(load<u32>(STATE + 16)).toBe(5); // req_cons
    expect(reqProd()).toBe(7);
    expect(reqEvent()).toBe(3);
    expect(rspProd()).toBe(5);
    expect(rspEvent()).toBe(6);
    expect(unconsumedRequests(STATE)).toBe(2);
  });
});

describe('front ring', () => {
  beforeEach(clearArena);
  it('counts free requests modulo 2^32', () => {
    setState(32, 112, 2, 0xfffffff0);
    expect(freeRequests(STATE)).toBe(14);
  });
  it('masks the slot index into the ring', () => {
    setState(32, 112, 0xffffffff, 0xffffffff);
    expect(requestSlot(STATE, 0)).toBe(SRING + 64 + 31 * 112);
    expect(requestSlot(STATE, 1)).toBe(SRING + 64);
  });
  it('publishes req_prod and asks for notify when req_event lies in (old, new]', () => {
    setShared(0, 1, 0, 1); setState(32, 112, 1, 0);
    expect(pushRequestsAndCheckNotify(STATE)).toBe(1);
    expect(reqProd()).toBe(1);
    setShared(2, 3, 0, 1); setState(32, 112, 5, 0);
    expect(pushRequestsAndCheckNotify(STATE)).toBe(1); // event 3 in (2, 5]
    setShared(2, 6, 0, 1); setState(32, 112, 5, 0);
    expect(pushRequestsAndCheckNotify(STATE)).toBe(0); // event 6 beyond new
    setShared(2, 2, 0, 1); setState(32, 112, 5, 0);
    expect(pushRequestsAndCheckNotify(STATE)).toBe(0); // event 2 == old: already notified
  });
  it('decides notify across the 2^32 wrap', () => {
    setShared(0xfffffffe, 0xffffffff, 0, 1); setState(32, 112, 2, 0);
    expect(pushRequestsAndCheckNotify(STATE)).toBe(1);
    setShared(0xfffffffe, 3, 0, 1); setState(32, 112, 2, 0);
    expect(pushRequestsAndCheckNotify(STATE)).toBe(0);
  });
  it('final check reports waiting responses without touching rsp_event', () => {
    setShared(0, 1, 4, 9); setState(32, 112, 4, 3);
    expect(finalCheckForResponses(STATE)).toBe(1);
    expect(rspEvent()).toBe(9);
  });
  it('final check re-arms rsp_event = rsp_cons + 1 when idle', () => {
    setShared(0, 1, 0xffffffff, 9); setState(32, 112, 0xffffffff, 0xffffffff);
    expect(finalCheckForResponses(STATE)).toBe(0);
    expect(rspEvent()).toBe(0);
  });
  it('flags rsp_prod more than a ring past rsp_cons', () => {
    setState(32, 112, 0, 0xfffffff0);
    expect(responseProdOverflow(STATE, 0x10)).toBe(0); // 32 ahead
    expect(responseProdOverflow(STATE, 0x11)).toBe(1); // 33 ahead
  });
});

describe('back ring', () => {
  beforeEach(clearArena);
  it('bounds unconsumed requests by the room left for responses', () => {
    setShared(100, 1, 0, 1); setState(32, 112, 0, 0);
    expect(unconsumedRequests(STATE)).toBe(32);
    setShared(10, 1, 0, 1); setState(32, 112, 0, 4);
    expect(unconsumedRequests(STATE)).toBe(6);
  });
  it('publishes rsp_prod and asks for notify when rsp_event lies in (old, new]', () => {
    setShared(0, 1, 0, 1); setState(32, 112, 3, 3);
    expect(pushResponsesAndCheckNotify(STATE)).toBe(1);
    expect(rspProd()).toBe(3);
    setShared(0, 1, 3, 10); setState(32, 112, 5, 5);
    expect(pushResponsesAndCheckNotify(STATE)).toBe(0);
  });
  it('final check re-arms req_event = req_cons + 1 when idle, reports work otherwise', () => {
    setShared(6, 2, 0, 1); setState(32, 112, 6, 6);
    expect(finalCheckForRequests(STATE)).toBe(0);
    expect(reqEvent()).toBe(7);
    setShared(8, 2, 0, 1); setState(32, 112, 6, 6);
    expect(finalCheckForRequests(STATE)).toBe(1);
    expect(reqEvent()).toBe(2);
  });
  it('flags req_prod more than a ring past rsp_prod_pvt', () => {
    setState(32, 112, 0xfffffff0, 0xfffffff0);
    expect(requestProdOverflow(STATE, 0x10)).toBe(0);
    expect(requestProdOverflow(STATE, 0x11)).toBe(1);
  });
});
