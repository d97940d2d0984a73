import {
  blkifCopyIndirectSegments, blkifDecodeRequest, blkifDecodeResponse, blkifEncodeRequest,
  blkifEncodeResponse, blkifReapResponses, blkifTakeRequests, blkifWriteRequests, blkifWriteResponses,
} from '../blkif';
import { frontRingInit, backRingAttach } from '../ring';
import { clearArena, COMPS, DESCS, EXPECT, SCRATCH, SEGS, SHADOW, SRING, STATE, sameBytes } from './mem';

// Independent builders, written from blkif.h and engine.ts (not the encoder).
function desc(at: usize, op: u8, flag: u8, handle: u16, nr: u16, id: u64, sector: u64, arg: u64): void {
  store<u8>(at, op); store<u8>(at + 1, flag); store<u16>(at + 2, handle); store<u16>(at + 4, nr);
  store<i16>(at + 6, 0x5555); store<u64>(at + 8, id); store<u64>(at + 16, sector); store<u64>(at + 24, arg);
}
function seg(at: usize, gref: u32, first: u8, last: u8): void {
  store<u32>(at, gref); store<u8>(at + 4, first); store<u8>(at + 5, last); store<u16>(at + 6, 0);
}
function status(at: usize): i16 { return load<i16>(at + 6); }
function slot(i: u32): usize { return SRING + 64 + <usize>(i & 31) * 112; }

