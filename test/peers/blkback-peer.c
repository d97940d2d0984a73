/*
 * blkback-peer: a minimal blkif backend in another process, written with
 * Xen's own ring.h macros and blkif.h structs. It serves an in-memory disk.
 *
 *   blkback-peer --pool PATH --pool-pages N --gnttab-frame G --gnttab-entries E
 *                --xs SOCK --frontend /local/domain/F/device/vbd/D
 *                --backend /local/domain/B/backend/vbd/F/D
 *                --domid B --peer-domid F (--evtchn-listen P | --evtchn-connect P)
 *                [--sectors S] [--max-ring-page-order K] [--max-indirect-segments N]
 *
 * Handshake (xenbus): write sectors, sector-size, info, feature-flush-cache,
 * feature-discard, max-ring-page-order; state=InitWait(2). Wait for the
 * frontend's state >= Initialised(3); read ring-ref (or ring-page-order +
 * ring-ref0..), event-channel, protocol; map the ring pages through the
 * frontend's grant table; bind the event channel; state=Connected(4).
 * Serve until the frontend goes Closing(5)/Closed(6) or the event link dies;
 * then state=Closed(6) and print one JSON line of counters on stdout.
 */
#include "blkif-abi.h"

#include <errno.h>
#include <unistd.h>

const char *peer_name = "blkback-peer";

struct back {
    struct pool pool;
    struct gnttab gnt;
    struct evtchn ev;
    domid_t domid, front_domid;
    enum blkif_abi abi;
    union {
        blkif_back_ring_t native;
        blkif_x86_32_back_ring_t x32;
    } ring;
    uint8_t *disk;
    uint64_t sectors;
    unsigned max_indirect; /* feature-max-indirect-segments we offered; 0 = none */
    uint64_t served, reads, writes, flushes, discards, indirect, errors, unsupported, notifies;
};

static const char *opt(int argc, char **argv, const char *name, const char *dflt) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    if (!dflt) DIE("missing %s", name);
    return dflt;
}

/* Most segments one indirect request may carry (8 pages of 512). */
#define MAX_INDIRECT_SEGS (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * (PEER_PAGE / sizeof(struct blkif_request_segment)))

/* One request in the native shape, whatever the ABI: copied once out of the ring. */
struct req {
    uint8_t operation, nr_segments;
    uint64_t id, sector, nr_sectors; /* nr_sectors: discard only */
    struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
    /* BLKIF_OP_INDIRECT (x86_64-abi only) */
    uint8_t indirect_op;
    uint16_t indirect_segs;
    grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};

#define TAKE_REQUEST(R, TYPE, DTYPE, NATIVE, out) do {                                   \
        TYPE copy;                                                               \
        RING_COPY_REQUEST(R, (R)->req_cons, &copy);                              \
        (R)->req_cons++;                                                         \
        (out)->operation = copy.operation;                                       \
        (out)->id = copy.id;                                                     \
        (out)->sector = copy.sector_number;                                      \
        if ((NATIVE) && copy.operation == BLKIF_OP_INDIRECT) {                   \
            struct blkif_request_indirect *ind = (struct blkif_request_indirect *)&copy; \
            (out)->indirect_op = ind->indirect_op;                               \
            (out)->indirect_segs = ind->nr_segments;                             \
            (out)->sector = ind->sector_number;                                  \
            memcpy((out)->indirect_grefs, ind->indirect_grefs, sizeof(ind->indirect_grefs)); \
            (out)->nr_segments = 0;                                              \
        } else if (copy.operation == BLKIF_OP_DISCARD) {                         \
            DTYPE *d = (DTYPE *)&copy;                                           \
            (out)->nr_sectors = d->nr_sectors;                                   \
            (out)->nr_segments = 0;                                              \
        } else {                                                                 \
            (out)->nr_segments = copy.nr_segments;                               \
            unsigned n_ = copy.nr_segments <= BLKIF_MAX_SEGMENTS_PER_REQUEST     \
                              ? copy.nr_segments : 0;                            \
            memcpy((out)->seg, copy.seg, n_ * sizeof(copy.seg[0]));             \
        }                                                                        \
    } while (0)

