/* pingload.c - load generator for benchmark 5 (check-ins): many device-channel
 * connections, each identifying (D2) with its own master key, then sending D3
 * pings back to back (one outstanding per connection, the next as soon as the
 * reply line arrives), with every Nth request an activation (D1) instead.
 * One epoll thread per --threads; prints counts and rates as key=value.
 *
 *   fota-pingload --port P --keys FILE [--conns N] [--seconds S]
 *                 [--activate-every N] [--threads T] [--source-addrs K]
 *
 * FILE holds one 40-hex master device key per line; connection i uses key
 * i % lines. Source addresses 127.0.0.1..K spread the ports (K <= 250). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN 40
#define MAX_KEYS 200000
#define BUF 2048

struct conn {
    int fd;
    int state;                 /* 0 connecting, 1 identify sent, 2 running */
    unsigned sent;             /* requests on this connection */
    int last_activate;
    const char *key;
    size_t have;
    char in[BUF];
};

struct worker {
    pthread_t th;
    int first, count;          /* connection index range */
    uint64_t pings, activations, identifies, errors, closed;
};

static struct {
    int port, conns, seconds, activate_every, threads, source_addrs;
    char (*keys)[KEY_LEN + 1];
    size_t nkeys;
    double t_end;
} opt = { 0, 100, 5, 100, 1, 1, NULL, 0, 0 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;  /* a short line never blocks here: the kernel buffer is empty */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_next(struct conn *c, struct worker *w)
{
    char line[512];
    int n;
    c->sent++;
    c->last_activate = opt.activate_every > 0 && c->sent % (unsigned)opt.activate_every == 0;
    if (c->last_activate)
        n = snprintf(line, sizeof line, "{\"nonce\": %u,\"path\": \"/v1/device/activate/\", "
                     "\"method\": \"POST\", \"body\": {\"encrypt_method\": \"PLAIN\", \"token\": "
                     "\"%040u\", \"bssid\": \"18:fe:34:00:00:01\",\"rom_version\":\"v1.0\"}, "
                     "\"meta\": {\"Authorization\": \"token %s\"}}\n", c->sent, c->sent, c->key);
    else
        n = snprintf(line, sizeof line, "{\"path\": \"/v1/ping/\", \"method\": \"POST\","
                     "\"meta\": {\"Authorization\": \"token %s\"}}\n", c->key);
    (void)w;
    return send_all(c->fd, line, (size_t)n);
}

static int open_conn(struct conn *c, int i, int ep)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.source_addrs > 1) {
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % opt.source_addrs));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0)
            return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    c->key = opt.keys[(size_t)i % opt.nkeys];
    char line[256];
    int n = snprintf(line, sizeof line, "{\"nonce\": %d, \"path\": \"/v1/device/identify\", "
                     "\"method\": \"GET\",\"meta\": {\"Authorization\": \"token %s\"}}\n", i + 1,
                     c->key);
    if (send_all(c->fd, line, (size_t)n) != 0)
        return -1;
    c->state = 1;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Handles each complete reply line; returns -1 when the connection is gone. */
static int on_readable(struct conn *c, struct worker *w, int counting)
{
    ssize_t r = recv(c->fd, c->in + c->have, sizeof c->in - c->have, 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        return -1;
    }
    c->have += (size_t)r;
    char *nl;
    while ((nl = memchr(c->in, '\n', c->have)) != NULL) {
        size_t len = (size_t)(nl - c->in) + 1;
        int refused = memmem(c->in, len, "\"status\": 4", 11) != NULL ||
                      memmem(c->in, len, "\"status\":4", 10) != NULL;
        if (refused)
            w->errors++;
        if (c->state == 1) {
            w->identifies++;
            c->state = 2;
        } else if (counting) {
            if (c->last_activate)
                w->activations++;
            else
                w->pings++;
        }
        memmove(c->in, c->in + len, c->have - len);
        c->have -= len;
        if (now() < opt.t_end && send_next(c, w) != 0)
            return -1;
    }
    if (c->have == sizeof c->in)
        return -1; /* a line longer than any reply */
    return 0;
}

static double t_count_from;

