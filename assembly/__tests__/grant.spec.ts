import {
  grantEntryEndAccess, grantEntryWrite, grefAlloc, grefFree, grefFreeListInit, packIndirectPages, packSegments,
} from '../grant';
import { clearArena, EXPECT, SCRATCH, SEGS, SRING, sameBytes } from './mem';

const TABLE = SRING;
const LIST = SRING + 4096;

describe('grant entry v1', () => {
  beforeEach(clearArena);
  it('writes flags u16@0, domid u16@2, frame u32@4', () => {
    grantEntryWrite(TABLE, 3, 0x0102, 0xa0b0c0d0, 1 | 4);
    expect(load<u16>(TABLE + 24)).toBe(5);
    expect(load<u16>(TABLE + 26)).toBe(0x0102);
    expect(load<u32>(TABLE + 28)).toBe(0xa0b0c0d0);
  });
  it('ends access by clearing flags', () => {
    store<u16>(TABLE + 8, 1);
    expect(grantEntryEndAccess(TABLE, 1)).toBe(0);
    expect(load<u16>(TABLE + 8)).toBe(0);
  });
  it('refuses to end access while the peer is reading or writing', () => {
    store<u16>(TABLE + 8, 1 | 8);
    expect(grantEntryEndAccess(TABLE, 1)).toBe(-40);
    expect(load<u16>(TABLE + 8)).toBe(9);
    store<u16>(TABLE + 8, 1 | 16);
    expect(grantEntryEndAccess(TABLE, 1)).toBe(-40);
  });
});

describe('gref free list', () => {
  beforeEach(clearArena);
  it('initialises header and links', () => {
    grefFreeListInit(LIST, 100, 3);
    expect(load<u32>(LIST)).toBe(0);
    expect(load<u32>(LIST + 4)).toBe(3);
    expect(load<u32>(LIST + 8)).toBe(3);
    expect(load<u32>(LIST + 12)).toBe(100);
    expect(load<u32>(LIST + 16)).toBe(1);
    expect(load<u32>(LIST + 20)).toBe(2);
    expect(load<u32>(LIST + 24)).toBe(0xffffffff);
  });
  it('allocates in order until empty, then returns 0', () => {
    grefFreeListInit(LIST, 100, 3);
    expect(grefAlloc(LIST, 2, SCRATCH)).toBe(2);
    expect(load<u32>(SCRATCH)).toBe(100);
    expect(load<u32>(SCRATCH + 4)).toBe(101);
    expect(grefAlloc(LIST, 5, SCRATCH)).toBe(1);
    expect(load<u32>(SCRATCH)).toBe(102);
    expect(grefAlloc(LIST, 1, SCRATCH)).toBe(0);
    expect(load<u32>(LIST + 4)).toBe(0);
    expect(load<u32>(LIST)).toBe(0xffffffff);
  });
  it('frees LIFO and refuses foreign or already-free grefs', () => {
    grefFreeListInit(LIST, 100, 3);
    grefAlloc(LIST, 3, SCRATCH);
    store<u32>(SCRATCH, 101);
    expect(grefFree(LIST, SCRATCH, 1)).toBe(0);
    expect(grefFree(LIST, SCRATCH, 1)).toBe(-42);
    store<u32>(SCRATCH, 99);
    expect(grefFree(LIST, SCRATCH, 1)).toBe(-41);
    store<u32>(SCRATCH, 103);
    expect(grefFree(LIST, SCRATCH, 1)).toBe(-41);
    expect(load<u32>(LIST + 4)).toBe(1);
    expect(grefAlloc(LIST, 1, SCRATCH)).toBe(1);
    expect(load<u32>(SCRATCH)).toBe(101);
  });
});

describe('packSegments', () => {
  beforeEach(clearArena);
  it('covers whole pages and ends the last at the remaining sector', () => {
    store<u32>(SCRATCH, 7); store<u32>(SCRATCH + 4, 8);
    memory.fill(SEGS, 0xee, 16);
    expect(packSegments(SCRATCH, 2, 11, SEGS)).toBe(2);
    store<u32>(EXPECT, 7); store<u8>(EXPECT + 4, 0); store<u8>(EXPECT + 5, 7);
    store<u32>(EXPECT + 8, 8); store<u8>(EXPECT + 12, 0); store<u8>(EXPECT + 13, 2);
    expect(sameBytes(SEGS, EXPECT, 16)).toBe(true);
  });
  it('refuses a sector count the pages cannot cover exactly', () => {
    expect(packSegments(SCRATCH, 2, 17, SEGS)).toBe(-3);
    expect(packSegments(SCRATCH, 2, 8, SEGS)).toBe(-3);
    expect(packSegments(SCRATCH, 0, 0, SEGS)).toBe(0);
  });
});

describe('packIndirectPages', () => {
  beforeEach(clearArena);
  it('spreads 513 segments over two pages and zeroes the rest of the last', () => {
    store<u32>(SCRATCH, <u32>SRING); store<u32>(SCRATCH + 4, <u32>(SRING + 4096));
    memory.fill(SRING + 4096, 0xee, 4096);
    for (let i: u32 = 0; i < 513; i++) store<u64>(SRING + 8192 + i * 8, 0xffff_0000_0000_0000 | <u64>i);
    expect(packIndirectPages(SRING + 8192, 513, SCRATCH)).toBe(2);
    expect(load<u64>(SRING + 511 * 8)).toBe(511);
    expect(load<u64>(SRING + 4096)).toBe(512);
    expect(load<u8>(SRING + 4096 + 8)).toBe(0);
    expect(load<u8>(SRING + 8191)).toBe(0);
    expect(packIndirectPages(SEGS, 0, SCRATCH)).toBe(-5);
    expect(packIndirectPages(SEGS, 4097, SCRATCH)).toBe(-5);
  });
});
