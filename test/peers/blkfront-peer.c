/*
 * blkfront-peer: a minimal blkif frontend in another process, built with
 * Xen's ring.h macros (SHARED_RING_INIT, FRONT_RING_INIT,
 * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, RING_FINAL_CHECK_FOR_RESPONSES). It
 * drives a backend with a random, verified workload and exits 0 only if
 * every response was right.
 *
 *   blkfront-peer --pool PATH --pool-pages N --gnttab-frame G --gnttab-entries E
 *                 --first-frame F --xs SOCK --frontend FE --backend BE
 *                 --domid D --peer-domid B (--evtchn-listen P | --evtchn-connect P)
 *                 [--requests 2000] [--inflight 32] [--seed 1] [--abi 64|32]
 *                 [--ring-page-order 0] [--bad-every 0] [--mix random|4k]
 *                 [--duration-ms 0] [--shadow-in FILE] [--shadow-out FILE]
 *
 * Pool use: the grant table at G (E entries, refs 0..7 reserved as in Xen),
 * ring pages at frames F.., then 11 data pages per in-flight slot. Grants:
 * ring pages and read buffers writable, write buffers read-only.
 * Verification: a shadow of the disk, updated at issue; requests that
 * overlap an in-flight write/discard are not issued until it completes.
 * Every `--bad-every`-th request reads past the end and must get
 * BLKIF_RSP_ERROR. One JSON line of counters on stdout at the end.
 * --mix 4k: only 4 KiB page-aligned reads and writes (request rates).
 * --duration-ms: stop issuing after that long (--requests stays the cap).
 * --shadow-in: the disk's initial contents (default: all zeros).
 * --shadow-out: write the shadow (what the disk must now hold) to FILE.
 */
#include "blkif-abi.h"

#include <errno.h>
#include <unistd.h>

const char *peer_name = "blkfront-peer";

#define SEGS BLKIF_MAX_SEGMENTS_PER_REQUEST
#define FIRST_GREF 8 /* GNTTAB_NR_RESERVED_ENTRIES */

enum slot_state { SLOT_FREE = 0, SLOT_IN_FLIGHT = 1 };

/* The workload: MIX_RANDOM mixes every operation and segment shape;
 * MIX_4K is 4 KiB reads and writes (one whole page each), for rates. */
enum mix { MIX_RANDOM = 0, MIX_4K = 1 };

struct slot {
    enum slot_state state;
    uint32_t seq;
    uint8_t op;
    uint8_t nsegs;
    int expect_error;
    uint64_t sector, nsect;
    struct blkif_request_segment seg[SEGS];
    uint8_t *page[SEGS];
    uint32_t frame[SEGS];
    grant_ref_t gref[SEGS];
};

struct front {
    struct pool pool;
    struct gnttab gnt;
    struct evtchn ev;
    domid_t domid, back_domid;
    enum blkif_abi abi;
    union {
        blkif_front_ring_t native;
        blkif_x86_32_front_ring_t x32;
    } ring;
    uint64_t sectors;
    uint8_t *shadow;
    struct slot *slots;
    unsigned nslots;
    uint64_t rng;
    enum mix mix;
    uint64_t reads, writes, flushes, discards, bad, notifies, waits;
};

static const char *opt(int argc, char **argv, const char *name, const char *dflt) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    if (!dflt) DIE("missing %s", name);
    return dflt;
}

static unsigned ring_free(struct front *f) {
    return f->abi == BLKIF_ABI_X86_32 ? RING_FREE_REQUESTS(&f->ring.x32) : RING_FREE_REQUESTS(&f->ring.native);
}