describe('blkifEncodeRequest', () => {
  beforeEach(clearArena);
  it('lays out a 2-segment write for x86_64-abi with zero padding', () => {
    seg(SEGS, 0x11223344, 0, 7); seg(SEGS + 8, 9, 2, 3);
    desc(DESCS, 1, 0, 0x0a0b, 2, 0x0102030405060708, 0x1000, SEGS);
    memory.fill(SCRATCH, 0xee, 112);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(0);
    store<u8>(EXPECT, 1); store<u8>(EXPECT + 1, 2); store<u16>(EXPECT + 2, 0x0a0b);
    store<u64>(EXPECT + 8, 0x0102030405060708); store<u64>(EXPECT + 16, 0x1000);
    store<u32>(EXPECT + 24, 0x11223344); store<u8>(EXPECT + 29, 7);
    store<u32>(EXPECT + 32, 9); store<u8>(EXPECT + 36, 2); store<u8>(EXPECT + 37, 3);
    expect(sameBytes(SCRATCH, EXPECT, 112)).toBe(true);
    expect(status(DESCS)).toBe(0);
  });
  it('packs x86_32-abi read without pad: id@4 sector@12 seg@20, 108 bytes', () => {
    seg(SEGS, 5, 1, 6);
    desc(DESCS, 0, 0, 3, 1, 42, 0xffffffff00, SEGS);
    memory.fill(SCRATCH, 0xee, 120);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 1)).toBe(0);
    store<u8>(EXPECT, 0); store<u8>(EXPECT + 1, 1); store<u16>(EXPECT + 2, 3);
    store<u64>(EXPECT + 4, 42); store<u64>(EXPECT + 12, 0xffffffff00);
    store<u32>(EXPECT + 20, 5); store<u8>(EXPECT + 24, 1); store<u8>(EXPECT + 25, 6);
    expect(sameBytes(SCRATCH, EXPECT, 108)).toBe(true);
    expect(load<u8>(SCRATCH + 108)).toBe(0xee, 'writes no byte past 108');
  });
  it('lays out a secure discard for both ABIs', () => {
    desc(DESCS, 5, 1, 7, 0, 9, 100, 2048);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(0);
    store<u8>(EXPECT, 5); store<u8>(EXPECT + 1, 1); store<u16>(EXPECT + 2, 7);
    store<u64>(EXPECT + 8, 9); store<u64>(EXPECT + 16, 100); store<u64>(EXPECT + 24, 2048);
    expect(sameBytes(SCRATCH, EXPECT, 112)).toBe(true);
    memory.fill(EXPECT, 0, 112);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 1)).toBe(0);
    store<u8>(EXPECT, 5); store<u8>(EXPECT + 1, 1); store<u16>(EXPECT + 2, 7);
    store<u64>(EXPECT + 4, 9); store<u64>(EXPECT + 12, 100); store<u64>(EXPECT + 20, 2048);
    expect(sameBytes(SCRATCH, EXPECT, 108)).toBe(true);
  });
  it('lays out an indirect write with ceil(n/512) grefs for both ABIs', () => {
    store<u32>(SEGS, 70); store<u32>(SEGS + 4, 71); store<u32>(SEGS + 8, 0xdead);
    desc(DESCS, 6, 1, 0x0102, 513, 8, 16, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(0);
    store<u8>(EXPECT, 6); store<u8>(EXPECT + 1, 1); store<u16>(EXPECT + 2, 513);
    store<u64>(EXPECT + 8, 8); store<u64>(EXPECT + 16, 16); store<u16>(EXPECT + 24, 0x0102);
    store<u32>(EXPECT + 28, 70); store<u32>(EXPECT + 32, 71);
    expect(sameBytes(SCRATCH, EXPECT, 112)).toBe(true);
    memory.fill(EXPECT, 0, 112);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 1)).toBe(0);
    store<u8>(EXPECT, 6); store<u8>(EXPECT + 1, 1); store<u16>(EXPECT + 2, 513);
    store<u64>(EXPECT + 4, 8); store<u64>(EXPECT + 12, 16); store<u16>(EXPECT + 20, 0x0102);
    store<u32>(EXPECT + 24, 70); store<u32>(EXPECT + 28, 71);
    expect(sameBytes(SCRATCH, EXPECT, 108)).toBe(true);
  });
  it('enforces every validation rule and leaves the slot untouched', () => {
    memory.fill(SCRATCH, 0xee, 112);
    seg(SEGS, 1, 0, 7);
    desc(DESCS, 4, 0, 0, 1, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-1); // unknown op 4
    expect(status(DESCS)).toBe(-1);
    desc(DESCS, 0, 0, 0, 0, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-2); // read with 0 segments
    desc(DESCS, 1, 0, 0, 12, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-2); // 12 segments
    desc(DESCS, 3, 0, 0, 0, 0, 0, 0);
    expect(blkifEncodeRequest(DESCS, EXPECT, 0)).toBe(0); // flush may carry none
    seg(SEGS + 8, 1, 3, 2);
    desc(DESCS, 1, 0, 0, 2, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-3); // first > last
    seg(SEGS + 8, 1, 0, 8);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-3); // last > 7
    desc(DESCS, 6, 2, 0, 1, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-4); // indirect_op barrier
    desc(DESCS, 6, 0, 0, 0, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-5);
    desc(DESCS, 6, 0, 0, 4097, 0, 0, SEGS);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-5);
    desc(DESCS, 5, 2, 0, 0, 0, 0, 0);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 0)).toBe(-7);
    expect(blkifEncodeRequest(DESCS, SCRATCH, 2)).toBe(-6);
    for (let i: usize = 0; i < 112; i++) expect(load<u8>(SCRATCH + i)).toBe(0xee);
  });
});

