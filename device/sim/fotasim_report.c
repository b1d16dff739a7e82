/* fotasim_report.c - fota-sim's summary: counts, failure reasons grouped
 * by text, the simulator's memory and CPU, per-device upgrade times
 * (first push to running the target) and, with --json-devices, each
 * device's state and boot history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fotasim_dev.h"
#include "fotasim_report.h"

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Per-device upgrade time (first push to running the target), in ms. */
static json_t *upgrade_timings(const struct fotasim *s)
{
    float *t = malloc(((size_t)s->ndevs + 1) * sizeof(float)), first = -1, last = 0;
    size_t n = 0;
    json_t *j;
    if (!t)
        return json_null();
    for (int i = 0; i < s->ndevs; i++) {
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

/* An Arduino-core device: what it reports and how its last update() ended. */
static json_t *ard_device(const struct fotasim_dev *d)
{
    static const char *const results[] = {"FAILED", "NO_UPDATES", "OK"};
    const struct fotasim_ard *a = &d->u.ard;
    json_t *o = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:i, s:s}", "mac", a->sta_mac,
                          "chip_id", (json_int_t)a->chip_id, "sketch_md5", a->sk.md5,
                          "sketch_size", (json_int_t)a->sk.size,
                          "free_space", (json_int_t)fotasim_ardenv_free_space(&a->env),
                          "checkins", (json_int_t)a->checkins, "last_error", a->last_error,
                          "last_error_string", a->last_errstr);
    if (o && a->checkins)
        json_object_set_new(o, "last_result", json_string(results[a->last_result % 3]));
    if (o && d->sim->o.profile == FOTASIM_PROFILE_TASMOTA) {
        json_object_set_new(o, "topic", json_string(a->p.tas.topic));
        json_object_set_new(o, "attempts", json_integer(a->p.tas.attempts));
        json_object_set_new(o, "last_url", json_string(a->p.tas.last_url));
        json_object_set_new(o, "ota_url", json_string(a->p.tas.ota_url));
    }
    if (o && d->sim->o.profile == FOTASIM_PROFILE_ESPHOME) {
        json_object_set_new(o, "polls", json_integer(a->p.esph.polls));
        json_object_set_new(o, "firmware_url", json_string(a->p.esph.fw_url));
    }
    return o ? o : json_null();
}

/* --json-devices: one object per device; "booted" lists what the loader
 * started at each boot (null: nothing bootable), the first 16 boots. */
static json_t *per_device(const struct fotasim *s)
{
    static const char *const states[] = {"booting", "running", "done", "failed", "dead"};
    json_t *arr = json_array();
    int i;
    for (i = 0; arr && i < s->ndevs; i++) {
        const struct fotasim_dev *d = &s->devs[i];
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
        json_object_set_new(o, "reason", d->state == DEV_DONE || !d->reason[0]
                                             ? json_null() : json_string(d->reason));
        if (FOTASIM_PROFILE_IS_ARD(s->o.profile))
            json_object_set_new(o, "arduino", ard_device(d));
        json_array_append_new(arr, o);
    }
    return arr;
}

static unsigned connected_now(const struct fotasim *s)
{
    unsigned n = 0;
    for (int i = 0; i < s->ndevs; i++)
        n += s->devs[i].conn[FOTADEV_CONN_CHAN].up ? 1u : 0u;
    return n;
}

/* Failure reasons of the devices not done, grouped by text. */
struct reasons {
    const char *text[64];
    unsigned count[64], n;
};

static void group_reasons(const struct fotasim *s, struct reasons *r)
{
    int i;
    r->n = 0;
    for (i = 0; i < s->ndevs; i++) {
        const struct fotasim_dev *d = &s->devs[i];
        const char *why = d->reason[0] ? d->reason : "timeout";
        unsigned k;
        if (d->state == DEV_DONE)
            continue;
        for (k = 0; k < r->n && strcmp(r->text[k], why) != 0; k++)
            ;
        if (k == r->n && r->n < 64) {
            r->text[r->n] = why;
            r->count[r->n++] = 0;
        }
        if (k < 64)
            r->count[k]++;
    }
}

struct totals {
    unsigned power_cuts, boots;
    size_t mem;                   /* the simulator's estimate of its own memory */
};

