/*
 * The cross-thread ring bench (tools/bench/cross-thread.ts): control page and
 * event port shared by null-backend, ring-front and our Wasm/JS front
 * (tools/bench/cross-thread/control.ts mirrors this layout).
 *
 * Pool file frames: 0 = the blkif shared ring (one page, x86_64, 32 slots),
 * 1 = this control page. All words u32, little endian, one cache line per
 * writer so the two sides never share a line they both write:
 *
 *   0    front_ready   front -> 1 once its ring is initialised
 *   4    back_ready    back  -> 1 once BACK_RING_INIT is done
 *   8    stop          front -> 1 when done: the back drains, prints, exits
 *   12   abort         the host -> 1 on a timeout: everyone gives up
 *   64   back.pending  event for the back  (set by the front, taken by the back)
 *   68   back.sleeping the back is blocked (or about to block) in read()
 *   128  front.pending event for the front
 *   132  front.sleeping
 *
 * An event port is Xen's event channel done with one pending word, one
 * sleeping word and one FIFO (named pipe) per direction:
 *
 *   send:  pending = 1; if (sleeping) write(fifo, 1 byte)        [a "wake"]
 *   wait:  sleeping = 1; while (!xchg(pending, 0)) read(fifo); sleeping = 0
 *
 * Both sides do the store first and the load second, seq_cst (Dekker): the
 * sender sees sleeping == 1 or the waiter sees pending == 1, so no wake is
 * lost; a byte written after the waiter already saw pending only causes one
 * spurious read later. A sender pays a syscall only when its peer sleeps.
 * JS cannot make a futex syscall (V8's Atomics.wait is an in-process
 * emulation a C FUTEX_WAKE never reaches), so the sleeping side blocks in
 * read() on the FIFO, which both C and a worker thread's fs.readSync can.
 */
#ifndef XENPV_XRING_H
#define XENPV_XRING_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define XR_FRONT_READY 0
#define XR_BACK_READY 1
#define XR_STOP 2
#define XR_ABORT 3
#define XR_BACK_PORT 16  /* word index: byte 64 */
#define XR_FRONT_PORT 32 /* word index: byte 128 */

struct xr_port {
    volatile uint32_t *pending;
    volatile uint32_t *sleeping;
    int fd;
    uint64_t wakes;  /* bytes written to wake a sleeping peer (send side) */
    uint64_t sleeps; /* blocking reads that returned (wait side) */
};

static inline uint32_t xr_load(volatile uint32_t *w) { return __atomic_load_n(w, __ATOMIC_SEQ_CST); }
static inline void xr_store(volatile uint32_t *w, uint32_t v) { __atomic_store_n(w, v, __ATOMIC_SEQ_CST); }

static inline void xr_port_open(struct xr_port *p, volatile uint32_t *ctl, int word, const char *fifo) {
    p->pending = &ctl[word];
    p->sleeping = &ctl[word + 1];
    /* O_RDWR: a FIFO opened for both ends never blocks in open() and never reads EOF. */
    p->fd = open(fifo, O_RDWR);
    p->wakes = p->sleeps = 0;
    if (p->fd < 0) DIE("open %s: %s", fifo, strerror(errno));
}

static inline void xr_send(struct xr_port *p) {
    xr_store(p->pending, 1);
    /* pending stored /before/ sleeping is read (pairs with xr_wait) */
    if (xr_load(p->sleeping)) {
        static const uint8_t one = 1;
        while (write(p->fd, &one, 1) < 0 && errno == EINTR) {}
        p->wakes++;
    }
}

/* Block until an event is pending (or the host aborts: returns -1). */
static inline int xr_wait(struct xr_port *p, volatile uint32_t *ctl) {
    xr_store(p->sleeping, 1);
    /* sleeping stored /before/ pending is taken (pairs with xr_send) */
    while (!__atomic_exchange_n(p->pending, 0, __ATOMIC_SEQ_CST)) {
        if (xr_load(&ctl[XR_ABORT])) { xr_store(p->sleeping, 0); return -1; }
        uint8_t buf[64];
        ssize_t n = read(p->fd, buf, sizeof buf);
        if (n < 0 && errno != EINTR) DIE("read event fifo: %s", strerror(errno));
        p->sleeps++;
    }
    xr_store(p->sleeping, 0);
    return 0;
}

static inline uint64_t xr_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A spin-loop pause that is also a compiler barrier (ring.h fields are not
 * volatile: a spin must re-read them each time round). */
static inline void xr_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif
