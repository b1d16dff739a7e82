/* api_delete.c - deletion (admin key): DELETE /v1/products/ID/roms/VERSION/,
 * DELETE /v1/devices/ID/ and DELETE /v1/products/ID/ (also POST ?method=DELETE).
 * The current release can only go when its product has no device left.
 * Each is one store transaction; then a release's blobs that no release names
 * any more are unlinked (a download in flight keeps its open descriptor), and
 * the modules hear of a deleted device (hub topic DEVICE_DELETED: the device
 * channel closes its connections); a rollout may veto (DEVICE_BUSY, RELEASE_BUSY). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "rom.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

/* 1 if hash is in the sorted list refs[0..n). */
static int is_referenced(char (*refs)[FOTA_HASH_HEX], size_t n, const char *hash)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(refs[mid], hash);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The blob removal of a release delete, on the main loop: uploads queue
 * and finish there, so no upload starts or ends during it. */
struct blob_removal {
    struct fota_api *api;
    const struct fota_rom *rom;
    char (*refs)[FOTA_HASH_HEX];
    size_t nrefs;
    int64_t mark;     /* fota_api_uploads_mark before blob_refs; -1: keep all */
    json_t *removed, *kept;
};

static void uploads_mark_main(void *arg)
{
    struct blob_removal *b = arg;
    b->mark = fota_api_uploads_mark(b->api);
}

static void remove_blobs_main(void *arg)
{
    struct blob_removal *b = arg;
    const struct fota_rom *rom = b->rom;
    /* An upload queued since the references were read may name a blob
     * they do not: keep them all. */
    int keep = b->mark < 0 || fota_api_uploads_mark(b->api) != b->mark;
    for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++) {
        const char *h = rom->files[i].sha256;
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(rom->files[k].sha256, h) == 0;
        if (seen)
            continue;   /* the same bytes twice in one release */
        if (keep || is_referenced(b->refs, b->nrefs, h)) {
            json_array_append_new(b->kept, json_string(h));
            continue;
        }
        int r = fota_blob_remove(b->api->srv->blobs, h);
        if (r == 0 || r == FOTA_ENOENT)
            json_array_append_new(b->removed, json_string(h));
        else
            json_array_append_new(b->kept, json_string(h));
        if (r && r != FOTA_ENOENT)
            FOTA_WARN("cannot remove blob sha256=%s error=%s", h, fota_errname(r));
    }
    if (keep && b->mark >= 0)
        b->mark = -1;   /* for the log line: as if busy */
}

/* After a release is deleted (any thread; the references are read here, the
 * files go on the main loop): unlinks the release's blobs that no release
 * names any more. Adds "blobs_removed" and "blobs_kept" (still used by
 * another release, or kept for the start-up sweep while an upload runs) to j. */
static void remove_blobs(struct fota_api *api, const struct fota_rom *rom, json_t *j)
{
    struct fota_server *srv = api->srv;
    struct blob_removal b = { api, rom, NULL, 0, -1, json_array(), json_array() };
    int e = 0;
    if (fota_loop_call(srv->loops[0], uploads_mark_main, &b) != 0)
        b.mark = -1;
    if (b.mark >= 0)
        e = srv->store->ops->blob_refs(srv->store, &b.refs, &b.nrefs);
    if (e)
        b.mark = -1;
    if (fota_loop_call(srv->loops[0], remove_blobs_main, &b) != 0)
        b.mark = -1;
    if (e)
        FOTA_WARN("rom delete keeps its blobs reason=\"blob_refs failed: %s\"", fota_errname(e));
    else if (b.mark < 0)
        FOTA_INFO("rom delete keeps its blobs reason=\"an upload is in progress\" "
                  "(the start-up sweep removes the unreferenced ones)");
    free(b.refs);
    json_object_set_new(j, "blobs_removed", b.removed);
    json_object_set_new(j, "blobs_kept", b.kept);
}

