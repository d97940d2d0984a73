/*
 * Golden values straight from Xen's public headers (Debian libxen-dev).
 *
 * Built two ways by test/golden/golden.test.ts:
 *
 *   gcc xen-layout.c -o xen-layout && ./xen-layout
 *       native x86_64-abi: prints one JSON object on stdout
 *       { "abi", "names": [...], "numbers": {name: value}, "messages": {name: hex} }
 *
 *   gcc -m32 -ffreestanding -S xen-layout.c -o xen-layout-32.s
 *       x86_32-abi without an i386 libc: nothing is linked or run; the test
 *       reads the data directives of `golden_numbers` (one .quad per name, in
 *       the order of "names") and of every `golden_msg_*` object.
 *
 * Every value below is computed by the compiler from the headers (sizeof,
 * offsetof, enum and #define values, __CONST_RING_SIZE, and messages built
 * with the C structs and designated initialisers). Nothing here is copied
 * from our TypeScript or AssemblyScript.
 */
#include <stdint.h>
#include <stddef.h>
#include <xen/io/ring.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>
#include <xen/io/xs_wire.h>
#include <xen/io/xenbus.h>

#if defined(__x86_64__)
#define GOLDEN_ABI "x86_64-abi"
#elif defined(__i386__)
#define GOLDEN_ABI "x86_32-abi"
#else
#error "golden values are defined for x86_64 and i386 only"
#endif