/* 1 if a request was taken, 0 if none; -1 if the frontend overflowed the ring. */
static int next_request(struct back *b, struct req *out) {
    if (b->abi == BLKIF_ABI_X86_32) {
        blkif_x86_32_back_ring_t *r = &b->ring.x32;
        if (RING_REQUEST_PROD_OVERFLOW(r, r->sring->req_prod)) return -1;
        if (!RING_HAS_UNCONSUMED_REQUESTS(r)) return 0;
        /* req_prod read /before/ the slots it publishes */
        xen_rmb();
        TAKE_REQUEST(r, struct blkif_x86_32_request, struct blkif_x86_32_request_discard, 0, out);
    } else {
        blkif_back_ring_t *r = &b->ring.native;
        if (RING_REQUEST_PROD_OVERFLOW(r, r->sring->req_prod)) return -1;
        if (!RING_HAS_UNCONSUMED_REQUESTS(r)) return 0;
        /* req_prod read /before/ the slots it publishes */
        xen_rmb();
        TAKE_REQUEST(r, struct blkif_request, struct blkif_request_discard, 1, out);
    }
    return 1;
}

static void put_response(struct back *b, uint64_t id, uint8_t op, int16_t status) {
    if (b->abi == BLKIF_ABI_X86_32) {
        blkif_x86_32_back_ring_t *r = &b->ring.x32;
        struct blkif_x86_32_response *rsp = RING_GET_RESPONSE(r, r->rsp_prod_pvt);
        rsp->id = id; rsp->operation = op; rsp->status = status;
        r->rsp_prod_pvt++;
    } else {
        blkif_back_ring_t *r = &b->ring.native;
        struct blkif_response *rsp = RING_GET_RESPONSE(r, r->rsp_prod_pvt);
        rsp->id = id; rsp->operation = op; rsp->status = status;
        r->rsp_prod_pvt++;
    }
}

static int push_and_check_notify(struct back *b) {
    int notify;
    /* the macro's wmb: front sees responses /before/ the updated rsp_prod */
    if (b->abi == BLKIF_ABI_X86_32) RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&b->ring.x32, notify);
    else RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&b->ring.native, notify);
    return notify;
}

static int final_check(struct back *b) {
    int more;
    /* the macro's mb: req_event set /before/ req_prod is re-read */
    if (b->abi == BLKIF_ABI_X86_32) RING_FINAL_CHECK_FOR_REQUESTS(&b->ring.x32, more);
    else RING_FINAL_CHECK_FOR_REQUESTS(&b->ring.native, more);
    return more;
}

static int16_t do_rw(struct back *b, uint8_t op, uint64_t sector,
                     const struct blkif_request_segment *segs, unsigned nsegs, unsigned max_segs) {
    if (nsegs == 0 || nsegs > max_segs) return BLKIF_RSP_ERROR;
    int is_write = op == BLKIF_OP_WRITE;
    /* Validate every segment before touching the disk: all or nothing. */
    static uint8_t *pages[MAX_INDIRECT_SEGS];
    uint64_t total = 0;
    for (unsigned i = 0; i < nsegs; i++) {
        const struct blkif_request_segment *s = &segs[i];
        if (s->first_sect > s->last_sect || s->last_sect > 7) return BLKIF_RSP_ERROR;
        const char *why = NULL;
        /* a read from disk writes the frontend's page */
        pages[i] = gnttab_resolve(&b->gnt, s->gref, b->domid, !is_write, NULL, &why);
        if (!pages[i]) {
            fprintf(stderr, "blkback-peer: gref %u refused: %s\n", s->gref, why);
            return BLKIF_RSP_ERROR;
        }
        total += (uint64_t)(s->last_sect - s->first_sect + 1);
    }
    if (sector >= b->sectors || total > b->sectors - sector) return BLKIF_RSP_ERROR;
    uint8_t *at = b->disk + sector * 512;
    for (unsigned i = 0; i < nsegs; i++) {
        const struct blkif_request_segment *s = &segs[i];
        size_t len = (size_t)(s->last_sect - s->first_sect + 1) * 512;
        uint8_t *page = pages[i] + s->first_sect * 512;
        if (is_write) memcpy(at, page, len);
        else memcpy(page, at, len);
        at += len;
    }
    if (is_write) b->writes++; else b->reads++;
    return BLKIF_RSP_OKAY;
}

/* BLKIF_OP_INDIRECT: the segments live in pages the frontend granted us
 * read-only; copy them out once, then serve like a direct request. */