static void handle_rom_delete(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_product p;
    struct fota_rom *rom = NULL;
    const char *version = r->caps[1];
    int64_t pid, job = 0;
    int e;

    if (fota_api_admin_product_counted(r, &p))
        return;
    pid = p.id;
    if (strcmp(p.current_version, version) == 0 && p.devices_total > 0) {
        fota_reply_error(r, 409, "version %s is the current (recommended) release of product "
                                 "%lld, which has %lld device(s): make another release current "
                                 "first", version, (long long)pid, (long long)p.devices_total);
        return;
    }
    struct fota_hub_release rel = { pid, version };
    job = fota_hub_publish_any(srv, FOTA_HUB_RELEASE_BUSY, &rel);
    if (job > 0) {
        fota_reply_error(r, 409, "rollout %lld is still pushing version %s: wait for it "
                                 "to finish (GET /v1/rollouts/%lld/)", (long long)job, version,
                         (long long)job);
        return;
    }
    rom = fota_xmalloc(sizeof *rom);
    fota_hub_publish(srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);   /* pending ledger rows of its files land first */
    e = srv->store->ops->rom_delete(srv->store, pid, version, rom);
    if (e == FOTA_ENOENT) {
        fota_reply_error(r, 404, "product %lld has no version %s", (long long)pid, version);
        goto out;
    }
    if (e == FOTA_EBUSY) {   /* made current, or a device added, since the check above */
        fota_reply_error(r, 409, "version %s is the current (recommended) release of product "
                                 "%lld", version, (long long)pid);
        goto out;
    }
    if (e) {
        fota_reply_status(r, e, "release %s of product %lld", version, (long long)pid);
        goto out;
    }
    json_t *j = json_object();
    json_object_set_new(j, "rom", fota_rom_json(rom));
    remove_blobs(r->ud, rom, j);
    FOTA_INFO("rom deleted product=%lld version=%s files=%zu blobs_removed=%zu", (long long)pid,
              version, rom->nfiles, json_array_size(json_object_get(j, "blobs_removed")));
    fota_server_publish_json(srv, pid, 0, "rom_deleted",
                             fota_http_json_pack("{s:s}", "version", version));
    fota_reply_json(r, 200, j);
out:
    free(rom);
}

static void handle_device_delete(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_key key;
    struct fota_device d;
    int64_t id;
    int closed = 0, e;

    if (fota_req_admin(r, &key))
        return;
    id = fota_req_cap_id(r, 0);
    if (id < 0 || fota_api_device_load(r, id, &d))
        return;
    struct fota_hub_device dev = { id };
    int64_t job = fota_hub_publish_any(srv, FOTA_HUB_DEVICE_BUSY, &dev);
    if (job > 0) {
        fota_reply_error(r, 409, "rollout %lld is writing the command rows of its devices, "
                                 "this one included: retry in a second", (long long)job);
        return;
    }
    fota_hub_publish(srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);   /* its pending ledger rows land before they go */
    e = srv->store->ops->device_delete(srv->store, id);
    if (e) {
        fota_reply_status(r, e, "device %lld", (long long)id);
        return;
    }
    /* The keys are gone from the store (and from every cache at its next
     * request, via the generation); a live connection goes now. */
    struct fota_hub_device_deleted gone = { id, &closed };
    fota_hub_publish_any(srv, FOTA_HUB_DEVICE_DELETED, &gone);
    FOTA_INFO("device deleted dev=%lld product=%lld connections_closed=%d", (long long)id,
              (long long)d.product_id, closed);
    fota_server_publish_json(srv, d.product_id, 0, "device_deleted",
                             fota_http_json_pack("{s:I, s:s}", "device_id", (json_int_t)id,
                                                 "device", d.name));
    d.online = 0;
    json_t *j = json_object();
    json_object_set_new(j, "device", fota_api_json_device(&d));
    json_object_set_new(j, "connections_closed", json_integer(closed));
    fota_reply_json(r, 200, j);
}

static void handle_product_delete(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_product p;
    struct fota_rom *roms = NULL;
    size_t nroms = 0;
    int64_t id;
    int e;

    if (fota_api_admin_product_counted(r, &p))
        return;
    id = p.id;
    e = srv->store->ops->rom_list(srv->store, id, &roms, &nroms);
    free(roms);
    if (e) {
        fota_reply_status(r, e, "releases of product %lld", (long long)id);
        return;
    }
    if (p.devices_total > 0 || nroms > 0) {
        fota_reply_error(r, 409, "product %lld still has %lld device(s) and %zu release(s): "
                                 "delete them first", (long long)id,
                         (long long)p.devices_total, nroms);
        return;
    }
    e = srv->store->ops->product_delete(srv->store, id);
    if (e == FOTA_EBUSY) {   /* a device or release arrived since the check */
        fota_reply_error(r, 409, "product %lld still has devices or releases", (long long)id);
        return;
    }
    if (e) {
        fota_reply_status(r, e, "product %lld", (long long)id);
        return;
    }
    char nq[2 * FOTA_NAME_MAX + 4];
    FOTA_INFO("product deleted product=%lld name=%s", (long long)id,
              fota_log_quote(p.name, nq, sizeof(nq)));
    json_t *j = json_object();
    json_object_set_new(j, "product", fota_api_json_product(&p));
    fota_reply_json(r, 200, j);
}

int fota_api_delete_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_DELETE, "/v1/products/*/roms/*/", handle_rom_delete, FOTA_ROUTE_STORE },
        { FOTA_M_DELETE, "/v1/devices/*/", handle_device_delete, FOTA_ROUTE_STORE },
        { FOTA_M_DELETE, "/v1/products/*/", handle_product_delete, FOTA_ROUTE_STORE },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
