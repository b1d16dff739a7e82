/* legacy_dropin.c - `fotad legacy -fw1 user1.bin -fw2 user2.bin`: the seed's dfu_ota_server
 * command line in front of the legacy listener. Same arguments and messages as the seed, but
 * both images are checked with the image codec first, many devices are served at once, and
 * pacing is stop-and-wait instead of 400 ms sleeps. No database, no config file. */
#include "legacy.h"

#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "config.h"
#include "fota_str.h"
#include "fwimg.h"
#include "xmalloc.h"

struct dropin_image {
    const char *arg;        /* as given on the command line */
    char path[PATH_MAX];    /* absolute */
    /* identity of the file last checked, so a replaced file is checked again */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct dropin {
    struct dropin_image img[2];
    struct event_base *base;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fotad legacy -fw1 USER1.BIN -fw2 USER2.BIN [options]\n"
            "  -fw1, --user1 FILE     image sent to devices asking for section 1\n"
            "  -fw2, --user2 FILE     image sent to devices asking for section 2\n"
            "  --port N               TCP port (default %d, 0 = ephemeral)\n"
            "  --bind ADDR            listen address, IPv4 or IPv6 literal (default 0.0.0.0)\n"
            "  --chunk N              bytes per paced write, 1..%u (default %u)\n"
            "  --interval-ms N        gap after each acknowledged write (default %u)\n"
            "  --timeout SECONDS      stall timeout; the request byte waits 5 s at most\n"
            "                         (default %u; decimals allowed)\n"
            "  --max-clients N        concurrent transfers (default %u)\n"
            "  --max-queue N          connections waiting for a slot (default %u)\n",
            FOTA_LEGACY_DEFAULT_PORT, FOTA_LEGACY_CHUNK_MAX, FOTA_LEGACY_DEFAULT_CHUNK,
            FOTA_LEGACY_DEFAULT_INTERVAL_MS, FOTA_LEGACY_DEFAULT_TIMEOUT_MS / 1000,
            FOTA_LEGACY_DEFAULT_MAX_CLIENTS, FOTA_LEGACY_DEFAULT_MAX_QUEUE);
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_seconds_ms(const char *s, unsigned *ms)
{
    char *end;
    double v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v > 0) || v > 3600.0)
        return -1;
    *ms = (unsigned)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

/* Reads a whole image (bounded) and checks it is a sound image for slot. On failure writes
 * a sentence into why. *slot_known (may be NULL) is 0 for images without a slot byte. */
static int image_check(const char *path, int slot, char *why, size_t why_len, int *slot_known)
{
    struct fota_fwimg_info info;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    enum fota_fwimg_kind kind;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, why_len, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > FOTA_FWIMG_MAX_SIZE) {
        snprintf(why, why_len, "not a regular file of 1..%u bytes", FOTA_FWIMG_MAX_SIZE);
        goto out;
    }
    buf = fota_xmalloc((size_t)st.st_size);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            snprintf(why, why_len, "read error: %s", n < 0 ? strerror(errno) : "short file");
            goto out;
        }
        got += (size_t)n;
    }
    kind = fota_fwimg_sniff(buf, got);
    if (kind != FOTA_FWIMG_KIND_IMAGE) {
        if (kind == FOTA_FWIMG_KIND_OTHER)
            snprintf(why, why_len, "not an ESP8266 image");
        else
            snprintf(why, why_len, "not an ESP8266 image: it is %s", fota_fwimg_kind_name(kind));
        goto out;
    }
    rc = fota_fwimg_parse_flags(buf, got, FOTA_FWIMG_F_NO_SHA256, &info);
    if (rc != 0) {
        snprintf(why, why_len, "not a sound image: %s (at byte %u)",
                 info.error_what ? info.error_what : fota_strerror(rc), info.error_offset);
        rc = -1;
        goto out;
    }
    if (info.crc_state != FOTA_FWIMG_CRC_VALID) {
        snprintf(why, why_len, "image has no CRC (the device checks one)");
        rc = -1;
        goto out;
    }
    /* RTOS 1.x / NONOS 1.x images carry no slot marker: then the command line is trusted */
    if (info.slot != FOTA_FWIMG_SLOT_UNKNOWN && (int)info.slot != slot) {
        snprintf(why, why_len, "built for %s (byte 3 = %u), not user%d",
                 fota_fwimg_slot_name(info.slot), info.byte3, slot);
        rc = -1;
        goto out;
    }
    if (slot_known)
        *slot_known = info.slot != FOTA_FWIMG_SLOT_UNKNOWN;
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void image_remember(struct dropin_image *im, const struct stat *st)
{
    im->dev = st->st_dev;
    im->ino = st->st_ino;
    im->size = st->st_size;
    im->mtime = st->st_mtim;
}

