/* ring-front: the C ceiling of the cross-thread ring bench: a blkif front on
 * ring.h against null-backend (control page and events: xring.h).
 *
 *   ring-front --pool PATH --pool-pages N --back-fifo P --front-fifo P
 *              --depth D --count C [--spin-us S]
 *
 * SHARED_RING_INIT + FRONT_RING_INIT on pool frame 0, then keeps D requests
 * in flight (1-segment BLKIF_OP_READs, ids < 32, sector = sequence number)
 * until C have been answered: RING_PUSH_REQUESTS_AND_CHECK_NOTIFY (notify
 * only when it says so), reap, poll up to S µs without re-arming, then
 * RING_FINAL_CHECK_FOR_RESPONSES and sleep on its event port. Every
 * response must carry an id in flight, BLKIF_OP_READ and BLKIF_RSP_OKAY;
 * the first that does not stops the run (exit 4). Prints one JSON line;
 * exit 3 on the host's abort. */
#include "peer.h"
#include "xring.h"

#include <xen/io/blkif.h>

const char *peer_name = "ring-front";

#define IDS 32u

struct run {
    uint64_t completed, notifies, pushes, mismatches;
};

static void report(const struct run *r, uint64_t ns, const struct xr_port *me, const struct xr_port *back) {
    printf("{\"completed\":%llu,\"elapsedNs\":%llu,\"notifies\":%llu,\"pushes\":%llu,\"wakes\":%llu,"
           "\"sleeps\":%llu,\"mismatches\":%llu}\n",
           (unsigned long long)r->completed, (unsigned long long)ns, (unsigned long long)r->notifies,
           (unsigned long long)r->pushes, (unsigned long long)back->wakes, (unsigned long long)me->sleeps,
           (unsigned long long)r->mismatches);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *pool_path = NULL, *back_fifo = NULL, *front_fifo = NULL;
    uint32_t pages = 0, depth = 0;
    uint64_t count = 0, spin_ns = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pool")) pool_path = argv[i + 1];
        else if (!strcmp(argv[i], "--pool-pages")) pages = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--back-fifo")) back_fifo = argv[i + 1];
        else if (!strcmp(argv[i], "--front-fifo")) front_fifo = argv[i + 1];
        else if (!strcmp(argv[i], "--depth")) depth = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--count")) count = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--spin-us")) spin_ns = strtoull(argv[i + 1], NULL, 10) * 1000u;
        else DIE("unknown option %s", argv[i]);
    }
    if (!pool_path || !back_fifo || !front_fifo || pages < 2 || depth < 1 || depth > IDS || count < 1)
        DIE("usage: ring-front --pool PATH --pool-pages N(>=2) --back-fifo P --front-fifo P --depth 1..32 --count C [--spin-us S]");
    struct pool pool;
    pool_open(&pool, pool_path, pages);
    volatile uint32_t *ctl = (volatile uint32_t *)pool_frame(&pool, 1);
    blkif_sring_t *sring = (blkif_sring_t *)pool_frame(&pool, 0);
    struct xr_port me, back;
    xr_port_open(&me, ctl, XR_FRONT_PORT, front_fifo);
    xr_port_open(&back, ctl, XR_BACK_PORT, back_fifo);

    blkif_front_ring_t fr;
    SHARED_RING_INIT(sring);
    FRONT_RING_INIT(&fr, sring, PEER_PAGE);
    if (RING_SIZE(&fr) != IDS) DIE("ring has %u slots, expected %u", RING_SIZE(&fr), IDS);
    /* The ring is initialised /before/ the back may attach. */
    xr_store(&ctl[XR_FRONT_READY], 1);
    xr_send(&back);
    while (!xr_load(&ctl[XR_BACK_READY]))
        if (xr_wait(&me, ctl) < 0) return 3;
    me.sleeps = back.wakes = 0; /* count the run, not the handshake */

    uint8_t inflight[IDS] = {0};
    uint32_t free_ids[IDS], nfree = 0, busy = 0;
    for (uint32_t i = IDS; i-- > 0;) free_ids[nfree++] = i;
    struct run r = {0};
    uint64_t issued = 0;
    uint64_t t0 = xr_now_ns();
    while (r.completed < count) {
        unsigned k = 0;
        while (busy < depth && issued < count) {
            uint32_t id = free_ids[--nfree];
            blkif_request_t *req = RING_GET_REQUEST(&fr, fr.req_prod_pvt);
            req->operation = BLKIF_OP_READ;
            req->nr_segments = 1;
            req->handle = 0;
            req->id = id;
            req->sector_number = issued;
            req->seg[0].gref = 8 + id;
            req->seg[0].first_sect = 0;
            req->seg[0].last_sect = 7;
            fr.req_prod_pvt++;
            inflight[id] = 1;
            busy++;
            issued++;
            k++;
        }
        if (k) {
            int notify;
            RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fr, notify);
            r.pushes++;
            if (notify) { r.notifies++; xr_send(&back); }
        }
        RING_IDX rp = sring->rsp_prod;
        xen_rmb(); /* rsp_prod read /before/ the responses it covers */
        if (RING_RESPONSE_PROD_OVERFLOW(&fr, rp)) DIE("backend claims %u responses", rp - fr.rsp_cons);
        unsigned got = 0;
        while (fr.rsp_cons != rp) {
            volatile blkif_response_t *rsp = RING_GET_RESPONSE(&fr, fr.rsp_cons);
            uint64_t id = rsp->id;
            uint8_t op = rsp->operation;
            int16_t st = rsp->status;
            fr.rsp_cons++;
            if (id >= IDS || !inflight[id] || op != BLKIF_OP_READ || st != BLKIF_RSP_OKAY) {
                r.mismatches++;
                fprintf(stderr, "ring-front: response id %llu op %u status %d does not match a request in flight\n",
                        (unsigned long long)id, op, st);
                report(&r, xr_now_ns() - t0, &me, &back);
                return 4;
            }
            inflight[id] = 0;
            free_ids[nfree++] = (uint32_t)id;
            busy--;
            r.completed++;
            got++;
        }
        if (got || r.completed == count) continue;
        if (busy < depth && issued < count) continue;
        if (spin_ns) {
            uint64_t s0 = xr_now_ns();
            while (!RING_HAS_UNCONSUMED_RESPONSES(&fr) && xr_now_ns() - s0 < spin_ns) xr_relax();
            if (RING_HAS_UNCONSUMED_RESPONSES(&fr)) continue;
        }
        int more;
        RING_FINAL_CHECK_FOR_RESPONSES(&fr, more);
        if (more) continue;
        if (xr_wait(&me, ctl) < 0) return 3;
    }
    uint64_t ns = xr_now_ns() - t0;
    report(&r, ns, &me, &back);
    /* Counted above: the stop event is not part of the run. */
    xr_store(&ctl[XR_STOP], 1);
    xr_send(&back);
    return 0;
}
