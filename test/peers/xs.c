/* A tiny synchronous xenstore client: xs_wire.h messages over a unix socket.
 * One request at a time; replies are matched by req_id; anything else
 * (watch events) is skipped. */
#include "peer.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int xs_fd = -1;
static uint32_t xs_next_id = 1;

void xs_connect(const char *path) {
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) DIE("xenstore path too long");
    strcpy(sa.sun_path, path);
    xs_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (xs_fd < 0 || connect(xs_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        DIE("connect xenstored %s: %s", path, strerror(errno));
}

static void xs_all(int write_side, void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write_side ? write(xs_fd, p, len) : read(xs_fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) DIE("xenstored connection lost");
        p += n;
        len -= (size_t)n;
    }
}

/* Send one request; returns the reply type, payload in `out` (NUL-terminated). */
static uint32_t xs_talk(uint32_t type, const void *payload, uint32_t len, char *out, size_t cap, uint32_t *out_len) {
    if (len > XENSTORE_PAYLOAD_MAX) DIE("xenstore payload too long");
    struct xsd_sockmsg h = { .type = type, .req_id = xs_next_id++, .tx_id = 0, .len = len };
    xs_all(1, &h, sizeof(h));
    xs_all(1, (void *)payload, len);
    for (;;) {
        struct xsd_sockmsg r;
        xs_all(0, &r, sizeof(r));
        if (r.len > XENSTORE_PAYLOAD_MAX) DIE("xenstored sent %u bytes", r.len);
        char body[XENSTORE_PAYLOAD_MAX + 1];
        xs_all(0, body, r.len);
        body[r.len] = 0;
        if (r.type == XS_WATCH_EVENT || r.req_id != h.req_id) continue;
        if (out) {
            size_t n = r.len < cap - 1 ? r.len : cap - 1;
            memcpy(out, body, n);
            out[n] = 0;
        }
        if (out_len) *out_len = r.len;
        return r.type;
    }
}

int xs_read(const char *path, char *buf, size_t cap) {
    uint32_t n = 0;
    uint32_t t = xs_talk(XS_READ, path, (uint32_t)strlen(path) + 1, buf, cap, &n);
    if (t == XS_ERROR) return -1;
    if (t != XS_READ) DIE("xs read %s: reply type %u", path, t);
    return (int)n;
}

void xs_write(const char *path, const char *value) {
    char msg[XENSTORE_PAYLOAD_MAX];
    size_t pl = strlen(path) + 1, vl = strlen(value);
    if (pl + vl > sizeof(msg)) DIE("xs write too long");
    memcpy(msg, path, pl);
    memcpy(msg + pl, value, vl); /* the value is not NUL-terminated on the wire */
    char reply[64];
    uint32_t t = xs_talk(XS_WRITE, msg, (uint32_t)(pl + vl), reply, sizeof(reply), NULL);
    if (t != XS_WRITE) DIE("xs write %s: %s", path, t == XS_ERROR ? reply : "bad reply");
}

void xs_writef(const char *path, const char *fmt, ...) {
    char v[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    xs_write(path, v);
}

long long xs_read_ll(const char *path, long long dflt) {
    char buf[64];
    if (xs_read(path, buf, sizeof(buf)) < 0) return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf || *end != 0) return dflt;
    return v;
}

long long xs_wait_range(const char *path, long long lo, long long hi, int timeout_ms) {
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        long long v = xs_read_ll(path, -1);
        if (v >= lo && v <= hi) return v;
        if (now_ns() > deadline) return -1;
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
