/**
 * blkif wire constants, TypeScript side: the one place src/ spells them.
 * Spelled as in xen/include/public/io/blkif.h; checked against the installed
 * Xen headers by test/golden. (assembly/constants.ts is the Wasm side.)
 */

export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;

export const BLKIF_RSP_EOPNOTSUPP = -2;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_OKAY = 0;

export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
/** 4096 / sizeof(struct blkif_request_segment) */
export const BLKIF_SEGMENTS_PER_INDIRECT_PAGE = 512;
export const BLKIF_DISCARD_SECURE = 1;

/** first_sect/last_sect count 512-byte sectors within a 4096-byte page. */
export const SECTORS_PER_PAGE = 8;
export const XEN_PAGE_SIZE = 4096;
export const SHARED_RING_HEADER_BYTES = 64;

/** sizeof(blkif_request_t) / sizeof(blkif_response_t) per ABI. */
export const BLKIF_REQUEST_BYTES_X86_64 = 112;
export const BLKIF_REQUEST_BYTES_X86_32 = 108;
export const BLKIF_RESPONSE_BYTES_X86_64 = 16;
export const BLKIF_RESPONSE_BYTES_X86_32 = 12;
export const BLKIF_SEGMENT_BYTES = 8;

/** xenstore `protocol` values (xen/io/protocols.h). */
export const XEN_IO_PROTO_ABI_X86_64 = 'x86_64-abi';
export const XEN_IO_PROTO_ABI_X86_32 = 'x86_32-abi';

/** Grant entry v1 (xen/grant_table.h). */
export const GTF_permit_access = 1;
export const GTF_readonly = 1 << 2;
export const GTF_reading = 1 << 3;
export const GTF_writing = 1 << 4;
export const GRANT_ENTRY_V1_BYTES = 8;

/** Xenbus states (xen/io/xenbus.h), wire values. */
export const enum XenbusState {
  Unknown = 0,
  Initialising = 1,
  InitWait = 2,
  Initialised = 3,
  Connected = 4,
  Closing = 5,
  Closed = 6,
  Reconfiguring = 7,
  Reconfigured = 8,
}

/** vdisk `info` bits (blkif.h). */
export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;