static int16_t do_indirect(struct back *b, const struct req *q) {
    if (b->abi != BLKIF_ABI_X86_64 || b->max_indirect == 0) { b->unsupported++; return BLKIF_RSP_EOPNOTSUPP; }
    if (q->indirect_op != BLKIF_OP_READ && q->indirect_op != BLKIF_OP_WRITE) return BLKIF_RSP_ERROR;
    unsigned n = q->indirect_segs;
    if (n == 0 || n > b->max_indirect) return BLKIF_RSP_ERROR;
    const unsigned per_page = PEER_PAGE / sizeof(struct blkif_request_segment);
    static struct blkif_request_segment segs[MAX_INDIRECT_SEGS];
    for (unsigned p = 0; p * per_page < n; p++) {
        const char *why = NULL;
        uint8_t *page = gnttab_resolve(&b->gnt, q->indirect_grefs[p], b->domid, 0, NULL, &why);
        if (!page) {
            fprintf(stderr, "blkback-peer: indirect gref %u refused: %s\n", q->indirect_grefs[p], why);
            return BLKIF_RSP_ERROR;
        }
        unsigned k = n - p * per_page < per_page ? n - p * per_page : per_page;
        memcpy(&segs[p * per_page], page, k * sizeof(segs[0]));
    }
    b->indirect++;
    return do_rw(b, q->indirect_op, q->sector, segs, n, b->max_indirect);
}

static int16_t handle(struct back *b, const struct req *q) {
    switch (q->operation) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
        return do_rw(b, q->operation, q->sector, q->seg, q->nr_segments, BLKIF_MAX_SEGMENTS_PER_REQUEST);
    case BLKIF_OP_INDIRECT:
        return do_indirect(b, q);
    case BLKIF_OP_FLUSH_DISKCACHE:
        b->flushes++;
        return BLKIF_RSP_OKAY; /* memory disk: nothing cached */
    case BLKIF_OP_DISCARD:
        if (q->sector >= b->sectors || q->nr_sectors > b->sectors - q->sector) return BLKIF_RSP_ERROR;
        memset(b->disk + q->sector * 512, 0, q->nr_sectors * 512);
        b->discards++;
        return BLKIF_RSP_OKAY;
    default:
        b->unsupported++;
        return BLKIF_RSP_EOPNOTSUPP;
    }
}

static int frontend_gone(const char *fe_state) {
    long long s = xs_read_ll(fe_state, XenbusStateClosed);
    return s == XenbusStateClosing || s == XenbusStateClosed || s == XenbusStateUnknown;
}

