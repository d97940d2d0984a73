/*
 * Shared pieces of the C peers: pool file, grant entries, xenstore client,
 * event-channel socket. Written from Xen's public headers (libxen-dev);
 * no code from our TypeScript side.
 *
 * Contract with the simulation (what a peer is told on its command line):
 *   --pool PATH         the pool file: pool frame i = bytes [i*4096, (i+1)*4096)
 *   --pool-pages N      its size in 4096-byte frames
 *   --gnttab-frame G    the frontend's v1 grant table starts at pool frame G;
 *   --gnttab-entries E  it has E entries of 8 bytes (gref r at G*4096 + r*8),
 *                       an entry's `frame` is a pool frame index
 *   --xs PATH           unix socket of our xenstored (plain xs_wire)
 *   --evtchn-listen PATH | --evtchn-connect PATH
 *                       the event-channel socket (src/sim/evtchn-wire.ts)
 *   --domid D --peer-domid P
 */
#ifndef XENPV_PEER_H
#define XENPV_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/xs_wire.h>

#define PEER_PAGE 4096u

#define DIE(...) do { fprintf(stderr, "%s: ", peer_name); fprintf(stderr, __VA_ARGS__); \
                      fputc('\n', stderr); exit(2); } while (0)
extern const char *peer_name;

/* ring.h (interface version < 0x00030208) maps xen_mb/xen_rmb/xen_wmb to
 * mb/rmb/wmb, which the includer provides. x86-64 is TSO: rmb/wmb only have
 * to stop the compiler; mb also orders a store before a later load. */
#define mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#include <xen/io/ring.h>

/* ------------------------------------------------------------ pool file */
struct pool {
    int fd;
    uint8_t *base;
    uint32_t pages;
};
void pool_open(struct pool *p, const char *path, uint32_t pages);
static inline uint8_t *pool_frame(struct pool *p, uint32_t frame) {
    return p->base + (size_t)frame * PEER_PAGE;
}
/* gntdev-style: map `n` pool frames contiguously into a fresh address range. */
void *pool_map_frames(struct pool *p, const uint32_t *frames, unsigned n);

/* ------------------------------------------------------- grant table v1 */
struct gnttab {
    struct pool *pool;
    grant_entry_v1_t *entries; /* in the pool file */
    uint32_t nr;
};
void gnttab_attach(struct gnttab *g, struct pool *p, uint32_t frame, uint32_t nr);
/* Frontend side: grant `frame` to `domid`. */
void gnttab_grant(struct gnttab *g, grant_ref_t ref, domid_t domid, uint32_t frame, int readonly);
void gnttab_end(struct gnttab *g, grant_ref_t ref);
/* Backend side: resolve `ref` for `domid` as the hypervisor would; NULL and
 * a reason if the entry does not permit the access. */
uint8_t *gnttab_resolve(struct gnttab *g, grant_ref_t ref, domid_t domid, int need_write,
                        uint32_t *frame_out, const char **why);

/* --------------------------------------------------------- xenstore */
void xs_connect(const char *path);
/* Returns length (value NUL-terminated in buf), or -1 for ENOENT/error. */
int xs_read(const char *path, char *buf, size_t cap);
void xs_write(const char *path, const char *value);
void xs_writef(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Read an unsigned integer; `dflt` if the node is absent. */
long long xs_read_ll(const char *path, long long dflt);
/* Poll until `path` holds an integer in [lo, hi]; returns it, or -1 after timeout_ms. */
long long xs_wait_range(const char *path, long long lo, long long hi, int timeout_ms);

/* ------------------------------------------------ event-channel socket */
enum { EVTCHN_MSG_BIND = 1, EVTCHN_MSG_SEND = 2, EVTCHN_MSG_CLOSE = 3 };
struct evtchn {
    int fd;
    uint32_t local_port;  /* ours */
    uint32_t remote_port; /* theirs, 0 until bound */
    int dead;
};
void evtchn_listen(struct evtchn *e, const char *path); /* accepts one peer */
void evtchn_connect(struct evtchn *e, const char *path, int timeout_ms);
/* allocUnbound: our port for the peer to bind to. */
uint32_t evtchn_alloc_unbound(struct evtchn *e);
/* bindInterdomain to the peer's `remote_port`. */
void evtchn_bind(struct evtchn *e, uint32_t remote_port);
void evtchn_notify(struct evtchn *e);
/* Wait for events: 1 if our port fired, 0 on timeout, -1 if the link died. */
int evtchn_wait(struct evtchn *e, int timeout_ms);
void evtchn_close(struct evtchn *e);

/* --------------------------------------------------------- helpers */
uint64_t now_ns(void);
uint64_t rng_next(uint64_t *s); /* xorshift64* */

#endif