static void *run(void *arg)
{
    struct worker *w = arg;
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)w->count, sizeof *cs);
    struct epoll_event evs[256];
    if (ep < 0 || !cs) {
        w->errors++;
        return NULL;
    }
    for (int i = 0; i < w->count; i++)
        if (open_conn(&cs[i], w->first + i, ep) != 0) {
            w->errors++;
            if (cs[i].fd >= 0)
                close(cs[i].fd);
            cs[i].fd = -1;
        }
    while (now() < opt.t_end + 0.5) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (on_readable(c, w, now() >= t_count_from) != 0) {
                if (now() < opt.t_end)
                    w->closed++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            }
        }
    }
    for (int i = 0; i < w->count; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    close(ep);
    return NULL;
}

static int load_keys(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[128];
    if (!f)
        return -1;
    opt.keys = calloc(MAX_KEYS, sizeof *opt.keys);
    while (opt.keys && opt.nkeys < MAX_KEYS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strlen(line) == KEY_LEN)
            memcpy(opt.keys[opt.nkeys++], line, KEY_LEN + 1);
    }
    fclose(f);
    return opt.nkeys ? 0 : -1;
}

/* A whole non-negative decimal number that fits an int, or -1. */
static int parse_count(const char *v)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > 0x7fffffffL)
        return -1;
    return (int)n;
}

int main(int argc, char **argv)
{
    const char *keys = NULL;
    double warmup = 0.5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int *num = NULL;
        if (!strcmp(k, "--port")) num = &opt.port;
        else if (!strcmp(k, "--keys")) keys = v;
        else if (!strcmp(k, "--conns")) num = &opt.conns;
        else if (!strcmp(k, "--seconds")) num = &opt.seconds;
        else if (!strcmp(k, "--activate-every")) num = &opt.activate_every;
        else if (!strcmp(k, "--threads")) num = &opt.threads;
        else if (!strcmp(k, "--source-addrs")) num = &opt.source_addrs;
        else {
            fprintf(stderr, "fota-pingload: unknown option %s\n", k);
            return 2;
        }
        if (num && (*num = parse_count(v)) < 0) {
            fprintf(stderr, "fota-pingload: %s wants a number, not '%s'\n", k, v);
            return 2;
        }
    }
    if (opt.port <= 0 || !keys || opt.conns < 1 || opt.seconds < 1 || opt.threads < 1 ||
        opt.threads > 64 || opt.source_addrs < 1 || opt.source_addrs > 250) {
        fprintf(stderr, "usage: fota-pingload --port P --keys FILE [--conns N] [--seconds S] "
                        "[--activate-every N] [--threads T] [--source-addrs K]\n");
        return 2;
    }
    if (load_keys(keys) != 0) {
        fprintf(stderr, "fota-pingload: no 40-character keys in %s\n", keys);
        return 2;
    }
    struct worker ws[64];
    memset(ws, 0, sizeof ws);
    double t0 = now();
    t_count_from = t0 + warmup;   /* connections identify first; count the steady state */
    opt.t_end = t_count_from + opt.seconds;
    int per = opt.conns / opt.threads, extra = opt.conns % opt.threads, first = 0;
    for (int i = 0; i < opt.threads; i++) {
        ws[i].first = first;
        ws[i].count = per + (i < extra);
        first += ws[i].count;
        pthread_create(&ws[i].th, NULL, run, &ws[i]);
    }
    uint64_t p = 0, a = 0, id = 0, e = 0, cl = 0;
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(ws[i].th, NULL);
        p += ws[i].pings;
        a += ws[i].activations;
        id += ws[i].identifies;
        e += ws[i].errors;
        cl += ws[i].closed;
    }
    double secs = (double)opt.seconds;
    printf("conns=%d seconds=%d identifies=%llu pings=%llu activations=%llu errors=%llu "
           "closed=%llu pings_per_s=%.0f activations_per_s=%.0f\n", opt.conns, opt.seconds,
           (unsigned long long)id, (unsigned long long)p, (unsigned long long)a,
           (unsigned long long)e, (unsigned long long)cl, (double)p / secs, (double)a / secs);
    free(opt.keys);
    return e || cl || id < (uint64_t)opt.conns ? 1 : 0;
}
