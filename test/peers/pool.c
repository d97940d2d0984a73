/* Pool file mapping and v1 grant entries (grant_table.h). */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void pool_open(struct pool *p, const char *path, uint32_t pages) {
    p->fd = open(path, O_RDWR);
    if (p->fd < 0) DIE("open pool %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(p->fd, &st) != 0) DIE("fstat pool: %s", strerror(errno));
    if ((uint64_t)st.st_size < (uint64_t)pages * PEER_PAGE)
        DIE("pool file has %lld bytes, need %u pages", (long long)st.st_size, pages);
    p->base = mmap(NULL, (size_t)pages * PEER_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
    if (p->base == MAP_FAILED) DIE("mmap pool: %s", strerror(errno));
    p->pages = pages;
}

void *pool_map_frames(struct pool *p, const uint32_t *frames, unsigned n) {
    uint8_t *va = mmap(NULL, (size_t)n * PEER_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (va == MAP_FAILED) DIE("reserve %u pages: %s", n, strerror(errno));
    for (unsigned i = 0; i < n; i++) {
        if (frames[i] >= p->pages) DIE("frame %u outside the pool", frames[i]);
        void *at = mmap(va + (size_t)i * PEER_PAGE, PEER_PAGE, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_FIXED, p->fd, (off_t)frames[i] * PEER_PAGE);
        if (at == MAP_FAILED) DIE("map frame %u: %s", frames[i], strerror(errno));
    }
    return va;
}

void gnttab_attach(struct gnttab *g, struct pool *p, uint32_t frame, uint32_t nr) {
    uint64_t bytes = (uint64_t)nr * sizeof(grant_entry_v1_t);
    if (nr == 0 || frame >= p->pages || (uint64_t)frame * PEER_PAGE + bytes > (uint64_t)p->pages * PEER_PAGE)
        DIE("grant table (frame %u, %u entries) does not fit the pool", frame, nr);
    g->pool = p;
    g->entries = (grant_entry_v1_t *)pool_frame(p, frame);
    g->nr = nr;
}

void gnttab_grant(struct gnttab *g, grant_ref_t ref, domid_t domid, uint32_t frame, int readonly) {
    if (ref >= g->nr) DIE("gref %u outside the table", ref);
    volatile grant_entry_v1_t *e = &g->entries[ref];
    e->domid = domid;
    e->frame = frame;
    /* domid and frame are visible /before/ the entry becomes valid */
    xen_wmb();
    e->flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
}

void gnttab_end(struct gnttab *g, grant_ref_t ref) {
    volatile grant_entry_v1_t *e = &g->entries[ref];
    e->flags = 0;
    /* the entry is invalid /before/ the page is reused */
    xen_mb();
}

uint8_t *gnttab_resolve(struct gnttab *g, grant_ref_t ref, domid_t domid, int need_write,
                        uint32_t *frame_out, const char **why) {
    if (ref >= g->nr) { *why = "gref outside the grant table"; return NULL; }
    volatile grant_entry_v1_t *e = &g->entries[ref];
    /* Read each shared field once; decide on the copies. */
    uint16_t flags = e->flags;
    /* flags read /before/ domid and frame (the granter writes them first) */
    xen_rmb();
    domid_t gdom = e->domid;
    uint32_t frame = e->frame;
    if ((flags & GTF_type_mask) != GTF_permit_access) { *why = "entry does not permit access"; return NULL; }
    if (gdom != domid) { *why = "entry granted to another domain"; return NULL; }
    if (need_write && (flags & GTF_readonly)) { *why = "entry is read-only"; return NULL; }
    if (frame >= g->pool->pages) { *why = "frame outside the pool"; return NULL; }
    if (frame_out) *frame_out = frame;
    return pool_frame(g->pool, frame);
}