describe('blkifDecodeRequest', () => {
  beforeEach(clearArena);
  it('copies an x86_64 write into a descriptor and its segments (pad cleared)', () => {
    store<u8>(SCRATCH, 1); store<u8>(SCRATCH + 1, 2); store<u16>(SCRATCH + 2, 0x0506);
    store<u64>(SCRATCH + 8, 77); store<u64>(SCRATCH + 16, 88);
    store<u32>(SCRATCH + 24, 3); store<u8>(SCRATCH + 29, 7); store<u16>(SCRATCH + 30, 0xffff);
    store<u32>(SCRATCH + 32, 4); store<u8>(SCRATCH + 36, 1); store<u8>(SCRATCH + 37, 1);
    expect(blkifDecodeRequest(SCRATCH, DESCS, SEGS, 0)).toBe(0);
    expect(load<u8>(DESCS)).toBe(1);
    expect(load<u8>(DESCS + 1)).toBe(0);
    expect(load<u16>(DESCS + 2)).toBe(0x0506);
    expect(load<u16>(DESCS + 4)).toBe(2);
    expect(status(DESCS)).toBe(0);
    expect(load<u64>(DESCS + 8)).toBe(77);
    expect(load<u64>(DESCS + 16)).toBe(88);
    expect(load<u64>(DESCS + 24)).toBe(<u64>SEGS);
    expect(load<u64>(SEGS)).toBe(0x0000_0700_0000_0003);
    expect(load<u64>(SEGS + 8)).toBe(0x0000_0101_0000_0004);
  });
  it('reads an x86_32 indirect request: handle@20, grefs@24', () => {
    store<u8>(SCRATCH, 6); store<u8>(SCRATCH + 1, 0); store<u16>(SCRATCH + 2, 1024);
    store<u64>(SCRATCH + 4, 5); store<u64>(SCRATCH + 12, 6); store<u16>(SCRATCH + 20, 9);
    store<u32>(SCRATCH + 24, 100); store<u32>(SCRATCH + 28, 101);
    expect(blkifDecodeRequest(SCRATCH, DESCS, SEGS, 1)).toBe(0);
    expect(load<u8>(DESCS + 1)).toBe(0);
    expect(load<u16>(DESCS + 2)).toBe(9);
    expect(load<u16>(DESCS + 4)).toBe(1024);
    expect(load<u64>(DESCS + 8)).toBe(5);
    expect(load<u32>(SEGS)).toBe(100);
    expect(load<u32>(SEGS + 4)).toBe(101);
  });
  it('reports a peer request with a bad segment in its status', () => {
    store<u8>(SCRATCH, 0); store<u8>(SCRATCH + 1, 1);
    store<u8>(SCRATCH + 24 + 4, 5); store<u8>(SCRATCH + 24 + 5, 4);
    expect(blkifDecodeRequest(SCRATCH, DESCS, SEGS, 0)).toBe(-3);
    expect(status(DESCS)).toBe(-3);
    store<u8>(SCRATCH, 9);
    store<u64>(SCRATCH + 8, 1234);
    expect(blkifDecodeRequest(SCRATCH, DESCS, SEGS, 0)).toBe(-1);
    expect(load<u64>(DESCS + 8)).toBe(1234, 'id kept to answer EOPNOTSUPP');
  });
});

describe('responses', () => {
  beforeEach(clearArena);
  it('encodes 16 bytes for x86_64 and 12 for x86_32', () => {
    store<u64>(COMPS, 0xabcdef); store<u8>(COMPS + 8, 1); store<u8>(COMPS + 9, 0x77);
    store<i16>(COMPS + 10, -2); store<u32>(COMPS + 12, 0x99999999);
    memory.fill(SCRATCH, 0xee, 32);
    expect(blkifEncodeResponse(COMPS, SCRATCH, 1)).toBe(0);
    store<u64>(EXPECT, 0xabcdef); store<u8>(EXPECT + 8, 1); store<i16>(EXPECT + 10, -2);
    expect(sameBytes(SCRATCH, EXPECT, 12)).toBe(true);
    expect(load<u8>(SCRATCH + 12)).toBe(0xee);
    expect(blkifEncodeResponse(COMPS, SCRATCH, 0)).toBe(0);
    expect(sameBytes(SCRATCH, EXPECT, 16)).toBe(true);
  });
  it('decodes into a response entry and flags a status outside {0,-1,-2}', () => {
    store<u64>(SCRATCH, 3); store<u8>(SCRATCH + 8, 0); store<i16>(SCRATCH + 10, -1);
    expect(blkifDecodeResponse(SCRATCH, COMPS, 1)).toBe(0);
    expect(load<u64>(COMPS)).toBe(3);
    expect(load<i16>(COMPS + 10)).toBe(-1);
    store<i16>(SCRATCH + 10, 1);
    expect(blkifDecodeResponse(SCRATCH, COMPS, 0)).toBe(-24);
  });
});

