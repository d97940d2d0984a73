/*
 * blkif structs for both ABIs a backend must serve on x86-64.
 *
 * x86_64-abi is the native layout of <xen/io/blkif.h>. The x86_32-abi
 * structs are not in the public headers (Linux keeps them in
 * drivers/block/xen-blkback/common.h), so they are declared here with the
 * i386 SysV rule that uint64_t is 4-byte aligned inside structs, written as
 * `#pragma pack(4)`. The _Static_asserts pin the layout to the sizes and
 * offsets of the i386 ABI (request 108 bytes with id@4, sector@12, seg@20;
 * response 12 bytes; discard id@4, sector@12, nr_sectors@20) — chosen instead
 * of a second -m32 object because gcc-multilib is not a dependency here.
 *
 *  x86_32 request (108 bytes)            x86_32 response (12 bytes)
 *  0  operation u8                       0  id        u64
 *  1  nr_segments u8                     8  operation u8
 *  2  handle u16                         10 status    i16
 *  4  id u64
 *  12 sector_number u64
 *  20 seg[11] (8 bytes each: gref u32, first_sect u8, last_sect u8, pad u16)
 */
#ifndef XENPV_BLKIF_ABI_H
#define XENPV_BLKIF_ABI_H

#include <stddef.h>
#include <stdint.h>
#include "peer.h"
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>
#include <xen/io/xenbus.h>

#pragma pack(push, 4)
struct blkif_x86_32_request {
    uint8_t        operation;
    uint8_t        nr_segments;
    blkif_vdev_t   handle;
    uint64_t       id;
    blkif_sector_t sector_number;
    struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct blkif_x86_32_request_discard {
    uint8_t        operation;
    uint8_t        flag;
    blkif_vdev_t   handle;
    uint64_t       id;
    blkif_sector_t sector_number;
    uint64_t       nr_sectors;
};
struct blkif_x86_32_response {
    uint64_t id;
    uint8_t  operation;
    int16_t  status;
};
#pragma pack(pop)

DEFINE_RING_TYPES(blkif_x86_32, struct blkif_x86_32_request, struct blkif_x86_32_response);

_Static_assert(sizeof(struct blkif_x86_32_request) == 108, "x86_32 request is 108 bytes");
_Static_assert(offsetof(struct blkif_x86_32_request, id) == 4, "x86_32 id@4");
_Static_assert(offsetof(struct blkif_x86_32_request, sector_number) == 12, "x86_32 sector@12");
_Static_assert(offsetof(struct blkif_x86_32_request, seg) == 20, "x86_32 seg@20");
_Static_assert(sizeof(struct blkif_x86_32_response) == 12, "x86_32 response is 12 bytes");
_Static_assert(offsetof(struct blkif_x86_32_response, status) == 10, "x86_32 status@10");
_Static_assert(offsetof(struct blkif_x86_32_request_discard, nr_sectors) == 20, "x86_32 nr_sectors@20");

_Static_assert(sizeof(struct blkif_request) == 112, "x86_64 request is 112 bytes");
_Static_assert(offsetof(struct blkif_request, seg) == 24, "x86_64 seg@24");
_Static_assert(sizeof(struct blkif_response) == 16, "x86_64 response is 16 bytes");
_Static_assert(offsetof(struct blkif_request_discard, nr_sectors) == 24, "x86_64 nr_sectors@24");
_Static_assert(sizeof(struct blkif_request_segment) == 8, "segment is 8 bytes");

enum blkif_abi { BLKIF_ABI_X86_64 = 64, BLKIF_ABI_X86_32 = 32 };

#endif