#define FILL_REQUEST(R, RTYPE, DTYPE, s, id_) do {                                  \
        RTYPE *req = RING_GET_REQUEST(R, (R)->req_prod_pvt);                        \
        if ((s)->op == BLKIF_OP_DISCARD) {                                          \
            DTYPE *d = (DTYPE *)req;                                                \
            d->operation = BLKIF_OP_DISCARD; d->flag = 0; d->handle = 0;            \
            d->id = (id_); d->sector_number = (s)->sector; d->nr_sectors = (s)->nsect; \
        } else {                                                                    \
            req->operation = (s)->op; req->nr_segments = (s)->nsegs; req->handle = 0; \
            req->id = (id_); req->sector_number = (s)->sector;                      \
            memcpy(req->seg, (s)->seg, sizeof((s)->seg[0]) * (s)->nsegs);            \
        }                                                                           \
        (R)->req_prod_pvt++;                                                        \
    } while (0)

static void put_request(struct front *f, struct slot *s, uint64_t id) {
    if (f->abi == BLKIF_ABI_X86_32)
        FILL_REQUEST(&f->ring.x32, struct blkif_x86_32_request, struct blkif_x86_32_request_discard, s, id);
    else
        FILL_REQUEST(&f->ring.native, struct blkif_request, struct blkif_request_discard, s, id);
}

static int push_and_check_notify(struct front *f) {
    int notify;
    /* the macro's wmb: back sees requests /before/ the updated req_prod */
    if (f->abi == BLKIF_ABI_X86_32) RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f->ring.x32, notify);
    else RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f->ring.native, notify);
    return notify;
}

/* 1 and a copy if a response is there; 0 if none; -1 if rsp_prod is impossible. */
static int take_response(struct front *f, uint64_t *id, uint8_t *op, int16_t *status) {
#define TAKE(R, TYPE) do {                                                          \
        RING_IDX prod = (R)->sring->rsp_prod;                                       \
        if (prod - (R)->rsp_cons > RING_SIZE(R)) return -1;                         \
        if (prod == (R)->rsp_cons) return 0;                                        \
        /* rsp_prod read /before/ the responses it publishes */                     \
        xen_rmb();                                                                  \
        TYPE copy;                                                                  \
        RING_COPY_RESPONSE(R, (R)->rsp_cons, &copy);                                \
        (R)->rsp_cons++;                                                            \
        *id = copy.id; *op = copy.operation; *status = copy.status;                 \
    } while (0)
    if (f->abi == BLKIF_ABI_X86_32) TAKE(&f->ring.x32, struct blkif_x86_32_response);
    else TAKE(&f->ring.native, struct blkif_response);
    return 1;
#undef TAKE
}

static int final_check(struct front *f) {
    int more;
    /* the macro's mb: rsp_event set /before/ rsp_prod is re-read */
    if (f->abi == BLKIF_ABI_X86_32) RING_FINAL_CHECK_FOR_RESPONSES(&f->ring.x32, more);
    else RING_FINAL_CHECK_FOR_RESPONSES(&f->ring.native, more);
    return more;
}

static int overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) {
    return a < b + bn && b < a + an;
}

/* May `s` be issued next to what is in flight? */
static int conflicts(struct front *f, const struct slot *s) {
    if (s->op == BLKIF_OP_FLUSH_DISKCACHE || s->expect_error) return 0;
    for (unsigned i = 0; i < f->nslots; i++) {
        const struct slot *o = &f->slots[i];
        if (o->state != SLOT_IN_FLIGHT || o->op == BLKIF_OP_FLUSH_DISKCACHE || o->expect_error) continue;
        if (s->op == BLKIF_OP_READ && o->op == BLKIF_OP_READ) continue;
        if (overlaps(s->sector, s->nsect, o->sector, o->nsect)) return 1;
    }
    return 0;
}

