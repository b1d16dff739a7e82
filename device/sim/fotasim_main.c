/* fota_sim_main.c - fota-sim: parses options, builds the factory image,
 * creates N virtual devices on one libevent loop, shows progress on a
 * terminal and prints the summary. Exit 0 only if every device ends
 * running the target version (or, without --upgrade-to, checked in). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "fota_sim.h"

static uint8_t *factory;
static size_t factory_len;

const uint8_t *fotasim_factory_image(struct fotasim *s, size_t *len)
{
    (void)s;
    *len = factory_len;
    return factory;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: fota-sim --server HOST [--http-port N] [--device-port N] [--legacy-port N]\n"
        "                [--key ADMIN_KEY] [--product ID] [--keys FILE]\n"
        "                --profile nonos|rtos|seed-dfu|fota --devices N [--upgrade-to VERSION]\n"
        "                [--initial-version V] [--map N] [--loader 2|31|7] [--time-scale X]\n"
        "                [--timeout SECONDS] [--max-attempts N] [--stream-ext]\n"
        "                [--faults SPEC] [--seed N] [--hold SECONDS] [--flash-dir DIR] [--tls]\n"
        "                [--json | --json-devices] [--source-addrs N] [--await-push] [--ack-only]\n"
        "                [--segment BYTES]\n"
        "       fota-sim --write-image SLOT:VERSION:FILE [--map N] [--image-size BYTES] [--seed N]\n"
        "  --keys FILE       master device keys, one per line (device i uses line i)\n"
        "  --time-scale X    divide every device timer by X (ping 50 s / X)\n"
        "  --hold SECONDS    run at least this long; devices stay connected and ping\n"
        "  --flash-dir DIR   load/save each device's flash as DIR/devNNNNN.bin\n"
        "  --tls             the device channel over TLS (give the TLS port as --device-port)\n"
        "  --json            print the summary as one JSON object (with channel drops and\n"
        "                    per-device upgrade times: p50/p99 from push to running the target)\n"
        "  --source-addrs N  bind device i's sockets to 127.0.0.(2 + i %% N) (IPv4 loopback\n"
        "                    servers; more source addresses, more ports)\n"
        "  --await-push      with --upgrade-to: send no RPCs, wait for the server's pushes\n"
        "                    (a bulk upgrade job with reboot)\n"
        "  --ack-only        acknowledge upgrade pushes but never download (fan-out runs)\n"
        "  --segment BYTES   download bytes per receive callback, at most (default 1460:\n"
        "                    one TCP segment per callback, as lwIP delivers them; a NONOS\n"
        "                    espconn callback may also get a pbuf chain up to its 5840-byte\n"
        "                    window; 536..65536). The nonos profile's substring tests run\n"
        "                    per callback, so the default is the faithful choice\n"
        "  --json-devices    the same plus \"per_device\": state, version, boots, power\n"
        "                    cuts and the versions booted, for every device\n"
        "  --faults SPEC     comma list: flash@N (power cut at the Nth flash operation\n"
        "                    after boot), rx@N (power cut after N received bytes),\n"
        "                    drop@N (close the download after N bytes), corrupt@N\n"
        "                    (invert the Nth byte received on download connections,\n"
        "                    headers included), slow=BPS (download links of at most\n"
        "                    BPS bytes/s), pct=P (share of\n"
        "                    devices affected, default 100); KIND@A-B draws N per\n"
        "                    device from [A, B] (reproducible with --seed)\n");
}

static int parse_faults(const char *spec, struct fotasim_fault *f)
{
    char buf[256], *tok, *save = NULL;
    f->flash_at = f->rx_at = f->drop_at = f->corrupt_at = -1;
    f->flash_hi = f->rx_hi = f->drop_hi = f->corrupt_hi = -1;
    f->pct = 100;
    if (strlen(spec) >= sizeof(buf))
        return -1;
    strcpy(buf, spec);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        long v, hi;
        const char *at = strchr(tok, '@');
        if (strncmp(tok, "slow=", 5) == 0) {   /* a slow link: bytes per second */
            v = strtol(tok + 5, &end, 10);
            if (*end || v < 1 || v > 1000000000L)
                return -1;
            f->slow_bps = v;
            continue;
        }
        if (strncmp(tok, "pct=", 4) == 0) {
            v = strtol(tok + 4, &end, 10);
            if (*end || v < 0 || v > 100)
                return -1;
            f->pct = (unsigned)v;
            continue;
        }
        if (!at)
            return -1;
        v = strtol(at + 1, &end, 10);
        hi = v;
        if (*end == '-' && end[1] >= '0' && end[1] <= '9')
            hi = strtol(end + 1, &end, 10);    /* KIND@A-B: a range */
        if (*end || v < 0 || hi < v)
            return -1;
        if (strncmp(tok, "flash@", 6) == 0)
            f->flash_at = v, f->flash_hi = hi;
        else if (strncmp(tok, "rx@", 3) == 0)
            f->rx_at = v, f->rx_hi = hi;
        else if (strncmp(tok, "drop@", 5) == 0)
            f->drop_at = v, f->drop_hi = hi;
        else if (strncmp(tok, "corrupt@", 8) == 0)
            f->corrupt_at = v, f->corrupt_hi = hi;
        else
            return -1;
    }
    return 0;
}