describe('blkifWriteRequests / blkifTakeRequests', () => {
  beforeEach(clearArena);
  it('encodes into free slots, marks shadow ids and rejects bad ones', () => {
    frontRingInit(STATE, SRING, 1, 112);
    seg(SEGS, 1, 0, 7);
    desc(DESCS, 0, 0, 0, 1, 3, 0, SEGS);          // ok
    desc(DESCS + 32, 0, 0, 0, 1, 32, 0, SEGS);    // id out of range
    desc(DESCS + 64, 0, 0, 0, 1, 3, 0, SEGS);     // id 3 in flight
    desc(DESCS + 96, 6, 1, 0, 600, 4, 0, SEGS);   // indirect write, ok
    expect(blkifWriteRequests(STATE, SHADOW, DESCS, 4, 0)).toBe(4);
    expect(status(DESCS)).toBe(0);
    expect(status(DESCS + 32)).toBe(-8);
    expect(status(DESCS + 64)).toBe(-9);
    expect(status(DESCS + 96)).toBe(0);
    expect(load<u8>(SHADOW + 3)).toBe(1); // read + 1
    expect(load<u8>(SHADOW + 4)).toBe(2); // indirect_op write + 1
    expect(load<u32>(STATE + 12)).toBe(2);
    expect(load<u32>(SRING)).toBe(0, 'not published yet');
    expect(load<u64>(slot(0) + 8)).toBe(3);
    expect(load<u8>(slot(1))).toBe(6);
  });
  it('stops when the ring is full', () => {
    frontRingInit(STATE, SRING, 1, 112);
    store<u32>(STATE + 12, 30);
    for (let i: u32 = 0; i < 4; i++) desc(DESCS + i * 32, 3, 0, 0, 0, i, 0, 0);
    expect(blkifWriteRequests(STATE, SHADOW, DESCS, 4, 0)).toBe(2);
    expect(status(DESCS + 64)).toBe(0x5555, 'unprocessed descriptor untouched');
  });
  it('back takes what the front pushed, bounded by max, and validates copies', () => {
    frontRingInit(STATE, SRING, 1, 108);
    store<u8>(slot(0), 5); store<u8>(slot(0) + 1, 1); store<u64>(slot(0) + 4, 11); store<u64>(slot(0) + 20, 64);
    store<u8>(slot(1), 0); store<u8>(slot(1) + 1, 12);
    store<u32>(SRING, 2); // req_prod
    const back = STATE + 32;
    expect(backRingAttach(back, SRING, 1, 108)).toBe(32);
    expect(blkifTakeRequests(back, DESCS, SEGS, 1, 1)).toBe(1);
    expect(load<u64>(DESCS + 8)).toBe(11);
    expect(load<u64>(DESCS + 24)).toBe(64);
    expect(load<u8>(DESCS + 1)).toBe(1);
    expect(blkifTakeRequests(back, DESCS, SEGS, 8, 1)).toBe(1);
    expect(status(DESCS)).toBe(-2);
    expect(load<u32>(back + 16)).toBe(2);
    store<u32>(SRING, 40); // 40 past rsp_prod_pvt 0 > 32
    expect(blkifTakeRequests(back, DESCS, SEGS, 8, 1)).toBe(-25);
  });
});

function respond(i: u32, id: u64, op: u8, st: i16): void {
  store<u64>(slot(i), id); store<u8>(slot(i) + 8, op); store<i16>(slot(i) + 10, st);
}