/* Choose a random request for slot `s` (not yet in flight). */
static void plan(struct front *f, struct slot *s, uint64_t n, uint64_t bad_every) {
    s->expect_error = bad_every != 0 && n % bad_every == bad_every - 1;
    if (f->mix == MIX_4K && !s->expect_error) {
        s->op = rng_next(&f->rng) % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ;
        s->nsegs = 1;
        s->seg[0].gref = s->gref[0];
        s->seg[0].first_sect = 0;
        s->seg[0].last_sect = 7;
        s->nsect = 8;
        s->sector = (rng_next(&f->rng) % (f->sectors / 8)) * 8;
        return;
    }
    unsigned r = (unsigned)(rng_next(&f->rng) % 100);
    if (s->expect_error) s->op = BLKIF_OP_READ;
    else if (r < 45) s->op = BLKIF_OP_WRITE;
    else if (r < 88) s->op = BLKIF_OP_READ;
    else if (r < 93) s->op = BLKIF_OP_FLUSH_DISKCACHE;
    else s->op = BLKIF_OP_DISCARD;
    s->nsegs = 0;
    s->sector = s->nsect = 0;
    if (s->op == BLKIF_OP_FLUSH_DISKCACHE) return;
    if (s->op == BLKIF_OP_DISCARD) {
        s->nsect = 1 + rng_next(&f->rng) % 64;
        s->sector = rng_next(&f->rng) % (f->sectors - s->nsect + 1);
        return;
    }
    s->nsegs = (uint8_t)(1 + rng_next(&f->rng) % SEGS);
    for (unsigned i = 0; i < s->nsegs; i++) {
        uint8_t first = (uint8_t)(rng_next(&f->rng) % 8);
        uint8_t last = (uint8_t)(first + rng_next(&f->rng) % (8 - first));
        s->seg[i].gref = s->gref[i];
        s->seg[i].first_sect = first;
        s->seg[i].last_sect = last;
        s->nsect += (uint64_t)(last - first + 1);
    }
    if (s->expect_error) s->sector = f->sectors - s->nsect + 1; /* one sector past the end */
    else s->sector = rng_next(&f->rng) % (f->sectors - s->nsect + 1);
}

/* Fill buffers, set grants, update the shadow; then the request may be pushed. */
static void prepare(struct front *f, struct slot *s) {
    uint64_t at = s->sector * 512;
    for (unsigned i = 0; i < s->nsegs; i++) {
        size_t off = s->seg[i].first_sect * 512u;
        size_t len = (size_t)(s->seg[i].last_sect - s->seg[i].first_sect + 1) * 512u;
        if (s->op == BLKIF_OP_WRITE) {
            for (size_t k = 0; k < len; k += 8) {
                uint64_t v = rng_next(&f->rng);
                memcpy(s->page[i] + off + k, &v, 8);
            }
            memcpy(f->shadow + at, s->page[i] + off, len);
        } else {
            memset(s->page[i] + off, 0xEE, len);
        }
        at += len;
        /* the backend only reads a write's buffers: grant those read-only */
        gnttab_grant(&f->gnt, s->gref[i], f->back_domid, s->frame[i], s->op == BLKIF_OP_WRITE);
    }
    if (s->op == BLKIF_OP_DISCARD) memset(f->shadow + s->sector * 512, 0, s->nsect * 512);
}

static void complete(struct front *f, struct slot *s, uint8_t op, int16_t status) {
    if (op != s->op) DIE("response op %u for a request of op %u", op, s->op);
    if (s->expect_error) {
        if (status != BLKIF_RSP_ERROR) DIE("out-of-range read got status %d", status);
        f->bad++;
    } else if (status != BLKIF_RSP_OKAY) {
        DIE("op %u sector %llu got status %d", op, (unsigned long long)s->sector, status);
    } else if (op == BLKIF_OP_READ) {
        uint64_t at = s->sector * 512;
        for (unsigned i = 0; i < s->nsegs; i++) {
            size_t off = s->seg[i].first_sect * 512u;
            size_t len = (size_t)(s->seg[i].last_sect - s->seg[i].first_sect + 1) * 512u;
            if (memcmp(s->page[i] + off, f->shadow + at, len) != 0)
                DIE("read of sector %llu: segment %u differs from what was written",
                    (unsigned long long)s->sector, i);
            at += len;
        }
        f->reads++;
    } else if (op == BLKIF_OP_WRITE) f->writes++;
    else if (op == BLKIF_OP_FLUSH_DISKCACHE) f->flushes++;
    else f->discards++;
    for (unsigned i = 0; i < s->nsegs; i++) gnttab_end(&f->gnt, s->gref[i]);
    s->state = SLOT_FREE;
    s->seq++;
}

