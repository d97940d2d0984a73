/* evtchn-echo: test helper for the event-channel transport.
 *   evtchn-echo SOCKET REMOTE_PORT COUNT
 * Connects, binds to REMOTE_PORT, then for each of COUNT events received
 * notifies back once; then closes its port and exits 0. Exits 3 if the link
 * dies first, 4 on a 10 s silence. */
#include "peer.h"

const char *peer_name = "evtchn-echo";

int main(int argc, char **argv) {
    if (argc != 4) DIE("usage: evtchn-echo SOCKET REMOTE_PORT COUNT");
    struct evtchn e;
    evtchn_connect(&e, argv[1], 10000);
    evtchn_bind(&e, (uint32_t)strtoul(argv[2], NULL, 10));
    printf("bound local %u\n", e.local_port);
    fflush(stdout);
    long want = strtol(argv[3], NULL, 10);
    for (long got = 0; got < want;) {
        int r = evtchn_wait(&e, 10000);
        if (r < 0) return 3;
        if (r == 0) return 4;
        got++;
        evtchn_notify(&e);
    }
    evtchn_close(&e);
    return 0;
}
