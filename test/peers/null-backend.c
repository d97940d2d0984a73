/* null-backend: a blkif backend with nothing behind it, for the cross-thread
 * ring bench (tools/bench/cross-thread.ts; control page and events: xring.h).
 *
 *   null-backend --pool PATH --pool-pages N --back-fifo P --front-fifo P [--spin-us S]
 *                [--fault duplicate|drop --fault-at K]
 *
 * Ring at pool frame 0 (one page, x86_64 blkif), control page at frame 1.
 * Waits for the front's ring (front_ready), BACK_RING_INIT, then answers
 * every request with BLKIF_RSP_OKAY (same id, same operation), pushing with
 * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY and notifying only when it says so.
 * Out of work, it polls the ring for up to S µs without re-arming
 * req_event (default 0), then RING_FINAL_CHECK_FOR_REQUESTS and sleeps on
 * its event port. Exits when `stop` is set and the ring is drained,
 * printing one JSON line of counters; exit 3 on the host's abort.
 * --fault (tests of the bench's checks): request number K (from 0) is
 * answered twice, or never. */
#include "peer.h"
#include "xring.h"

#include <xen/io/blkif.h>

const char *peer_name = "null-backend";

int main(int argc, char **argv) {
    const char *pool_path = NULL, *back_fifo = NULL, *front_fifo = NULL;
    uint32_t pages = 0;
    uint64_t spin_ns = 0, fault_at = UINT64_MAX;
    enum { FAULT_NONE, FAULT_DUPLICATE, FAULT_DROP } fault = FAULT_NONE;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pool")) pool_path = argv[i + 1];
        else if (!strcmp(argv[i], "--pool-pages")) pages = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--back-fifo")) back_fifo = argv[i + 1];
        else if (!strcmp(argv[i], "--front-fifo")) front_fifo = argv[i + 1];
        else if (!strcmp(argv[i], "--spin-us")) spin_ns = strtoull(argv[i + 1], NULL, 10) * 1000u;
        else if (!strcmp(argv[i], "--fault-at")) fault_at = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--fault")) {
            if (!strcmp(argv[i + 1], "duplicate")) fault = FAULT_DUPLICATE;
            else if (!strcmp(argv[i + 1], "drop")) fault = FAULT_DROP;
            else DIE("--fault: duplicate or drop, not %s", argv[i + 1]);
        }
        else DIE("unknown option %s", argv[i]);
    }
    if (!pool_path || !back_fifo || !front_fifo || pages < 2)
        DIE("usage: null-backend --pool PATH --pool-pages N(>=2) --back-fifo P --front-fifo P [--spin-us S]");
    struct pool pool;
    pool_open(&pool, pool_path, pages);
    volatile uint32_t *ctl = (volatile uint32_t *)pool_frame(&pool, 1);
    blkif_sring_t *sring = (blkif_sring_t *)pool_frame(&pool, 0);
    struct xr_port me, front;
    xr_port_open(&me, ctl, XR_BACK_PORT, back_fifo);
    xr_port_open(&front, ctl, XR_FRONT_PORT, front_fifo);

    /* Handshake: the front's SHARED_RING_INIT is done /before/ we attach. */
    while (!xr_load(&ctl[XR_FRONT_READY]))
        if (xr_wait(&me, ctl) < 0) return 3;
    blkif_back_ring_t br;
    BACK_RING_INIT(&br, sring, PEER_PAGE);
    xr_store(&ctl[XR_BACK_READY], 1);
    xr_send(&front);
    me.sleeps = front.wakes = 0; /* count the run, not the handshake */

    uint64_t answered = 0, notifies = 0, pushes = 0, seen = 0;
    for (;;) {
        RING_IDX rp = br.sring->req_prod;
        xen_rmb(); /* req_prod read /before/ the requests it covers */
        if (RING_REQUEST_PROD_OVERFLOW(&br, rp)) DIE("front claims %u requests", rp - br.rsp_prod_pvt);
        RING_IDX was = br.rsp_prod_pvt;
        while (br.req_cons != rp) {
            volatile blkif_request_t *req = RING_GET_REQUEST(&br, br.req_cons);
            /* Read once: the response overwrites this slot. */
            uint64_t id = req->id;
            uint8_t op = req->operation;
            br.req_cons++;
            int copies = 1;
            if (seen++ == fault_at) copies = fault == FAULT_DUPLICATE ? 2 : fault == FAULT_DROP ? 0 : 1;
            for (int c = 0; c < copies; c++) {
                blkif_response_t *rsp = RING_GET_RESPONSE(&br, br.rsp_prod_pvt);
                rsp->id = id;
                rsp->operation = op;
                rsp->status = BLKIF_RSP_OKAY;
                br.rsp_prod_pvt++;
            }
            if (copies) answered++;
        }
        if (br.rsp_prod_pvt != was) {
            int notify;
            RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&br, notify);
            pushes++;
            if (notify) { notifies++; xr_send(&front); }
        }
        if (RING_HAS_UNCONSUMED_REQUESTS(&br)) continue;
        if (spin_ns) {
            uint64_t t0 = xr_now_ns();
            while (!RING_HAS_UNCONSUMED_REQUESTS(&br) && !xr_load(&ctl[XR_STOP]) && xr_now_ns() - t0 < spin_ns) xr_relax();
            if (RING_HAS_UNCONSUMED_REQUESTS(&br)) continue;
        }
        int more;
        RING_FINAL_CHECK_FOR_REQUESTS(&br, more);
        if (more) continue;
        if (xr_load(&ctl[XR_STOP])) break;
        if (xr_wait(&me, ctl) < 0) return 3;
    }
    printf("{\"answered\":%llu,\"notifies\":%llu,\"pushes\":%llu,\"wakes\":%llu,\"sleeps\":%llu}\n",
           (unsigned long long)answered, (unsigned long long)notifies, (unsigned long long)pushes,
           (unsigned long long)front.wakes, (unsigned long long)me.sleeps);
    return 0;
}