static int image_same(const struct dropin_image *im, const struct stat *st)
{
    return im->dev == st->st_dev && im->ino == st->st_ino && im->size == st->st_size &&
           im->mtime.tv_sec == st->st_mtim.tv_sec && im->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Source callback: opens the file as it is now (the seed also re-read it per request), and
 * checks it again if it was replaced since it was last checked. */
static int dropin_open(void *ud, int section, int *fd, uint64_t *size, char *label,
                       size_t label_len)
{
    struct dropin *d = ud;
    struct dropin_image *im = &d->img[section - 1];
    struct stat st;
    char why[256];
    int f;

    f = open(im->path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        fprintf(stderr, "ERROR :: %s does not exist!\n", im->path);
        return FOTA_ENOENT;
    }
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return FOTA_ENOENT;
    }
    if (!image_same(im, &st)) {
        if (image_check(im->path, section, why, sizeof(why), NULL) != 0) {
            fprintf(stderr, "ERROR :: %s was replaced and is refused: %s\n", im->path, why);
            close(f);
            return FOTA_ENOENT;
        }
        image_remember(im, &st);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    fota_str_copy(label, label_len, im->arg);
    return 0;
}

static void dropin_log(void *ud, int level, const char *msg)
{
    static const char *names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
    char ts[32];
    time_t t = (time_t)fota_clock_wall_s();
    struct tm tm;

    if (level < FOTA_LOG_INFO)
        return;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s legacy %s\n", ts, names[level > 3 ? 3 : level], msg);
}

static void dropin_record(void *ud, const struct fota_legacy_record *r)
{
    printf("transfer peer=%s section=%d mode=%s bytes=%" PRIu64 "/%" PRIu64
           " result=%s ms=%" PRIu64 "\n",
           r->peer, r->section, r->mode, r->bytes_sent, r->size, r->result, r->duration_ms);
    if (strcmp(r->result, "ok") == 0)
        printf("firmware %3.1f KB has been sent successfully\n", (double)r->bytes_sent / 1024.0);
    else if (r->section)
        printf("WARNING:: firmware upgrading has been FAIL\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct dropin *d = arg;

    printf("\nsignal %d: stopping\n", (int)sig);
    event_base_loopexit(d->base, NULL);
}

static void print_addresses(void)
{
    struct ifaddrs *ifaddr, *ifa;
    char host[NI_MAXHOST];

    printf("\nip address of this server:\n");
    if (getifaddrs(&ifaddr) == -1) {
        printf("\t(getifaddrs: %s)\n", strerror(errno));
        return;
    }
    for (ifa = ifaddr; ifa; ifa = ifa->ifa_next) {
        socklen_t len;
        if (!ifa->ifa_addr)
            continue;
        if (ifa->ifa_addr->sa_family == AF_INET)
            len = sizeof(struct sockaddr_in);
        else if (ifa->ifa_addr->sa_family == AF_INET6)
            len = sizeof(struct sockaddr_in6);
        else
            continue;
        if (getnameinfo(ifa->ifa_addr, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0)
            printf("\t<%s> : %s\n", ifa->ifa_name, host);
    }
    freeifaddrs(ifaddr);
}

/* The options, for "did you mean" on an unknown one. */
static const char *const dropin_opts[] = {
    "-fw1", "--user1", "-fw2", "--user2", "--port", "--bind", "--chunk", "--interval-ms",
    "--timeout", "--max-clients", "--max-queue", "--help",
};

/* Parses argv into images and conf. Returns 0; -1 after printing the help
 * (exit 0); or 2, fotad's status for a bad command line, after printing why. */
static int parse_args(int argc, char **argv, const char *fw[2], int *port, const char **bind,
                      struct fota_legacy_conf *conf)
{
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        unsigned u;

        if (!strcmp(a, "-fw1") || !strcmp(a, "--user1") || !strcmp(a, "-fw2") ||
            !strcmp(a, "--user2")) {
            int i = (!strcmp(a, "-fw1") || !strcmp(a, "--user1")) ? 0 : 1;
            if (!v) {
                fprintf(stderr, "ERROR :: -fw%d/--user%d should be followed by firmware location.\n",
                        i + 1, i + 1);
                return 2;
            }
            fw[i] = v;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "--port")) {
            if (parse_uint(v, 65535, &u) != 0)
                goto bad_value;
            *port = (int)u;
        } else if (!strcmp(a, "--bind")) {
            if (!v)
                goto bad_value;
            *bind = v;
        } else if (!strcmp(a, "--chunk")) {
            if (parse_uint(v, FOTA_LEGACY_CHUNK_MAX, &conf->chunk) != 0 || conf->chunk == 0)
                goto bad_value;
        } else if (!strcmp(a, "--interval-ms")) {
            if (parse_uint(v, 60000, &conf->interval_ms) != 0)
                goto bad_value;
        } else if (!strcmp(a, "--timeout")) {
            if (parse_seconds_ms(v, &conf->timeout_ms) != 0)
                goto bad_value;
        } else if (!strcmp(a, "--max-clients")) {
            if (parse_uint(v, 100000, &conf->max_clients) != 0 || conf->max_clients == 0)
                goto bad_value;
        } else if (!strcmp(a, "--max-queue")) {
            if (parse_uint(v, 100000, &conf->max_queue) != 0)
                goto bad_value;
        } else {
            const char *near = fota_config_nearest(a, dropin_opts,
                                                   sizeof(dropin_opts) / sizeof(dropin_opts[0]));
            fprintf(stderr, "ERROR :: unknown argument %s%s%s%s\n", a, near ? ": did you mean " : "",
                    near ? near : "", near ? "?" : "");
            usage(stderr);
            return 2;
        }
        k++;
        continue;
bad_value:
        fprintf(stderr, "ERROR :: %s needs a valid value%s%s\n", a, v ? ", not " : "", v ? v : "");
        return 2;
    }
    for (int k = 0; k < 2; k++) {
        if (!fw[k]) {
            fprintf(stderr, "-fw%d should be specified\n", k + 1);
            return 2;
        }
    }
    return 0;
}

/* The two images named by -fw1/-fw2: present, resolved to absolute paths,
 * and accepted for their slot (or trusted when they carry no slot number).
 * 0, or -1 after printing why (as the seed server does). */
static int dropin_images(struct dropin *d, const char *fw[2])
{
    char why[256];
    for (int k = 0; k < 2; k++) {
        struct stat st;
        if (stat(fw[k], &st) == -1) {
            fprintf(stderr, "ERROR :: %s does not exist!\n", fw[k]);
            return -1;
        }
        if (!realpath(fw[k], d->img[k].path)) {
            fprintf(stderr, "realpath error :: %s\n", strerror(errno));
            return -1;
        }
        d->img[k].arg = fw[k];
        printf("firmware%d : %s\n", k + 1, d->img[k].path);
    }
    for (int k = 0; k < 2; k++) {
        struct stat st;
        int known = 1;
        if (image_check(d->img[k].path, k + 1, why, sizeof(why), &known) != 0 ||
            stat(d->img[k].path, &st) != 0) {
            fprintf(stderr, "ERROR :: %s refused for -fw%d: %s\n", d->img[k].path, k + 1, why);
            return -1;
        }
        if (!known)
            printf("note :: firmware%d has no slot number in byte 3 (RTOS 1.x / NONOS 1.x "
                   "gen_appbin or esptool image): trusting -fw%d\n", k + 1, k + 1);
        image_remember(&d->img[k], &st);
    }
    return 0;
}

/* The listener on bind:port, serving d's images. NULL after printing why. */
static struct fota_legacy *dropin_listen(struct dropin *d, const struct fota_legacy_conf *conf,
                                         const char *bind, int port, int *bound)
{
    struct fota_legacy_source src = { .open = dropin_open, .ud = d };
    char why[256];
    struct fota_legacy *lg = fota_legacy_new(d->base, conf, &src, dropin_log, NULL);
    if (!lg) {
        fota_legacy_conf_check(conf, why, sizeof(why));
        fprintf(stderr, "ERROR :: bad settings: %s\n", why);
        return NULL;
    }
    fota_legacy_set_record_cb(lg, dropin_record, NULL);
    if (fota_legacy_listen(lg, bind, port, bound) != 0) {
        fprintf(stderr, "bind failed. Error: %s (address %s port %d)\n", strerror(errno),
                bind ? bind : "0.0.0.0", port);
        fota_legacy_free(lg);
        return NULL;
    }
    return lg;
}

int fota_legacy_dropin_main(int argc, char **argv)
{
    struct fota_legacy_conf conf;
    struct fota_legacy *lg = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    const char *fw[2] = { NULL, NULL };
    const char *bind = NULL;
    int port = FOTA_LEGACY_DEFAULT_PORT, bound = 0, rc;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    fota_legacy_conf_init(&conf);
    struct dropin *d = fota_xcalloc(1, sizeof(*d));
    rc = parse_args(argc, argv, fw, &port, &bind, &conf);
    if (rc != 0) {
        rc = rc < 0 ? 0 : rc;
        goto out;
    }
    rc = 1;
    printf("\nfotad legacy (dfu_ota_server compatible)\n");
    if (dropin_images(d, fw) != 0)
        goto out;
    d->base = event_base_new();
    if (!d->base) {
        fprintf(stderr, "ERROR :: event_base_new failed\n");
        goto out;
    }
    if (!(lg = dropin_listen(d, &conf, bind, port, &bound)))
        goto out;
    sigint = evsignal_new(d->base, SIGINT, on_signal, d);
    sigterm = evsignal_new(d->base, SIGTERM, on_signal, d);
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) != 0 || evsignal_add(sigterm, NULL) != 0) {
        fprintf(stderr, "ERROR :: cannot install signal handlers\n");
        goto out;
    }
    print_addresses();
    printf("\nport : %d\n", bound);
    printf("pacing : chunk %u bytes, interval %u ms after each acknowledged write; "
           "timeout %u ms; max clients %u\n",
           conf.chunk, conf.interval_ms, conf.timeout_ms, conf.max_clients);
    printf("ota server is ready to be connected\n\n");
    event_base_dispatch(d->base);
    rc = 0;
out:
    fota_legacy_free(lg);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (d->base)
        event_base_free(d->base);
    free(d);
    fflush(stdout);
    return rc;
}