static void add_totals(const struct fotasim *s, struct totals *t)
{
    int i;
    memset(t, 0, sizeof(*t));
    t->mem = s->pool.used * FOTADEV_SECTOR + s->pool.cap * sizeof(void *);
    for (i = 0; i < s->ndevs; i++) {
        const struct fotasim_dev *d = &s->devs[i];
        t->power_cuts += d->power_cuts;
        t->boots += d->boots;
        t->mem += fotasim_flash_footprint(&d->flash) + sizeof(*d);
    }
}

static void print_json(const struct fotasim *s, const struct fotasim_app *app, int ok)
{
    struct fotasim_counts c;
    struct reasons r;
    struct totals t;
    json_t *j = json_object(), *why = json_object();
    char *txt;
    unsigned k;

    fotasim_fleet_counts(s, &c);
    group_reasons(s, &r);
    add_totals(s, &t);
    for (k = 0; k < r.n; k++)
        json_object_set_new(why, r.text[k], json_integer(r.count[k]));
    json_object_set_new(j, "devices", json_integer(s->ndevs));
    json_object_set_new(j, "activated", json_integer(s->activated));
    json_object_set_new(j, s->o.upgrade_to ? "upgraded" : "checked_in", json_integer(c.done));
    json_object_set_new(j, "failed", json_integer(s->ndevs - (int)c.done));
    json_object_set_new(j, "reasons", why);
    json_object_set_new(j, "registered", json_integer(app->registered));
    json_object_set_new(j, "api_errors", json_integer(app->errors));
    json_object_set_new(j, "power_cuts", json_integer(t.power_cuts));
    json_object_set_new(j, "boots", json_integer(t.boots));
    json_object_set_new(j, "bytes", json_integer((json_int_t)c.bytes));
    json_object_set_new(j, "seconds", json_real(fotasim_fleet_elapsed(s)));
    json_object_set_new(j, "memory_bytes", json_integer((json_int_t)t.mem));
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
    json_object_set_new(j, "cpu_s", json_real(fotasim_fleet_cpu_seconds()));
    json_object_set_new(j, "upgrade_cpu_s", json_real(s->cpu_at_push >= 0
                                                      ? fotasim_fleet_cpu_seconds() - s->cpu_at_push
                                                      : 0.0));
    if (s->o.json_devices)
        json_object_set_new(j, "per_device", per_device(s));
    txt = json_dumps(j, JSON_SORT_KEYS);
    if (txt)
        printf("%s\n", txt);
    free(txt);
    json_decref(j);
}

static void print_text(const struct fotasim *s, const struct fotasim_app *app, int ok)
{
    struct fotasim_counts c;
    struct reasons r;
    struct totals t;
    unsigned k;

    fotasim_fleet_counts(s, &c);
    group_reasons(s, &r);
    add_totals(s, &t);
    printf("fota-sim summary\n");
    printf("  devices:    %d\n", s->ndevs);
    printf("  activated:  %u\n", s->activated);
    printf("  %s %u\n", s->o.upgrade_to ? "upgraded:  " : "checked in:", c.done);
    printf("  failed:     %u\n", (unsigned)s->ndevs - c.done);
    for (k = 0; k < r.n; k++)
        printf("    %u x %s\n", r.count[k], r.text[k]);
    if (s->o.admin_key)
        printf("  api:        %u registered, %u errors%s%s\n", app->registered, app->errors,
               app->first_error[0] ? ", first: " : "", app->first_error);
    printf("  power cuts: %u\n", t.power_cuts);
    printf("  boots:      %u\n", t.boots);
    printf("  bytes:      %llu\n", (unsigned long long)c.bytes);
    printf("  time:       %.2f s\n", fotasim_fleet_elapsed(s));
    printf("  sim memory: %.1f MB (%.1f KB per device: agent %u B)\n", (double)t.mem / 1e6,
           (double)t.mem / 1e3 / (s->ndevs ? s->ndevs : 1), (unsigned)sizeof(struct fotadev_agent));
    printf("result: %s\n", ok ? "ok" : "FAILED");
}

int fotasim_report_print(const struct fotasim *s, const struct fotasim_app *app)
{
    struct fotasim_counts c;
    int ok;

    fotasim_fleet_counts(s, &c);
    ok = s->ndevs > 0 && c.done == (unsigned)s->ndevs;
    if (s->o.json)
        print_json(s, app, ok);
    else
        print_text(s, app, ok);
    return ok ? 0 : 1;
}