static int parse_profile(const char *s, enum fotadev_profile *p)
{
    if (!strcmp(s, "nonos")) *p = FOTADEV_PROFILE_NONOS;
    else if (!strcmp(s, "rtos")) *p = FOTADEV_PROFILE_RTOS;
    else if (!strcmp(s, "fota")) *p = FOTADEV_PROFILE_FOTA;
    else if (!strcmp(s, "seed-dfu")) *p = FOTADEV_PROFILE_SEED_DFU;
    else return -1;
    return 0;
}

static long num(const char *s, long lo, long hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return LONG_MIN;
    return v;
}

/* Registration through POST /v1/products/ID/devices/ needs the REST API
 * (not there yet): keys come from --keys, else each device makes one up. */
static char **load_keys(const char *path, int n, int *have)
{
    char **keys = calloc((size_t)n, sizeof(char *)), line[128];
    FILE *fp;
    *have = 0;
    if (!keys || !path)
        return keys;
    if (!(fp = fopen(path, "r"))) {
        fprintf(stderr, "fota-sim: cannot open %s: %s\n", path, strerror(errno));
        free(keys);
        return NULL;
    }
    while (*have < n && fgets(line, sizeof(line), fp)) {
        size_t l = strcspn(line, "\r\n");
        line[l] = '\0';
        if (l == 0)
            continue;
        if (l != FOTADEV_KEY_LEN) {
            fprintf(stderr, "fota-sim: %s: key %d is not 40 characters\n", path, *have + 1);
            break;
        }
        keys[(*have)++] = strdup(line);
    }
    fclose(fp);
    return keys;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Per-device upgrade time (first push to running the target), in ms. */
static json_t *upgrade_timings(struct fotasim *s)
{
    float *t = malloc(((size_t)s->o.devices + 1) * sizeof(float)), first = -1, last = 0;
    size_t n = 0;
    json_t *j;
    if (!t)
        return json_null();
    for (int i = 0; i < s->o.devices; i++) {
        const struct fotasim_dev *d = &s->devs[i];
        if (d->t_start > 0 && (first < 0 || d->t_start < first))
            first = d->t_start;
        if (d->t_done > last)
            last = d->t_done;
        if (d->t_start > 0 && d->t_done >= d->t_start)
            t[n++] = (d->t_done - d->t_start) * 1000.0f;
    }
    qsort(t, n, sizeof(float), cmp_float);
    j = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)n,
                  "p50_ms", n ? (double)t[(n - 1) / 2] : 0.0,
                  "p99_ms", n ? (double)t[(n - 1) * 99 / 100] : 0.0,
                  "max_ms", n ? (double)t[n - 1] : 0.0,
                  "first_push_s", first > 0 ? (double)first : 0.0, "last_done_s", (double)last);
    free(t);
    return j;
}

double fotasim_elapsed(struct fotasim *s)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return (double)(now.tv_sec - s->t0.tv_sec) + (double)(now.tv_usec - s->t0.tv_usec) / 1e6;
}

double fotasim_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double elapsed(struct fotasim *s)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return (double)(now.tv_sec - s->t0.tv_sec) + (double)(now.tv_usec - s->t0.tv_usec) / 1e6;
}

