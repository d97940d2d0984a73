/**
 * CRC-32C against the published vectors: RFC 3720 appendix B.4 (iSCSI),
 * which lists each CRC as the bytes sent on the wire (least significant
 * first), and the CRC catalogue's check value for "123456789".
 */
import { describe, expect, it } from 'vitest';
import { crc32c } from '../src/queue/crc32c.js';

/** The RFC lists the CRC as 4 wire bytes, least significant first. */
const wire = (b0: number, b1: number, b2: number, b3: number): number => (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0;

describe('crc32c', () => {
  it('matches RFC 3720 B.4: 32 bytes of zeros -> aa 36 91 8a', () => {
    expect(crc32c(new Uint8Array(32))).toBe(wire(0xaa, 0x36, 0x91, 0x8a));
  });
  it('matches RFC 3720 B.4: 32 bytes of 0xff -> 43 ab a8 62', () => {
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(wire(0x43, 0xab, 0xa8, 0x62));
  });
  it('matches RFC 3720 B.4: 32 incrementing bytes 00..1f -> 4e 79 dd 46', () => {
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(wire(0x4e, 0x79, 0xdd, 0x46));
  });
  it('matches RFC 3720 B.4: 32 decrementing bytes 1f..00 -> 5c db 3f 11', () => {
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(wire(0x5c, 0xdb, 0x3f, 0x11));
  });
  it('matches RFC 3720 B.4: the iSCSI read command PDU -> 56 3a 96 d9', () => {
    // The RFC's rows of four bytes, offsets 0 to 44.
    const pdu = Uint8Array.from([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]);
    expect(crc32c(pdu)).toBe(wire(0x56, 0x3a, 0x96, 0xd9));
  });
  it('matches the CRC catalogue check value: "123456789" -> 0xe3069283', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });
  it('chains: crc32c(b, crc32c(a)) equals the CRC of a followed by b, at every split', () => {
    const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff);
    const whole = crc32c(data);
    for (let cut = 0; cut <= data.length; cut++) expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
  });
});