int main(int argc, char **argv) {
    struct back b;
    memset(&b, 0, sizeof(b));
    const char *fe = opt(argc, argv, "--frontend", NULL);
    const char *be = opt(argc, argv, "--backend", NULL);
    b.domid = (domid_t)atoi(opt(argc, argv, "--domid", NULL));
    b.front_domid = (domid_t)atoi(opt(argc, argv, "--peer-domid", NULL));
    b.sectors = strtoull(opt(argc, argv, "--sectors", "16384"), NULL, 10);
    unsigned max_order = (unsigned)atoi(opt(argc, argv, "--max-ring-page-order", "2"));
    if (max_order > 4) DIE("--max-ring-page-order above 4");
    b.max_indirect = (unsigned)atoi(opt(argc, argv, "--max-indirect-segments", "0"));
    if (b.max_indirect > MAX_INDIRECT_SEGS) DIE("--max-indirect-segments above %u", (unsigned)MAX_INDIRECT_SEGS);
    pool_open(&b.pool, opt(argc, argv, "--pool", NULL), (uint32_t)atoi(opt(argc, argv, "--pool-pages", NULL)));
    gnttab_attach(&b.gnt, &b.pool, (uint32_t)atoi(opt(argc, argv, "--gnttab-frame", NULL)),
                  (uint32_t)atoi(opt(argc, argv, "--gnttab-entries", NULL)));
    /* The event link first, before any xenstore key: whoever reads our keys
     * can bind to us at once (a simulated domain has its ports from birth). */
    const char *lp = opt(argc, argv, "--evtchn-listen", "");
    if (*lp) evtchn_listen(&b.ev, lp);
    else evtchn_connect(&b.ev, opt(argc, argv, "--evtchn-connect", NULL), 10000);
    xs_connect(opt(argc, argv, "--xs", NULL));
    b.disk = calloc(b.sectors, 512);
    if (!b.disk) DIE("no memory for %llu sectors", (unsigned long long)b.sectors);

    char p[512], v[256];
#define FEP(k) (snprintf(p, sizeof(p), "%s/%s", fe, k), p)
#define BEP(k) (snprintf(p, sizeof(p), "%s/%s", be, k), p)
    xs_writef(BEP("sectors"), "%llu", (unsigned long long)b.sectors);
    xs_write(BEP("sector-size"), "512");
    xs_write(BEP("physical-sector-size"), "512");
    xs_write(BEP("info"), "0");
    xs_write(BEP("feature-flush-cache"), "1");
    xs_write(BEP("feature-discard"), "1");
    xs_write(BEP("discard-granularity"), "512");
    xs_write(BEP("discard-alignment"), "0");
    xs_writef(BEP("max-ring-page-order"), "%u", max_order);
    if (b.max_indirect > 0) xs_writef(BEP("feature-max-indirect-segments"), "%u", b.max_indirect);
    xs_writef(BEP("state"), "%d", XenbusStateInitWait);

    if (xs_wait_range(FEP("state"), XenbusStateInitialised, XenbusStateConnected, 30000) < 0)
        DIE("frontend never reached Initialised");

    /* protocol: absent means native */
    b.abi = BLKIF_ABI_X86_64;
    if (xs_read(FEP("protocol"), v, sizeof(v)) >= 0) {
        if (strcmp(v, XEN_IO_PROTO_ABI_X86_32) == 0) b.abi = BLKIF_ABI_X86_32;
        else if (strcmp(v, XEN_IO_PROTO_ABI_X86_64) != 0) DIE("unknown protocol %s", v);
    }
    long long order = xs_read_ll(FEP("ring-page-order"), 0);
    if (order < 0 || order > (long long)max_order) DIE("ring-page-order %lld above %u", order, max_order);
    unsigned nr_pages = 1u << order;
    uint32_t frames[1u << 4];
    for (unsigned i = 0; i < nr_pages; i++) {
        char key[32];
        if (order == 0 && xs_read(FEP("ring-ref"), v, sizeof(v)) >= 0) {
            /* single-page ring */
        } else {
            snprintf(key, sizeof(key), "ring-ref%u", i);
            if (xs_read(FEP(key), v, sizeof(v)) < 0) DIE("frontend has no %s", key);
        }
        const char *why = NULL;
        if (!gnttab_resolve(&b.gnt, (grant_ref_t)strtoul(v, NULL, 10), b.domid, 1, &frames[i], &why))
            DIE("ring gref %s: %s", v, why);
    }
    void *sring = pool_map_frames(&b.pool, frames, nr_pages);
    /* The frontend initialised the shared ring (SHARED_RING_INIT); a backend
     * never does: BACK_RING_INIT only sets our private indices to 0. */
    if (b.abi == BLKIF_ABI_X86_32)
        BACK_RING_INIT(&b.ring.x32, (blkif_x86_32_sring_t *)sring, PEER_PAGE * nr_pages);
    else
        BACK_RING_INIT(&b.ring.native, (blkif_sring_t *)sring, PEER_PAGE * nr_pages);

    long long port = xs_read_ll(FEP("event-channel"), -1);
    if (port <= 0) DIE("frontend has no event-channel");
    evtchn_bind(&b.ev, (uint32_t)port);

    xs_writef(BEP("state"), "%d", XenbusStateConnected);

    const char *fe_state = FEP("state");
    char fe_state_path[512];
    snprintf(fe_state_path, sizeof(fe_state_path), "%s", fe_state);
    int idle_ms = 0;
    for (;;) {
        struct req q;
        int r;
        while ((r = next_request(&b, &q)) == 1) {
            int16_t st = handle(&b, &q);
            if (st == BLKIF_RSP_ERROR) b.errors++;
            /* an indirect request is answered with its indirect_op (as Linux blkback) */
            put_response(&b, q.id, q.operation == BLKIF_OP_INDIRECT && st != BLKIF_RSP_EOPNOTSUPP
                                     ? q.indirect_op : q.operation, st);
            b.served++;
        }
        if (r < 0) { fprintf(stderr, "blkback-peer: frontend overflowed the ring\n"); break; }
        if (push_and_check_notify(&b)) { evtchn_notify(&b.ev); b.notifies++; }
        if (final_check(&b)) continue;
        int w = evtchn_wait(&b.ev, 50);
        if (w < 0) break;
        if (w == 0) {
            idle_ms += 50;
            if (idle_ms >= 100) { idle_ms = 0; if (frontend_gone(fe_state_path)) break; }
        } else {
            idle_ms = 0;
        }
    }
    xs_writef(BEP("state"), "%d", XenbusStateClosed);
    if (!b.ev.dead) evtchn_close(&b.ev);
    printf("{\"peer\":\"blkback\",\"abi\":%d,\"ringPages\":%u,\"served\":%llu,\"reads\":%llu,\"writes\":%llu,"
           "\"flushes\":%llu,\"discards\":%llu,\"indirect\":%llu,\"errors\":%llu,\"unsupported\":%llu,\"notifies\":%llu}\n",
           b.abi, nr_pages, (unsigned long long)b.served, (unsigned long long)b.reads,
           (unsigned long long)b.writes, (unsigned long long)b.flushes, (unsigned long long)b.discards,
           (unsigned long long)b.indirect, (unsigned long long)b.errors, (unsigned long long)b.unsupported, (unsigned long long)b.notifies);
    return 0;
}