static void counts(struct fotasim *s, unsigned *running, unsigned *done, unsigned *failed,
                   uint64_t *bytes)
{
    int i;
    *running = *done = *failed = 0;
    *bytes = 0;
    for (i = 0; i < s->o.devices; i++) {
        struct fotasim_dev *d = &s->devs[i];
        *bytes += d->dl_bytes;
        if (d->state == DEV_DONE)
            (*done)++;
        else if (d->state == DEV_FAILED || d->state == DEV_DEAD)
            (*failed)++;
        else
            (*running)++;
    }
}

static void check_now(struct fotasim *s)
{
    unsigned running, done, failed;
    uint64_t bytes;
    counts(s, &running, &done, &failed, &bytes);
    if (running == 0 && !s->finished && (!s->o.hold_s || s->hold_over)) {
        /* --ack-only: the D4 written just now still has to leave the socket */
        struct timeval flush = { 0, 200000 };
        s->finished = 1;
        event_base_loopexit(s->base, s->o.ack_only ? &flush : NULL);
    }
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    check_now(arg);
}

/* Counting is O(devices): calls within 10 ms are coalesced into one count
 * (a fleet of 19,000 would otherwise count once per device event). */
void fotasim_check_done(struct fotasim *s)
{
    struct timeval tv = { 0, 10000 };
    if (!s->check_ev) {
        check_now(s);
        return;
    }
    if (!evtimer_pending(s->check_ev, NULL))
        evtimer_add(s->check_ev, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    unsigned running, done, failed;
    uint64_t bytes;
    counts(s, &running, &done, &failed, &bytes);
    fprintf(stderr, "\r%6.1fs  devices %d  activated %u  running %u  done %u  failed %u  %.1f MB   ",
            elapsed(s), s->o.devices, s->activated, running, done, failed, (double)bytes / 1e6);
}

static void hold_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    s->hold_over = 1;
    fotasim_check_done(s);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    s->finished = 1;
    event_base_loopexit(s->base, NULL);
}

/* --json-devices: one object per device; "booted" lists what the loader
 * started at each boot (null: nothing bootable), the first 16 boots. */
static json_t *per_device(struct fotasim *s)
{
    static const char *const states[] = {"booting", "running", "done", "failed", "dead"};
    json_t *arr = json_array();
    int i;
    for (i = 0; arr && i < s->o.devices; i++) {
        struct fotasim_dev *d = &s->devs[i];
        json_t *o = json_object(), *booted = json_array();
        unsigned k;
        for (k = 0; k < d->boot_logged; k++) {
            unsigned w = (d->boot_log >> (2 * k)) & 3u;
            json_array_append_new(booted,
                w == FOTASIM_BOOT_INITIAL ? json_string(s->o.initial_version)
                : w == FOTASIM_BOOT_TARGET ? json_string(s->o.upgrade_to)
                : w == FOTASIM_BOOT_OTHER ? json_string("other") : json_null());
        }
        json_object_set_new(o, "index", json_integer(i));
        json_object_set_new(o, "id", json_integer(d->api_id));
        json_object_set_new(o, "state", json_string(states[d->state]));
        json_object_set_new(o, "version", json_string(d->version));
        json_object_set_new(o, "boots", json_integer(d->boots));
        json_object_set_new(o, "power_cuts", json_integer(d->power_cuts));
        json_object_set_new(o, "booted", booted);
        json_object_set_new(o, "reason", d->state == DEV_DONE || !d->reason ? json_null()
                                                                            : json_string(d->reason));
        json_array_append_new(arr, o);
    }
    return arr;
}

static unsigned connected_now(const struct fotasim *s)
{
    unsigned n = 0;
    for (int i = 0; i < s->o.devices; i++)
        n += s->devs[i].conn[FOTADEV_CONN_CHAN].up ? 1u : 0u;
    return n;
}