/* ---- generic rings of chosen slot sizes, for entry counts ---- */
#define SLOT_SIZES(X) X(12) X(16) X(36) X(64) X(108) X(112) X(128) X(200) X(1000) X(2016) X(4032) X(4033)
#define DEFINE_SLOT_RING(S)                                   \
    struct slot##S##_req { unsigned char b[S]; };             \
    struct slot##S##_rsp { unsigned char b[1]; };             \
    DEFINE_RING_TYPES(slot##S, struct slot##S##_req, struct slot##S##_rsp);
SLOT_SIZES(DEFINE_SLOT_RING)

#define RING_COUNTS(X, S)                                                 \
    X("ring.slot" #S ".pages1", __CONST_RING_SIZE(slot##S, 4096 * 1))     \
    X("ring.slot" #S ".pages2", __CONST_RING_SIZE(slot##S, 4096 * 2))     \
    X("ring.slot" #S ".pages4", __CONST_RING_SIZE(slot##S, 4096 * 4))     \
    X("ring.slot" #S ".pages8", __CONST_RING_SIZE(slot##S, 4096 * 8))     \
    X("ring.slot" #S ".pages16", __CONST_RING_SIZE(slot##S, 4096 * 16))

#define SLOT_RING_COUNTS(X)                                                \
    RING_COUNTS(X, 12) RING_COUNTS(X, 16) RING_COUNTS(X, 36)               \
    RING_COUNTS(X, 64) RING_COUNTS(X, 108) RING_COUNTS(X, 112)             \
    RING_COUNTS(X, 128) RING_COUNTS(X, 200) RING_COUNTS(X, 1000)           \
    RING_COUNTS(X, 2016) RING_COUNTS(X, 4032) RING_COUNTS(X, 4033)

#define SLOT_SIZE_VALUES(X)                                                \
    X("sizeof.slot12_sring_entry", sizeof(union slot12_sring_entry))       \
    X("sizeof.slot4033_sring_entry", sizeof(union slot4033_sring_entry))

/* ---- every number the test compares, name then value ---- */
#define NUMBERS(X)                                                                          \
    /* struct sizes and field offsets */                                                    \
    X("sizeof.blkif_request", sizeof(struct blkif_request))                                 \
    X("offsetof.blkif_request.operation", offsetof(struct blkif_request, operation))       \
    X("offsetof.blkif_request.nr_segments", offsetof(struct blkif_request, nr_segments))   \
    X("offsetof.blkif_request.handle", offsetof(struct blkif_request, handle))             \
    X("offsetof.blkif_request.id", offsetof(struct blkif_request, id))                     \
    X("offsetof.blkif_request.sector_number", offsetof(struct blkif_request, sector_number)) \
    X("offsetof.blkif_request.seg", offsetof(struct blkif_request, seg))                   \
    X("sizeof.blkif_request_segment", sizeof(struct blkif_request_segment))                 \
    X("offsetof.blkif_request_segment.gref", offsetof(struct blkif_request_segment, gref)) \
    X("offsetof.blkif_request_segment.first_sect", offsetof(struct blkif_request_segment, first_sect)) \
    X("offsetof.blkif_request_segment.last_sect", offsetof(struct blkif_request_segment, last_sect)) \
    X("sizeof.blkif_request_discard", sizeof(struct blkif_request_discard))                 \
    X("offsetof.blkif_request_discard.operation", offsetof(struct blkif_request_discard, operation)) \
    X("offsetof.blkif_request_discard.flag", offsetof(struct blkif_request_discard, flag)) \
    X("offsetof.blkif_request_discard.handle", offsetof(struct blkif_request_discard, handle)) \
    X("offsetof.blkif_request_discard.id", offsetof(struct blkif_request_discard, id))     \
    X("offsetof.blkif_request_discard.sector_number", offsetof(struct blkif_request_discard, sector_number)) \
    X("offsetof.blkif_request_discard.nr_sectors", offsetof(struct blkif_request_discard, nr_sectors)) \
    X("sizeof.blkif_request_indirect", sizeof(struct blkif_request_indirect))               \
    X("offsetof.blkif_request_indirect.operation", offsetof(struct blkif_request_indirect, operation)) \
    X("offsetof.blkif_request_indirect.indirect_op", offsetof(struct blkif_request_indirect, indirect_op)) \
    X("offsetof.blkif_request_indirect.nr_segments", offsetof(struct blkif_request_indirect, nr_segments)) \
    X("offsetof.blkif_request_indirect.id", offsetof(struct blkif_request_indirect, id))   \
    X("offsetof.blkif_request_indirect.sector_number", offsetof(struct blkif_request_indirect, sector_number)) \
    X("offsetof.blkif_request_indirect.handle", offsetof(struct blkif_request_indirect, handle)) \
    X("offsetof.blkif_request_indirect.indirect_grefs", offsetof(struct blkif_request_indirect, indirect_grefs)) \
    X("sizeof.blkif_response", sizeof(struct blkif_response))                               \
    X("offsetof.blkif_response.id", offsetof(struct blkif_response, id))                   \
    X("offsetof.blkif_response.operation", offsetof(struct blkif_response, operation))     \
    X("offsetof.blkif_response.status", offsetof(struct blkif_response, status))           \
    X("sizeof.blkif_sring_entry", sizeof(union blkif_sring_entry))                          \
    X("offsetof.blkif_sring.req_prod", offsetof(struct blkif_sring, req_prod))             \
    X("offsetof.blkif_sring.req_event", offsetof(struct blkif_sring, req_event))           \
    X("offsetof.blkif_sring.rsp_prod", offsetof(struct blkif_sring, rsp_prod))             \
    X("offsetof.blkif_sring.rsp_event", offsetof(struct blkif_sring, rsp_event))           \
    X("offsetof.blkif_sring.ring", offsetof(struct blkif_sring, ring))                     \
    X("sizeof.grant_entry_v1", sizeof(struct grant_entry_v1))                               \
    X("offsetof.grant_entry_v1.flags", offsetof(struct grant_entry_v1, flags))             \
    X("offsetof.grant_entry_v1.domid", offsetof(struct grant_entry_v1, domid))             \
    X("offsetof.grant_entry_v1.frame", offsetof(struct grant_entry_v1, frame))             \
    X("sizeof.xsd_sockmsg", sizeof(struct xsd_sockmsg))                                     \
    X("offsetof.xsd_sockmsg.type", offsetof(struct xsd_sockmsg, type))                     \
    X("offsetof.xsd_sockmsg.req_id", offsetof(struct xsd_sockmsg, req_id))                 \
    X("offsetof.xsd_sockmsg.tx_id", offsetof(struct xsd_sockmsg, tx_id))                   \
    X("offsetof.xsd_sockmsg.len", offsetof(struct xsd_sockmsg, len))                       \
    /* ring entry counts: the blkif ring itself and generic slot sizes */                  \
    X("ring.blkif.pages1", __CONST_RING_SIZE(blkif, 4096 * 1))                              \
    X("ring.blkif.pages2", __CONST_RING_SIZE(blkif, 4096 * 2))                              \
    X("ring.blkif.pages4", __CONST_RING_SIZE(blkif, 4096 * 4))                              \
    X("ring.blkif.pages8", __CONST_RING_SIZE(blkif, 4096 * 8))                              \
    X("ring.blkif.pages16", __CONST_RING_SIZE(blkif, 4096 * 16))                            \
    SLOT_SIZE_VALUES(X)                                                                     \
    SLOT_RING_COUNTS(X)                                                                     \
    /* constants */                                                                         \
    X("BLKIF_OP_READ", BLKIF_OP_READ)                                                       \
    X("BLKIF_OP_WRITE", BLKIF_OP_WRITE)                                                     \
    X("BLKIF_OP_WRITE_BARRIER", BLKIF_OP_WRITE_BARRIER)                                     \
    X("BLKIF_OP_FLUSH_DISKCACHE", BLKIF_OP_FLUSH_DISKCACHE)                                 \
    X("BLKIF_OP_DISCARD", BLKIF_OP_DISCARD)                                                 \
    X("BLKIF_OP_INDIRECT", BLKIF_OP_INDIRECT)                                               \
    X("BLKIF_RSP_OKAY", BLKIF_RSP_OKAY)                                                     \
    X("BLKIF_RSP_ERROR", BLKIF_RSP_ERROR)                                                   \
    X("BLKIF_RSP_EOPNOTSUPP", BLKIF_RSP_EOPNOTSUPP)                                         \
    X("BLKIF_MAX_SEGMENTS_PER_REQUEST", BLKIF_MAX_SEGMENTS_PER_REQUEST)                     \
    X("BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST", BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)         \
    X("BLKIF_DISCARD_SECURE", BLKIF_DISCARD_SECURE)                                         \
    X("VDISK_CDROM", VDISK_CDROM)                                                           \
    X("VDISK_REMOVABLE", VDISK_REMOVABLE)                                                   \
    X("VDISK_READONLY", VDISK_READONLY)                                                     \
    X("GTF_permit_access", GTF_permit_access)                                               \
    X("GTF_readonly", GTF_readonly)                                                         \
    X("GTF_reading", GTF_reading)                                                           \
    X("GTF_writing", GTF_writing)                                                           \
    X("XenbusStateUnknown", XenbusStateUnknown)                                             \
    X("XenbusStateInitialising", XenbusStateInitialising)                                   \
    X("XenbusStateInitWait", XenbusStateInitWait)                                           \
    X("XenbusStateInitialised", XenbusStateInitialised)                                     \
    X("XenbusStateConnected", XenbusStateConnected)                                         \
    X("XenbusStateClosing", XenbusStateClosing)                                             \
    X("XenbusStateClosed", XenbusStateClosed)                                               \
    X("XenbusStateReconfiguring", XenbusStateReconfiguring)                                 \
    X("XenbusStateReconfigured", XenbusStateReconfigured)                                   \
    X("XS_CONTROL", XS_CONTROL)                                                             \
    X("XS_DEBUG", XS_DEBUG)                                                                 \
    X("XS_DIRECTORY", XS_DIRECTORY)                                                         \
    X("XS_READ", XS_READ)                                                                   \
    X("XS_GET_PERMS", XS_GET_PERMS)                                                         \
    X("XS_WATCH", XS_WATCH)                                                                 \
    X("XS_UNWATCH", XS_UNWATCH)                                                             \
    X("XS_TRANSACTION_START", XS_TRANSACTION_START)                                         \
    X("XS_TRANSACTION_END", XS_TRANSACTION_END)                                             \
    X("XS_INTRODUCE", XS_INTRODUCE)                                                         \
    X("XS_RELEASE", XS_RELEASE)                                                             \
    X("XS_GET_DOMAIN_PATH", XS_GET_DOMAIN_PATH)                                             \
    X("XS_WRITE", XS_WRITE)                                                                 \
    X("XS_MKDIR", XS_MKDIR)                                                                 \
    X("XS_RM", XS_RM)                                                                       \
    X("XS_SET_PERMS", XS_SET_PERMS)                                                         \
    X("XS_WATCH_EVENT", XS_WATCH_EVENT)                                                     \
    X("XS_ERROR", XS_ERROR)                                                                 \
    X("XS_IS_DOMAIN_INTRODUCED", XS_IS_DOMAIN_INTRODUCED)                                   \
    X("XS_RESUME", XS_RESUME)                                                               \
    X("XS_SET_TARGET", XS_SET_TARGET)                                                       \
    X("XS_RESET_WATCHES", XS_RESET_WATCHES)                                                 \
    X("XS_DIRECTORY_PART", XS_DIRECTORY_PART)                                               \
    X("XS_TYPE_COUNT", XS_TYPE_COUNT)                                                       \
    X("XS_INVALID", XS_INVALID)                                                             \
    X("XENSTORE_PAYLOAD_MAX", XENSTORE_PAYLOAD_MAX)                                         \
    X("XENSTORE_RING_SIZE", XENSTORE_RING_SIZE)

#define AS_VALUE(name, value) (long long)(value),
/* Read from the -m32 assembly: one .quad per entry of "names". */
__attribute__((used)) const long long golden_numbers[] = { NUMBERS(AS_VALUE) };

/*
 * ---- messages built with the C structs ----
 * Ids and sectors use all 64 bits so a swapped or truncated word shows.
 * The -m32 build reads each object from its data directives.
 */
#define SEG(g, f, l) { .gref = (g), .first_sect = (f), .last_sect = (l) }
#define SEGS11                                                                  \
    { SEG(0x00000100u, 0, 7), SEG(0x00000101u, 1, 7), SEG(0x00000102u, 0, 0),   \
      SEG(0x00010203u, 7, 7), SEG(0x7fffffffu, 2, 5), SEG(0x80000000u, 0, 7),   \
      SEG(0xfffffffeu, 3, 3), SEG(0x12345678u, 0, 6), SEG(0x00abcdefu, 1, 2),   \
      SEG(0x00000009u, 4, 7), SEG(0xdeadbeefu, 0, 7) }

__attribute__((used)) const struct blkif_request golden_msg_read_1seg = {
    .operation = BLKIF_OP_READ, .nr_segments = 1, .handle = 0x0301,
    .id = 0x0123456789abcdefull, .sector_number = 0x0000000123456789ull,
    .seg = { SEG(0x00001234u, 0, 7) },
};
__attribute__((used)) const struct blkif_request golden_msg_read_11seg = {
    .operation = BLKIF_OP_READ, .nr_segments = 11, .handle = 0xca00,
    .id = 0xfedcba9876543210ull, .sector_number = 0xffffffff00000000ull,
    .seg = SEGS11,
};
__attribute__((used)) const struct blkif_request golden_msg_write_1seg = {
    .operation = BLKIF_OP_WRITE, .nr_segments = 1, .handle = 0x0000,
    .id = 0x0000000000000001ull, .sector_number = 0x0000000000000008ull,
    .seg = { SEG(0xffffffffu, 3, 4) },
};
__attribute__((used)) const struct blkif_request golden_msg_write_11seg = {
    .operation = BLKIF_OP_WRITE, .nr_segments = 11, .handle = 0xffff,
    .id = 0x8000000000000000ull, .sector_number = 0x00000000ffffffffull,
    .seg = SEGS11,
};
__attribute__((used)) const struct blkif_request golden_msg_barrier_1seg = {
    .operation = BLKIF_OP_WRITE_BARRIER, .nr_segments = 1, .handle = 0x0033,
    .id = 0x00000000deadbeefull, .sector_number = 0x0000100000000000ull,
    .seg = { SEG(0x00000042u, 0, 7) },
};
__attribute__((used)) const struct blkif_request golden_msg_barrier_11seg = {
    .operation = BLKIF_OP_WRITE_BARRIER, .nr_segments = 11, .handle = 0x1234,
    .id = 0xcafef00dcafef00dull, .sector_number = 0x0000000000000000ull,
    .seg = SEGS11,
};
__attribute__((used)) const struct blkif_request golden_msg_flush_1seg = {
    .operation = BLKIF_OP_FLUSH_DISKCACHE, .nr_segments = 1, .handle = 0x0102,
    .id = 0x1111111122222222ull, .sector_number = 0x0000000000000800ull,
    .seg = { SEG(0x00000777u, 0, 7) },
};
__attribute__((used)) const struct blkif_request golden_msg_flush_11seg = {
    .operation = BLKIF_OP_FLUSH_DISKCACHE, .nr_segments = 11, .handle = 0x0800,
    .id = 0x00000000ffffffffull, .sector_number = 0x7fffffffffffffffull,
    .seg = SEGS11,
};
__attribute__((used)) const struct blkif_request_discard golden_msg_discard_plain = {
    .operation = BLKIF_OP_DISCARD, .flag = 0, .handle = 0x0301,
    .id = 0x0102030405060708ull, .sector_number = 0x0000000200000000ull,
    .nr_sectors = 0x0000000100000001ull,
};
__attribute__((used)) const struct blkif_request_discard golden_msg_discard_secure = {
    .operation = BLKIF_OP_DISCARD, .flag = BLKIF_DISCARD_SECURE, .handle = 0xbeef,
    .id = 0xa0b0c0d0e0f00010ull, .sector_number = 0x0000000000000100ull,
    .nr_sectors = 0x0000000000000800ull,
};
__attribute__((used)) const struct blkif_request_indirect golden_msg_indirect_read_2pages = {
    .operation = BLKIF_OP_INDIRECT, .indirect_op = BLKIF_OP_READ, .nr_segments = 1000,
    .id = 0x0000123400005678ull, .sector_number = 0x0000000987654321ull, .handle = 0x0301,
    .indirect_grefs = { 0x00000200u, 0x80000201u },
};
__attribute__((used)) const struct blkif_request_indirect golden_msg_indirect_write_8pages = {
    .operation = BLKIF_OP_INDIRECT, .indirect_op = BLKIF_OP_WRITE, .nr_segments = 4096,
    .id = 0xffffffffffffffffull, .sector_number = 0x00000000000fffffull, .handle = 0xfffe,
    .indirect_grefs = { 1u, 2u, 3u, 0xfffffff0u, 5u, 6u, 0x7fffffffu, 8u },
};
__attribute__((used)) const struct blkif_request_indirect golden_msg_indirect_write_1seg = {
    .operation = BLKIF_OP_INDIRECT, .indirect_op = BLKIF_OP_WRITE, .nr_segments = 1,
    .id = 0x0000000000000007ull, .sector_number = 0x0000000000000001ull, .handle = 0x0001,
    .indirect_grefs = { 0x00abcdefu },
};
__attribute__((used)) const struct blkif_response golden_msg_response_okay = {
    .id = 0x0123456789abcdefull, .operation = BLKIF_OP_READ, .status = BLKIF_RSP_OKAY,
};
__attribute__((used)) const struct blkif_response golden_msg_response_error = {
    .id = 0xfedcba9876543210ull, .operation = BLKIF_OP_WRITE, .status = BLKIF_RSP_ERROR,
};
__attribute__((used)) const struct blkif_response golden_msg_response_eopnotsupp = {
    .id = 0x8000000000000001ull, .operation = BLKIF_OP_DISCARD, .status = BLKIF_RSP_EOPNOTSUPP,
};
__attribute__((used)) const struct blkif_response golden_msg_response_indirect = {
    .id = 0x00000000ffffffffull, .operation = BLKIF_OP_INDIRECT, .status = BLKIF_RSP_OKAY,
};

#define MESSAGES(X)                                                              \
    X(read_1seg) X(read_11seg) X(write_1seg) X(write_11seg)                      \
    X(barrier_1seg) X(barrier_11seg) X(flush_1seg) X(flush_11seg)                \
    X(discard_plain) X(discard_secure)                                           \
    X(indirect_read_2pages) X(indirect_write_8pages) X(indirect_write_1seg)      \
    X(response_okay) X(response_error) X(response_eopnotsupp) X(response_indirect)

#if __STDC_HOSTED__
#include <stdio.h>

static void print_hex(const void *p, size_t n) {
    const unsigned char *b = p;
    putchar('"');
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    putchar('"');
}

int main(void) {
    const char *sep = "";
    printf("{\n\"abi\": \"%s\",\n\"names\": [", GOLDEN_ABI);
#define PRINT_NAME(name, value) printf("%s\"%s\"", sep, name); sep = ", ";
    NUMBERS(PRINT_NAME)
    printf("],\n\"numbers\": {");
    sep = "";
#define PRINT_NUMBER(name, value) printf("%s\n  \"%s\": %lld", sep, name, (long long)(value)); sep = ",";
    NUMBERS(PRINT_NUMBER)
    printf("\n},\n\"messages\": {");
    sep = "";
#define PRINT_MESSAGE(m)                                                     \
    printf("%s\n  \"%s\": ", sep, #m);                                       \
    print_hex(&golden_msg_##m, sizeof(golden_msg_##m));                      \
    sep = ",";
    MESSAGES(PRINT_MESSAGE)
    printf("\n}\n}\n");
    return 0;
}
#endif