describe('blkifReapResponses', () => {
  beforeEach(clearArena);
  it('copies valid responses, clears shadow and advances rsp_cons', () => {
    frontRingInit(STATE, SRING, 1, 112);
    store<u8>(SHADOW + 5, 2); store<u8>(SHADOW + 6, 4);
    respond(0, 5, 1, 0); respond(1, 6, 3, -2);
    store<u32>(SRING + 8, 2);
    expect(blkifReapResponses(STATE, SHADOW, COMPS, 8, 0)).toBe(2);
    expect(load<u64>(COMPS + 16)).toBe(6);
    expect(load<i16>(COMPS + 26)).toBe(-2);
    expect(load<u8>(SHADOW + 5)).toBe(0);
    expect(load<u32>(STATE + 16)).toBe(2);
  });
  it('fails on rsp_prod past the ring before reading any slot', () => {
    frontRingInit(STATE, SRING, 1, 112);
    store<u32>(SRING + 8, 33);
    expect(blkifReapResponses(STATE, SHADOW, COMPS, 8, 0)).toBe(-20);
    expect(load<u32>(STATE + 16)).toBe(0);
  });
  it('fails on each protocol violation', () => {
    frontRingInit(STATE, SRING, 1, 112);
    store<u32>(SRING + 8, 1);
    store<u8>(SHADOW + 1, 1);
    respond(0, 32, 0, 0);
    expect(blkifReapResponses(STATE, SHADOW, COMPS, 8, 0)).toBe(-21);
    respond(0, 2, 0, 0);
    expect(blkifReapResponses(STATE, SHADOW, COMPS, 8, 0)).toBe(-22);
    respond(0, 1, 1, 0);
    expect(blkifReapResponses(STATE, SHADOW, COMPS, 8, 0)).toBe(-23);
    respond(0, 1, 0, 3);
    expect(blkifReapResponses(STATE, SHADOW, COMPS, 8, 0)).toBe(-24);
    expect(load<u8>(SHADOW + 1)).toBe(1);
    expect(load<u32>(STATE + 16)).toBe(0);
  });
  it('round trips through the back writing x86_32 responses', () => {
    frontRingInit(STATE, SRING, 1, 108);
    const back = STATE + 32;
    backRingAttach(back, SRING, 1, 108);
    store<u8>(SHADOW + 9, 1);
    store<u64>(COMPS, 9); store<u8>(COMPS + 8, 0); store<i16>(COMPS + 10, -1);
    expect(blkifWriteResponses(back, COMPS, 1, 1)).toBe(1);
    store<u32>(SRING + 8, 1);
    expect(blkifReapResponses(STATE, SHADOW, COMPS + 64, 8, 1)).toBe(1);
    expect(load<u64>(COMPS + 64)).toBe(9);
    expect(load<i16>(COMPS + 74)).toBe(-1);
  });
});

describe('blkifCopyIndirectSegments', () => {
  beforeEach(clearArena);
  it('copies across page boundaries and validates the copy', () => {
    store<u32>(SCRATCH, <u32>SRING); store<u32>(SCRATCH + 4, <u32>(SRING + 8192));
    seg(SRING + 511 * 8, 7, 0, 7); seg(SRING + 8192, 8, 1, 2);
    store<u16>(SRING + 8192 + 6, 0xffff);
    for (let i: u32 = 0; i < 511; i++) seg(SRING + i * 8, i, 0, 0);
    expect(blkifCopyIndirectSegments(SCRATCH, 513, EXPECT - 4096)).toBe(0);
    expect(load<u32>(EXPECT - 4096 + 511 * 8)).toBe(7);
    expect(load<u64>(EXPECT - 4096 + 512 * 8)).toBe(0x0000_0201_0000_0008);
    store<u8>(SRING + 8192 + 5, 9);
    expect(blkifCopyIndirectSegments(SCRATCH, 513, EXPECT - 4096)).toBe(-3);
    expect(blkifCopyIndirectSegments(SCRATCH, 0, EXPECT - 4096)).toBe(-5);
    expect(blkifCopyIndirectSegments(SCRATCH, 4097, EXPECT - 4096)).toBe(-5);
  });
});