static int summary(struct fotasim *s)
{
    const char *reasons[64];
    unsigned rcount[64], nr = 0, running, done, failed;
    uint64_t bytes;
    unsigned power_cuts = 0, boots = 0;
    size_t mem = 0;
    int i, ok;

    counts(s, &running, &done, &failed, &bytes);
    mem = s->pool.used * FOTADEV_SECTOR + s->pool.cap * sizeof(void *);
    for (i = 0; i < s->o.devices; i++) {
        struct fotasim_dev *d = &s->devs[i];
        const char *r;
        unsigned k;
        power_cuts += d->power_cuts;
        boots += d->boots;
        mem += fotasim_flash_footprint(&d->flash) + sizeof(*d);
        if (d->state == DEV_DONE)
            continue;
        r = d->reason ? d->reason : "timeout";
        for (k = 0; k < nr && strcmp(reasons[k], r) != 0; k++)
            ;
        if (k == nr && nr < 64) {
            reasons[nr] = r;
            rcount[nr++] = 0;
        }
        if (k < 64)
            rcount[k]++;
    }
    ok = done == (unsigned)s->o.devices;
    if (s->tty)
        fprintf(stderr, "\n");
    if (s->o.json) {
        json_t *j = json_object(), *why = json_object();
        char *txt;
        for (unsigned k = 0; k < nr; k++)
            json_object_set_new(why, reasons[k], json_integer(rcount[k]));
        json_object_set_new(j, "devices", json_integer(s->o.devices));
        json_object_set_new(j, "activated", json_integer(s->activated));
        json_object_set_new(j, s->o.upgrade_to ? "upgraded" : "checked_in", json_integer(done));
        json_object_set_new(j, "failed", json_integer(s->o.devices - (int)done));
        json_object_set_new(j, "reasons", why);
        json_object_set_new(j, "registered", json_integer(s->registered));
        json_object_set_new(j, "api_errors", json_integer(s->api_errors));
        json_object_set_new(j, "power_cuts", json_integer(power_cuts));
        json_object_set_new(j, "boots", json_integer(boots));
        json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
        json_object_set_new(j, "seconds", json_real(elapsed(s)));
        json_object_set_new(j, "memory_bytes", json_integer((json_int_t)mem));
        json_object_set_new(j, "result", json_string(ok ? "ok" : "failed"));
        json_object_set_new(j, "channel_drops", json_integer(s->chan_drops));
        json_object_set_new(j, "connected_at_end", json_integer(connected_now(s)));
        json_object_set_new(j, "upgrade", upgrade_timings(s));
        json_object_set_new(j, "pool", json_pack("{s:I, s:I, s:i, s:i}",
                                                 "sectors", (json_int_t)s->pool.used,
                                                 "shared", (json_int_t)s->pool.shared,
                                                 "crc_memo_hits", (int)s->pool.crc_memo_hits,
                                                 "version_memo_hits", (int)s->pool.memo_hits));
        /* CPU: the whole run, and from the first upgrade push on (the wave's part) */
        json_object_set_new(j, "cpu_s", json_real(fotasim_cpu_seconds()));
        json_object_set_new(j, "upgrade_cpu_s", json_real(s->cpu_at_push >= 0
                                                          ? fotasim_cpu_seconds() - s->cpu_at_push : 0.0));
        if (s->o.json_devices)
            json_object_set_new(j, "per_device", per_device(s));
        txt = json_dumps(j, JSON_SORT_KEYS);
        if (txt)
            printf("%s\n", txt);
        free(txt);
        json_decref(j);
        return ok ? 0 : 1;
    }
    printf("fota-sim summary\n");
    printf("  devices:    %d\n", s->o.devices);
    printf("  activated:  %u\n", s->activated);
    printf("  %s %u\n", s->o.upgrade_to ? "upgraded:  " : "checked in:", done);
    printf("  failed:     %u\n", (unsigned)s->o.devices - done);
    for (unsigned k = 0; k < nr; k++)
        printf("    %u x %s\n", rcount[k], reasons[k]);
    if (s->o.admin_key)
        printf("  api:        %u registered, %u errors%s%s\n", s->registered, s->api_errors,
               s->api_error[0] ? ", first: " : "", s->api_error);
    printf("  power cuts: %u\n", power_cuts);
    printf("  boots:      %u\n", boots);
    printf("  bytes:      %llu\n", (unsigned long long)bytes);
    printf("  time:       %.2f s\n", elapsed(s));
    printf("  sim memory: %.1f MB (%.1f KB per device: agent %u B)\n", (double)mem / 1e6,
           (double)mem / 1e3 / (s->o.devices ? s->o.devices : 1), (unsigned)sizeof(struct fotadev_agent));
    printf("result: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

static int build_factory(const struct fotasim_opts *o)
{
    struct fota_fwimg_build_opts b;
    fota_fwimg_build_opts_init(&b);
    b.slot = 1;
    b.size_map = (int)o->map;
    b.version = o->initial_version;
    b.irom_size = 8192;
    b.seed = o->seed;
    factory_len = fota_fwimg_build_size(&b);
    /* padded to whole sectors (0xFF, as erased flash): devices share them */
    if (!factory_len || !(factory = malloc((factory_len + 4095) & ~(size_t)4095)))
        return -1;
    memset(factory, 0xFF, (factory_len + 4095) & ~(size_t)4095);
    return fota_fwimg_build(&b, factory, factory_len, &factory_len);
}

/* --write-image SLOT:VERSION:FILE: a test image from the shared builder. */
static int cmd_write_image(const char *arg, const struct fotasim_opts *o, uint32_t size)
{
    struct fota_fwimg_build_opts b;
    char ver[FOTA_FWIMG_VERSION_MAX];
    const char *c1 = strchr(arg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    uint8_t *img;
    size_t len;
    FILE *fp;
    int rc = 1;

    if (!c1 || !c2 || (arg[0] != '1' && arg[0] != '2') || c1 != arg + 1 ||
        (size_t)(c2 - c1 - 1) >= sizeof(ver)) {
        fprintf(stderr, "fota-sim: --write-image wants SLOT:VERSION:FILE\n");
        return 2;
    }
    memcpy(ver, c1 + 1, (size_t)(c2 - c1 - 1));
    ver[c2 - c1 - 1] = '\0';
    fota_fwimg_build_opts_init(&b);
    b.slot = arg[0] - '0';
    b.size_map = (int)o->map;
    b.version = ver;
    b.seed = o->seed;
    if (size && fota_fwimg_build_fit(&b, size) != 0) {
        fprintf(stderr, "fota-sim: cannot fit an image in %u bytes\n", (unsigned)size);
        return 2;
    }
    len = fota_fwimg_build_size(&b);
    if (!len || !(img = malloc(len)))
        return 2;
    if (fota_fwimg_build(&b, img, len, &len) == 0 && (fp = fopen(c2 + 1, "wb"))) {
        rc = fwrite(img, 1, len, fp) == len ? 0 : 1;
        if (fclose(fp) != 0)
            rc = 1;
    }
    free(img);
    if (rc)
        fprintf(stderr, "fota-sim: cannot write %s\n", c2 + 1);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", 1, 0, 's'}, {"http-port", 1, 0, 'H'}, {"device-port", 1, 0, 'D'},
        {"legacy-port", 1, 0, 'L'}, {"key", 1, 0, 'k'}, {"product", 1, 0, 'p'},
        {"keys", 1, 0, 'K'}, {"profile", 1, 0, 'P'}, {"devices", 1, 0, 'n'},
        {"upgrade-to", 1, 0, 'u'}, {"initial-version", 1, 0, 'i'}, {"map", 1, 0, 'm'},
        {"loader", 1, 0, 'l'}, {"time-scale", 1, 0, 't'}, {"timeout", 1, 0, 'T'},
        {"max-attempts", 1, 0, 'A'}, {"stream-ext", 0, 0, 'x'}, {"faults", 1, 0, 'f'},
        {"seed", 1, 0, 'S'}, {"write-image", 1, 0, 'W'}, {"image-size", 1, 0, 'Z'},
        {"flash-dir", 1, 0, 'F'}, {"hold", 1, 0, 'O'}, {"tls", 0, 0, 'y'}, {"json", 0, 0, 'J'},
        {"source-addrs", 1, 0, 'B'}, {"await-push", 0, 0, 'a'}, {"ack-only", 0, 0, 'q'},
        {"json-devices", 0, 0, 'j'}, {"segment", 1, 0, 'g'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    struct fotasim s;
    struct fotasim_opts *o = &s.o;
    struct event *timeout = NULL;
    struct timeval tv;
    char **keys = NULL;
    int c, i, nkeys = 0, rc = 2;
    long v;
    struct addrinfo hints, *ai = NULL;
    static char host[64];
    const char *write_image = NULL;
    uint32_t image_size = 0;

    memset(&s, 0, sizeof(s));
    s.cpu_at_push = -1.0;
    o->http_port = 80;
    o->device_port = 8000;
    o->legacy_port = 5555;
    o->devices = 1;
    o->map = 2;
    o->loader = 7;
    o->time_scale = 1.0;
    o->timeout_s = 300;
    o->max_attempts = 3;
    o->seed = 1;
    o->segment = FOTASIM_MSS;
    o->initial_version = "v1.0.0t45772(a)";
    o->profile = FOTADEV_PROFILE_NONOS;
    o->fault.flash_at = o->fault.rx_at = o->fault.drop_at = o->fault.corrupt_at = -1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        v = 0;
        switch (c) {
        case 's': o->server = optarg; break;
        case 'H': if ((v = num(optarg, 1, 65535)) != LONG_MIN) o->http_port = (int)v; break;
        case 'D': if ((v = num(optarg, 1, 65535)) != LONG_MIN) o->device_port = (int)v; break;
        case 'L': if ((v = num(optarg, 1, 65535)) != LONG_MIN) o->legacy_port = (int)v; break;
        case 'k': o->admin_key = optarg; break;
        case 'p': o->product = optarg; break;
        case 'K': o->keys_file = optarg; break;
        case 'P': if (parse_profile(optarg, &o->profile) < 0) v = LONG_MIN; break;
        case 'n': if ((v = num(optarg, 1, 100000)) != LONG_MIN) o->devices = (int)v; break;
        case 'u': o->upgrade_to = optarg; break;
        case 'i': o->initial_version = optarg; break;
        case 'm': if ((v = num(optarg, 0, 9)) != LONG_MIN) o->map = (unsigned)v; break;
        case 'l': if ((v = num(optarg, 2, 31)) != LONG_MIN) o->loader = (int)v; break;
        case 't': o->time_scale = atof(optarg); if (o->time_scale <= 0) v = LONG_MIN; break;
        case 'T': if ((v = num(optarg, 1, 86400)) != LONG_MIN) o->timeout_s = (unsigned)v; break;
        case 'A': if ((v = num(optarg, 1, 1000)) != LONG_MIN) o->max_attempts = (unsigned)v; break;
        case 'x': o->stream_ext = 1; break;
        case 'f': if (parse_faults(optarg, &o->fault) < 0) v = LONG_MIN; o->have_fault = 1; break;
        case 'S': if ((v = num(optarg, 0, 0x7FFFFFFF)) != LONG_MIN) o->seed = (uint32_t)v; break;
        case 'W': write_image = optarg; break;
        case 'F': o->flash_dir = optarg; break;
        case 'y': o->tls = 1; break;
        case 'J': o->json = 1; break;
        case 'B': if ((v = num(optarg, 0, 250)) != LONG_MIN) o->source_addrs = (unsigned)v; break;
        case 'a': o->await_push = 1; break;
        case 'q': o->ack_only = 1; break;
        case 'j': o->json = o->json_devices = 1; break;
        case 'g': if ((v = num(optarg, 536, FOTASIM_SEGMENT_MAX)) != LONG_MIN) o->segment = (unsigned)v; break;
        case 'O': if ((v = num(optarg, 0, 86400)) != LONG_MIN) o->hold_s = (unsigned)v; break;
        case 'Z': if ((v = num(optarg, 1024, 16 << 20)) != LONG_MIN) image_size = (uint32_t)v; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (v == LONG_MIN) {
            fprintf(stderr, "fota-sim: bad value: %s\n", optarg ? optarg : "?");
            return 2;
        }
    }
    if (write_image)
        return cmd_write_image(write_image, o, image_size);
    if (!o->server || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (o->upgrade_to && strlen(o->upgrade_to) >= FOTA_FWIMG_VERSION_MAX) {
        fprintf(stderr, "fota-sim: --upgrade-to is too long\n");
        return 2;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(o->server, NULL, &hints, &ai) != 0 ||
        getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0) {
        fprintf(stderr, "fota-sim: cannot resolve %s\n", o->server);
        if (ai)
            freeaddrinfo(ai);
        return 2;
    }
    freeaddrinfo(ai);
    o->server = host;
    if (build_factory(o) != 0) {
        fprintf(stderr, "fota-sim: cannot build the factory image (map %u, version %s)\n", o->map,
                o->initial_version);
        return 2;
    }
    keys = load_keys(o->keys_file, o->devices, &nkeys);
    if (!keys) {
        free(factory);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o->tls) {
        /* IoT_Demo enables no CA check; small devices offer TLS 1.2 */
        s.ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!s.ssl_ctx)
            goto out;
        SSL_CTX_set_verify(s.ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_max_proto_version(s.ssl_ctx, TLS1_2_VERSION);
    }
    {
        /* two sockets per device (channel + download) and a few for the API */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
            rl.rlim_cur < (rlim_t)o->devices * 2 + 64) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    s.base = event_base_new();
    if (s.base)
        s.check_ev = evtimer_new(s.base, check_cb, &s);
    if (o->fault.slow_bps > 0) {
        /* libevent's token bucket, refilled every 100 ms: rates are per tick */
        struct timeval tick = { 0, 100000 };
        size_t per_tick = (size_t)(o->fault.slow_bps / 10 > 0 ? o->fault.slow_bps / 10 : 1);
        s.slow_cfg = ev_token_bucket_cfg_new(per_tick, per_tick, EV_RATE_LIMIT_MAX,
                                             EV_RATE_LIMIT_MAX, &tick);
        if (!s.slow_cfg)
            goto out;
    }
    s.devs = calloc((size_t)o->devices, sizeof(*s.devs));
    if (!s.base || !s.devs)
        goto out;
    gettimeofday(&s.t0, NULL);
    for (i = 0; i < o->devices; i++) {
        if (fotasim_dev_init(&s, &s.devs[i], i, i < nkeys ? keys[i] : NULL) < 0) {
            fprintf(stderr, "fota-sim: cannot create device %d (out of memory?)\n", i);
            fotasim_dev_cleanup(&s.devs[i]);
            o->devices = i;
            goto out;
        }
    }
    if (o->admin_key) {
        if (o->upgrade_to && !(o->upgrade_to_enc = evhttp_uriencode(o->upgrade_to, -1, 0)))
            goto out;
        if (fotasim_api_init(&s) < 0)
            goto out;
    }
    if (o->admin_key && !o->keys_file) {
        if (fotasim_api_register_all(&s) < 0)
            goto out;
    } else {
        for (i = 0; i < o->devices; i++)
            fotasim_dev_boot(&s.devs[i]);
    }
    s.tty = isatty(2);
    if (s.tty) {
        s.tick = event_new(s.base, -1, EV_PERSIST, tick_cb, &s);
        tv.tv_sec = 0;
        tv.tv_usec = 250000;
        event_add(s.tick, &tv);
    }
    if (o->hold_s) {
        s.hold = evtimer_new(s.base, hold_cb, &s);
        tv.tv_sec = o->hold_s;
        tv.tv_usec = 0;
        if (s.hold)
            evtimer_add(s.hold, &tv);
    }
    timeout = evtimer_new(s.base, timeout_cb, &s);
    tv.tv_sec = o->timeout_s;
    tv.tv_usec = 0;
    evtimer_add(timeout, &tv);
    fotasim_check_done(&s);
    if (!s.finished)
        event_base_dispatch(s.base);
    rc = summary(&s);
out:
    fotasim_api_cleanup(&s);        /* before the devices: pending calls point at them */
    for (i = 0; s.devs && i < o->devices; i++)
        fotasim_dev_cleanup(&s.devs[i]);
    free(s.devs);
    fotasim_pool_cleanup(&s.pool);    /* after the flashes that point into it */
    free(o->upgrade_to_enc);
    if (s.tick)
        event_free(s.tick);
    if (s.check_ev)
        event_free(s.check_ev);
    if (s.slow_cfg)
        ev_token_bucket_cfg_free(s.slow_cfg);   /* after the devices' bufferevents */
    if (s.hold)
        event_free(s.hold);
    if (s.ssl_ctx)
        SSL_CTX_free(s.ssl_ctx);
    if (timeout)
        event_free(timeout);
    if (s.base)
        event_base_free(s.base);
    for (i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
    free(factory);
    return rc;
}
