/* The event-channel socket of the simulation (wire: src/sim/evtchn-wire.ts):
 * 12-byte little-endian messages {op, port, arg}; `port` is the receiver's.
 * A peer here holds exactly one port per link. */
#include "peer.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void set_addr(struct sockaddr_un *sa, const char *path) {
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) DIE("socket path too long: %s", path);
    strcpy(sa->sun_path, path);
}

void evtchn_listen(struct evtchn *e, const char *path) {
    struct sockaddr_un sa;
    set_addr(&sa, path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0)
        DIE("listen %s: %s", path, strerror(errno));
    e->fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (e->fd < 0) DIE("accept %s: %s", path, strerror(errno));
    close(l);
    unlink(path);
    e->local_port = e->remote_port = 0;
    e->dead = 0;
}

void evtchn_connect(struct evtchn *e, const char *path, int timeout_ms) {
    struct sockaddr_un sa;
    set_addr(&sa, path);
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (e->fd < 0) DIE("socket: %s", strerror(errno));
        if (connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) break;
        close(e->fd);
        if (now_ns() > deadline) DIE("connect %s: %s", path, strerror(errno));
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    e->local_port = e->remote_port = 0;
    e->dead = 0;
}

static void put32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16); b[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void send_msg(struct evtchn *e, uint32_t op, uint32_t port, uint32_t arg) {
    if (e->dead) return;
    uint8_t m[12];
    put32(m, op); put32(m + 4, port); put32(m + 8, arg);
    size_t off = 0;
    while (off < sizeof(m)) {
        ssize_t n = send(e->fd, m + off, sizeof(m) - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { e->dead = 1; return; }
        off += (size_t)n;
    }
}

uint32_t evtchn_alloc_unbound(struct evtchn *e) {
    e->local_port = 1;
    e->remote_port = 0;
    return e->local_port;
}

void evtchn_bind(struct evtchn *e, uint32_t remote_port) {
    e->local_port = 1;
    e->remote_port = remote_port;
    send_msg(e, EVTCHN_MSG_BIND, remote_port, e->local_port);
}

void evtchn_notify(struct evtchn *e) {
    if (e->remote_port != 0) send_msg(e, EVTCHN_MSG_SEND, e->remote_port, 0);
}

void evtchn_close(struct evtchn *e) {
    if (e->remote_port != 0) send_msg(e, EVTCHN_MSG_CLOSE, e->remote_port, 0);
    e->remote_port = 0;
    close(e->fd);
    e->dead = 1;
}

int evtchn_wait(struct evtchn *e, int timeout_ms) {
    if (e->dead) return -1;
    int fired = 0;
    int wait = timeout_ms;
    for (;;) {
        struct pollfd pfd = { .fd = e->fd, .events = POLLIN };
        int r = poll(&pfd, 1, wait);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return fired;
        uint8_t m[12];
        size_t off = 0;
        while (off < sizeof(m)) {
            ssize_t n = recv(e->fd, m + off, sizeof(m) - off, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { e->dead = 1; return fired ? 1 : -1; }
            off += (size_t)n;
        }
        uint32_t op = get32(m), port = get32(m + 4), arg = get32(m + 8);
        if (port == e->local_port) {
            if (op == EVTCHN_MSG_SEND && e->remote_port != 0) fired = 1;
            else if (op == EVTCHN_MSG_BIND && e->remote_port == 0 && arg != 0) e->remote_port = arg;
            else if (op == EVTCHN_MSG_CLOSE) e->remote_port = 0;
        } else if (op == EVTCHN_MSG_BIND && arg != 0) {
            send_msg(e, EVTCHN_MSG_CLOSE, arg, 0); /* not ours to bind */
        }
        if (op != EVTCHN_MSG_BIND && op != EVTCHN_MSG_SEND && op != EVTCHN_MSG_CLOSE) {
            e->dead = 1;
            return -1;
        }
        wait = 0; /* drain what is already queued, then report */
    }
}