int main(int argc, char **argv) {
    struct front f;
    memset(&f, 0, sizeof(f));
    const char *fe = opt(argc, argv, "--frontend", NULL);
    const char *be = opt(argc, argv, "--backend", NULL);
    f.domid = (domid_t)atoi(opt(argc, argv, "--domid", NULL));
    f.back_domid = (domid_t)atoi(opt(argc, argv, "--peer-domid", NULL));
    uint64_t nreq = strtoull(opt(argc, argv, "--requests", "2000"), NULL, 10);
    unsigned inflight = (unsigned)atoi(opt(argc, argv, "--inflight", "32"));
    f.rng = strtoull(opt(argc, argv, "--seed", "1"), NULL, 10) * 0x9E3779B97F4A7C15ULL | 1;
    f.abi = atoi(opt(argc, argv, "--abi", "64")) == 32 ? BLKIF_ABI_X86_32 : BLKIF_ABI_X86_64;
    unsigned want_order = (unsigned)atoi(opt(argc, argv, "--ring-page-order", "0"));
    uint64_t bad_every = strtoull(opt(argc, argv, "--bad-every", "0"), NULL, 10);
    const char *mix = opt(argc, argv, "--mix", "random");
    if (strcmp(mix, "4k") == 0) f.mix = MIX_4K;
    else if (strcmp(mix, "random") != 0) DIE("--mix must be random or 4k");
    uint64_t duration_ns = strtoull(opt(argc, argv, "--duration-ms", "0"), NULL, 10) * 1000000ull;
    const char *shadow_out = opt(argc, argv, "--shadow-out", "");
    const char *shadow_in = opt(argc, argv, "--shadow-in", "");
    uint32_t first = (uint32_t)atoi(opt(argc, argv, "--first-frame", NULL));
    pool_open(&f.pool, opt(argc, argv, "--pool", NULL), (uint32_t)atoi(opt(argc, argv, "--pool-pages", NULL)));
    gnttab_attach(&f.gnt, &f.pool, (uint32_t)atoi(opt(argc, argv, "--gnttab-frame", NULL)),
                  (uint32_t)atoi(opt(argc, argv, "--gnttab-entries", NULL)));
    /* The event link first, before any xenstore key (see blkback-peer.c). */
    const char *lp = opt(argc, argv, "--evtchn-listen", "");
    if (*lp) evtchn_listen(&f.ev, lp);
    else evtchn_connect(&f.ev, opt(argc, argv, "--evtchn-connect", NULL), 10000);
    xs_connect(opt(argc, argv, "--xs", NULL));

    char p[512];
#define FEP(k) (snprintf(p, sizeof(p), "%s/%s", fe, k), p)
#define BEP(k) (snprintf(p, sizeof(p), "%s/%s", be, k), p)
    if (xs_wait_range(BEP("state"), XenbusStateInitWait, XenbusStateConnected, 30000) < 0)
        DIE("backend never reached InitWait");
    long long max_order = xs_read_ll(BEP("max-ring-page-order"), 0);
    unsigned order = want_order < (unsigned)max_order ? want_order : (unsigned)max_order;
    unsigned np = 1u << order;

    /* ring pages: frames first.., grefs FIRST_GREF.. */
    void *sring = pool_frame(&f.pool, first);
    memset(sring, 0, (size_t)np * PEER_PAGE);
    unsigned ring_size;
    if (f.abi == BLKIF_ABI_X86_32) {
        SHARED_RING_INIT((blkif_x86_32_sring_t *)sring);
        FRONT_RING_INIT(&f.ring.x32, (blkif_x86_32_sring_t *)sring, PEER_PAGE * np);
        ring_size = RING_SIZE(&f.ring.x32);
    } else {
        SHARED_RING_INIT((blkif_sring_t *)sring);
        FRONT_RING_INIT(&f.ring.native, (blkif_sring_t *)sring, PEER_PAGE * np);
        ring_size = RING_SIZE(&f.ring.native);
    }
    if (inflight == 0 || inflight > ring_size) inflight = ring_size;
    f.nslots = inflight;
    uint32_t need_frames = np + inflight * SEGS, need_grefs = FIRST_GREF + need_frames;
    if (first + need_frames > f.pool.pages) DIE("pool too small: need frames %u..%u", first, first + need_frames);
    if (need_grefs > f.gnt.nr) DIE("grant table too small: need %u entries", need_grefs);
    for (unsigned i = 0; i < np; i++) gnttab_grant(&f.gnt, FIRST_GREF + i, f.back_domid, first + i, 0);
    f.slots = calloc(inflight, sizeof(*f.slots));
    for (unsigned sl = 0; sl < inflight; sl++)
        for (unsigned i = 0; i < SEGS; i++) {
            uint32_t k = np + sl * SEGS + i;
            f.slots[sl].frame[i] = first + k;
            f.slots[sl].gref[i] = FIRST_GREF + k;
            f.slots[sl].page[i] = pool_frame(&f.pool, first + k);
        }
    if (!f.slots) DIE("out of memory");

    uint32_t port = evtchn_alloc_unbound(&f.ev);
    if (order == 0) xs_writef(FEP("ring-ref"), "%u", FIRST_GREF);
    else {
        xs_writef(FEP("ring-page-order"), "%u", order);
        for (unsigned i = 0; i < np; i++) {
            char key[32];
            snprintf(key, sizeof(key), "ring-ref%u", i);
            xs_writef(FEP(key), "%u", FIRST_GREF + i);
        }
    }
    xs_writef(FEP("event-channel"), "%u", port);
    xs_write(FEP("protocol"), f.abi == BLKIF_ABI_X86_32 ? XEN_IO_PROTO_ABI_X86_32 : XEN_IO_PROTO_ABI_X86_64);
    xs_writef(FEP("state"), "%d", XenbusStateInitialised);

    f.ev.local_port = port;
    for (uint64_t t0 = now_ns(); f.ev.remote_port == 0;) {
        if (evtchn_wait(&f.ev, 100) < 0) DIE("event link died before the backend bound");
        if (now_ns() - t0 > 10000000000ull) DIE("backend never bound the event channel");
    }
    if (xs_wait_range(BEP("state"), XenbusStateConnected, XenbusStateConnected, 30000) < 0)
        DIE("backend never reached Connected");
    /* The geometry is the backend's to publish when it connects (Linux
     * blkback writes `sectors` in connect(), not at probe). */
    f.sectors = (uint64_t)xs_read_ll(BEP("sectors"), 0);
    if (f.sectors < 64) DIE("backend disk too small (%llu sectors)", (unsigned long long)f.sectors);
    f.shadow = calloc(f.sectors, 512);
    if (!f.shadow) DIE("out of memory");
    if (*shadow_in) {
        /* The disk is not blank: start from what the test says it holds. */
        FILE *in = fopen(shadow_in, "rb");
        if (!in || fread(f.shadow, 512, f.sectors, in) != f.sectors) DIE("cannot read %llu sectors from %s",
                                                                       (unsigned long long)f.sectors, shadow_in);
        fclose(in);
    }
    xs_writef(FEP("state"), "%d", XenbusStateConnected);

    uint64_t issued = 0, done = 0, t_start = now_ns();
    while (done < nreq) {
        int progress = 0;
        /* --duration-ms: stop issuing once it has passed; what is in flight completes */
        if (duration_ns != 0 && issued < nreq && now_ns() - t_start >= duration_ns)
            nreq = issued;
        while (issued < nreq && ring_free(&f) > 0) {
            struct slot *s = NULL;
            for (unsigned i = 0; i < f.nslots && !s; i++)
                if (f.slots[i].state == SLOT_FREE) s = &f.slots[i];
            if (!s) break;
            int ok = 0;
            for (int tries = 0; tries < 8 && !ok; tries++) {
                plan(&f, s, issued, bad_every);
                ok = !conflicts(&f, s);
            }
            if (!ok) break;
            prepare(&f, s);
            s->state = SLOT_IN_FLIGHT;
            put_request(&f, s, (uint64_t)s->seq << 16 | (uint64_t)(s - f.slots));
            issued++;
            progress = 1;
        }
        if (push_and_check_notify(&f)) { evtchn_notify(&f.ev); f.notifies++; }
        for (;;) {
            uint64_t id; uint8_t op; int16_t st;
            int r = take_response(&f, &id, &op, &st);
            if (r < 0) DIE("backend published an impossible rsp_prod");
            if (r == 0) break;
            uint64_t sl = id & 0xffff;
            if (sl >= f.nslots || f.slots[sl].state != SLOT_IN_FLIGHT || (id >> 16) != f.slots[sl].seq)
                DIE("response id %llu is not in flight", (unsigned long long)id);
            complete(&f, &f.slots[sl], op, st);
            done++;
            progress = 1;
        }
        if (progress) continue;
        if (final_check(&f)) continue;
        f.waits++;
        int w = evtchn_wait(&f.ev, 10000);
        if (w < 0) DIE("backend died (event link closed) with %llu requests pending",
                       (unsigned long long)(issued - done));
        if (w == 0) DIE("no response for 10 s with %llu requests pending", (unsigned long long)(issued - done));
    }
    uint64_t elapsed = now_ns() - t_start;

    xs_writef(FEP("state"), "%d", XenbusStateClosing);
    /* xenbus: the backend answers our Closing with Closing (Linux blkback)
     * or goes straight to Closed; either way we may now be Closed. */
    long long bs = xs_wait_range(BEP("state"), XenbusStateClosing, XenbusStateClosed, 10000);
    xs_writef(FEP("state"), "%d", XenbusStateClosed);
    for (unsigned i = 0; i < np; i++) gnttab_end(&f.gnt, FIRST_GREF + i);
    evtchn_close(&f.ev);
    if (*shadow_out) {
        /* What the disk must hold now: the test compares the backend's bytes. */
        FILE *out = fopen(shadow_out, "wb");
        if (!out || fwrite(f.shadow, 512, f.sectors, out) != f.sectors || fclose(out) != 0)
            DIE("cannot write %s", shadow_out);
    }
    printf("{\"peer\":\"blkfront\",\"abi\":%d,\"ringPages\":%u,\"ringSize\":%u,\"inflight\":%u,"
           "\"requests\":%llu,\"reads\":%llu,\"writes\":%llu,\"flushes\":%llu,\"discards\":%llu,"
           "\"expectedErrors\":%llu,\"notifies\":%llu,\"waits\":%llu,\"elapsedNs\":%llu,"
           "\"requestsPerSecond\":%.0f,\"backendClosed\":%s}\n",
           f.abi, np, ring_size, inflight, (unsigned long long)done, (unsigned long long)f.reads,
           (unsigned long long)f.writes, (unsigned long long)f.flushes, (unsigned long long)f.discards,
           (unsigned long long)f.bad, (unsigned long long)f.notifies, (unsigned long long)f.waits,
           (unsigned long long)elapsed, done * 1e9 / (double)elapsed, bs >= XenbusStateClosing ? "true" : "false");
    return 0;
}
