/* pool-poke: test helper. Maps a pool file and checks/writes one u32.
 *   pool-poke PATH PAGES FRAME OFFSET EXPECT WRITE
 * Exits 0 if the u32 at frame*4096+offset equals EXPECT (hex), then stores
 * WRITE (hex) there; exits 1 (printing what it saw) otherwise. */
#include "peer.h"

const char *peer_name = "pool-poke";

int main(int argc, char **argv) {
    if (argc != 7) DIE("usage: pool-poke PATH PAGES FRAME OFFSET EXPECT WRITE");
    struct pool p;
    pool_open(&p, argv[1], (uint32_t)strtoul(argv[2], NULL, 0));
    uint32_t frame = (uint32_t)strtoul(argv[3], NULL, 0), off = (uint32_t)strtoul(argv[4], NULL, 0);
    if (frame >= p.pages || off > PEER_PAGE - 4 || off % 4) DIE("bad frame/offset");
    volatile uint32_t *w = (volatile uint32_t *)(pool_frame(&p, frame) + off);
    uint32_t expect = (uint32_t)strtoul(argv[5], NULL, 16), put = (uint32_t)strtoul(argv[6], NULL, 16);
    uint32_t saw = *w;
    printf("saw %08x\n", saw);
    if (saw != expect) return 1;
    *w = put;
    return 0;
}
