/**
 * blkif / ring / grant wire constants, Wasm side: the one place assembly/
 * spells them. C spelling as in xen/include/public/io/{ring,blkif}.h and
 * xen/include/public/grant_table.h; checked against the installed headers by
 * test/golden (through the engine), and equal to src/blkif/constants.ts.
 */

// ---- io/ring.h ----
@inline export const XEN_PAGE_SIZE: u32 = 4096;
/** sizeof(struct xx_sring) before ring[]: 4 indices + 48 bytes of pad. */
@inline export const SHARED_RING_HEADER_BYTES: u32 = 64;
/** ring-page-order 0..4: 1..16 pages. */
@inline export const XENBUS_MAX_RING_PAGES: u32 = 16;

// ---- io/blkif.h: operations ----
@inline export const BLKIF_OP_READ: u8 = 0;
@inline export const BLKIF_OP_WRITE: u8 = 1;
@inline export const BLKIF_OP_WRITE_BARRIER: u8 = 2;
@inline export const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
@inline export const BLKIF_OP_DISCARD: u8 = 5;
@inline export const BLKIF_OP_INDIRECT: u8 = 6;

// ---- io/blkif.h: response status ----
@inline export const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
@inline export const BLKIF_RSP_ERROR: i16 = -1;
@inline export const BLKIF_RSP_OKAY: i16 = 0;

// ---- io/blkif.h: limits ----
@inline export const BLKIF_MAX_SEGMENTS_PER_REQUEST: u32 = 11;
@inline export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: u32 = 8;
/** XEN_PAGE_SIZE / sizeof(struct blkif_request_segment) */
@inline export const BLKIF_SEGMENTS_PER_INDIRECT_PAGE: u32 = 512;
@inline export const BLKIF_MAX_INDIRECT_SEGMENTS: u32 = 4096; // 8 * 512
@inline export const BLKIF_DISCARD_SECURE: u8 = 1;
/** first_sect / last_sect count 512-byte sectors within a 4096-byte page. */
@inline export const SECTORS_PER_PAGE: u32 = 8;
@inline export const BLKIF_SEGMENT_BYTES: u32 = 8;

// ---- sizes per ABI (xenstore `protocol`) ----
@inline export const ABI_X86_64: u32 = 0;
@inline export const ABI_X86_32: u32 = 1;
@inline export const BLKIF_REQUEST_BYTES_X86_64: u32 = 112;
@inline export const BLKIF_REQUEST_BYTES_X86_32: u32 = 108;
@inline export const BLKIF_RESPONSE_BYTES_X86_64: u32 = 16;
@inline export const BLKIF_RESPONSE_BYTES_X86_32: u32 = 12;

// ---- grant_table.h: grant entry v1 flags ----
@inline export const GTF_permit_access: u16 = 1;
@inline export const GTF_readonly: u16 = 1 << 2;
@inline export const GTF_reading: u16 = 1 << 3;
@inline export const GTF_writing: u16 = 1 << 4;
@inline export const GRANT_ENTRY_V1_BYTES: u32 = 8;
