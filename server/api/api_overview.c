/* api_overview.c - GET /v1/products/ID/overview: a product's fleet at a
 * glance for the console's overview (docs/api.md): devices online and
 * offline, the versions they run, and the upgrade reports, finished
 * downloads and bytes per bucket of a range, as the store aggregates them
 * (product_census, product_activity), never a list of devices. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "hub.h"

/* The ranges the overview offers, each with the bucket that gives it
 * 60 to 168 points. */
static const struct {
    const char *name;
    int64_t range, step;
} ranges[] = {
    { "1h", 3600, 60 },           { "6h", 6 * 3600, 300 },     { "24h", 86400, 900 },
    { "7d", 7 * 86400, 3600 },    { "30d", 30 * 86400, 21600 },
};

/* The activity of [since, since + count * step) as columns (t, upgraded,
 * failed, downloads, bytes), every bucket present (0 where nothing
 * happened), and its totals into tot. */
static json_t *activity_json(const struct fota_activity_row *rows, size_t n, int64_t since,
                             int64_t step, size_t count, struct fota_activity_row *tot)
{
    json_t *t = json_array(), *up = json_array(), *fail = json_array(), *dl = json_array(),
           *bytes = json_array();
    size_t k = 0;
    memset(tot, 0, sizeof *tot);
    for (size_t i = 0; i < count; i++) {
        int64_t at = since + (int64_t)i * step;
        struct fota_activity_row z = { at, 0, 0, 0, 0 };
        while (k < n && rows[k].t < at)
            k++;
        const struct fota_activity_row *a = k < n && rows[k].t == at ? &rows[k] : &z;
        json_array_append_new(t, json_integer(at));
        json_array_append_new(up, json_integer(a->upgraded));
        json_array_append_new(fail, json_integer(a->failed));
        json_array_append_new(dl, json_integer(a->downloads));
        json_array_append_new(bytes, json_integer(a->bytes));
        tot->upgraded += a->upgraded;
        tot->failed += a->failed;
        tot->downloads += a->downloads;
        tot->bytes += a->bytes;
    }
    return fota_http_json_pack("{s:o, s:o, s:o, s:o, s:o}", "t", t, "upgraded", up, "failed", fail,
                               "downloads", dl, "bytes", bytes);
}

static void handle_overview(struct fota_req *r)
{
    struct fota_store *st = r->srv->store;
    struct fota_product p;
    struct fota_census_row *vers = NULL;
    struct fota_activity_row *rows = NULL, *recent = NULL;
    size_t nv = 0, nr = 0, nrecent = 0, ri = 2;   /* 24h by default */
    int rc;

    if (fota_api_admin_product(r, &p))
        return;
    const char *want = fota_req_query(r, "range");
    if (want) {
        for (ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++)
            if (strcmp(want, ranges[ri].name) == 0)
                break;
        if (ri == sizeof ranges / sizeof ranges[0]) {
            fota_reply_error(r, 400, "range is one of 1h, 6h, 24h, 7d, 30d");
            return;
        }
    }
    int64_t now = fota_clock_wall_s(), step = ranges[ri].step;
    size_t count = (size_t)(ranges[ri].range / step);
    /* the last bucket is the one now is in (still filling) */
    int64_t since = now / step * step - (int64_t)(count - 1) * step;
    /* the rom module's pending ledger rows land before the counts are read */
    fota_hub_publish(r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    rc = st->ops->product_census(st, p.id, now, &vers, &nv);
    if (rc == 0)
        rc = st->ops->product_activity(st, p.id, since, now + 1, step, &rows, &nr);
    /* downloads per minute: the five whole minutes before this one */
    int64_t min5 = now / 60 * 60 - 300;
    if (rc == 0)
        rc = st->ops->product_activity(st, p.id, min5, min5 + 300, 60, &recent, &nrecent);
    if (rc) {
        fota_reply_status(r, rc, "overview of product %lld", (long long)p.id);
        goto out;
    }
    json_t *versions = json_array();
    int64_t devices = 0, online = 0;
    for (size_t i = 0; i < nv; i++) {
        if (vers[i].devices == 0)
            continue;   /* the row of a product without devices */
        devices += vers[i].devices;
        online += vers[i].online;
        json_array_append_new(versions,
                              fota_http_json_pack("{s:s, s:I, s:I}", "version", vers[i].version,
                                                  "devices", (json_int_t)vers[i].devices, "online",
                                                  (json_int_t)vers[i].online));
    }
    struct fota_activity_row tot, last5 = { 0, 0, 0, 0, 0 };
    json_t *act = activity_json(rows, nr, since, step, count, &tot);
    for (size_t i = 0; i < nrecent; i++) {
        last5.downloads += recent[i].downloads;
        last5.bytes += recent[i].bytes;
    }
    json_object_set_new(act, "range", json_integer(ranges[ri].range));
    json_object_set_new(act, "step", json_integer(step));
    json_object_set_new(act, "since", json_integer(since));
    json_t *o = fota_http_json_pack(
        "{s:I, s:I, s:s, s:I, s:I, s:I, s:o, s:o, s:{s:I, s:I, s:I, s:I}, s:f, s:f}", "product_id",
        (json_int_t)p.id, "at", (json_int_t)now, "current_version", nv ? vers[0].current : "",
        "devices", (json_int_t)devices, "online", (json_int_t)online, "offline",
        (json_int_t)(devices - online), "versions", versions, "activity", act, "totals",
        "upgraded", (json_int_t)tot.upgraded, "failed", (json_int_t)tot.failed, "downloads",
        (json_int_t)tot.downloads, "bytes", (json_int_t)tot.bytes, "downloads_per_minute",
        (double)last5.downloads / 5.0, "bytes_per_minute", (double)last5.bytes / 5.0);
    fota_reply_json(r, 200, fota_http_json_pack("{s:o}", "overview", o));
out:
    free(vers);
    free(rows);
    free(recent);
}

int fota_api_overview_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_GET, "/v1/products/*/overview", handle_overview, FOTA_ROUTE_STORE },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
