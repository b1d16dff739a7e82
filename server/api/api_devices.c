/* api_devices.c - devices of a product (admin key):
 * POST /v1/products/ID/devices/ (returns the derived master and owner keys;
 * {"count": N}: a batch of N in one transaction),
 * GET /v1/devices/ID/ and
 * GET /v1/devices/ID/commands/ (admin, or the device's own keys),
 * POST /v1/devices/ID/rotate_keys (admin: new master and owner keys),
 * GET /v1/devices/ID/master_device_key.bin (admin): the 4 KiB
 * flash sector stock firmware reads its key from (keys.h, docs/api.md). */
#include <ctype.h>
#include <event2/buffer.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwimg.h"
#include "api.h"
#include "arduino.h"
#include "rom.h"
#include "log.h"
#include "xmalloc.h"

/* "18:FE:34:97:F3:CD" or "18fe3497f3cd" -> "18:fe:34:97:f3:cd". 0 or -1. */
static int bssid_norm(const char *in, char out[18])
{
    char hex[13];
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ':' || *p == '-')
            continue;
        if (!isxdigit((unsigned char)*p) || n >= 12)
            return -1;
        hex[n++] = (char)tolower((unsigned char)*p);
    }
    if (n != 12)
        return -1;
    snprintf(out, 18, "%c%c:%c%c:%c%c:%c%c:%c%c:%c%c", hex[0], hex[1], hex[2], hex[3], hex[4],
             hex[5], hex[6], hex[7], hex[8], hex[9], hex[10], hex[11]);
    return 0;
}

json_t *fota_api_device_view(struct fota_server *srv, const struct fota_device *d,
                             const char *latest)
{
    json_t *j = fota_api_json_device(d);
    char cur[FOTA_VERSION_MAX];
    if (!latest) {
        fota_api_current_version(srv, d->product_id, cur, sizeof(cur));
        latest = cur;
    }
    json_object_set_new(j, "latest_rom_version", json_string(latest));
    json_object_set_new(j, "tags", fota_api_device_tags(srv, d->id));
    fota_arduino_device_json(srv, d, j); /* an arduino device's report, its "online" */
    /* The current or last firmware download since fotad started (memory). */
    struct fota_rom_progress dl;
    if (fota_rom_progress_get(srv, d->id, &dl) == 0)
        json_object_set_new(j, "download", fota_http_json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:I}", "file", dl.file,
            "version", dl.version, "bytes", (json_int_t)dl.bytes, "total", (json_int_t)dl.total,
            "offset", (json_int_t)dl.offset, "size", (json_int_t)dl.size,
            "state", fota_rom_progress_state_name(dl.state), "started", (json_int_t)dl.started,
            "updated", (json_int_t)dl.updated));
    else
        json_object_set_new(j, "download", json_null());
    return j;
}

/* POST /v1/products/ID/devices/ with {"count": N}: N devices with default
 * names and their keys, one store transaction (a manufacturer's batch). */
static void create_batch(struct fota_req *r, int64_t pid, json_t *count)
{
    struct fota_server *srv = r->srv;
    json_int_t n = json_is_integer(count) ? json_integer_value(count) : 0;
    if (n < 1 || n > FOTA_DEVICE_BATCH_MAX) {
        fota_reply_error(r, 422, "count must be an integer of 1..%d", FOTA_DEVICE_BATCH_MAX);
        return;
    }
    struct fota_device *ds = fota_xcalloc((size_t)n, sizeof *ds);
    uint8_t *rnd = fota_xcalloc((size_t)n, 4);
    RAND_bytes(rnd, (int)n * 4);
    for (json_int_t i = 0; i < n; i++) {
        const uint8_t *b = rnd + 4 * i;
        ds[i].product_id = pid;
        snprintf(ds[i].name, sizeof(ds[i].name), "device-name-%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3]);
    }
    int e = srv->store->ops->device_create_many(srv->store, ds, (size_t)n,
                                                fota_server_device_key_rows, srv);
    if (e) {
        fota_reply_status(r, e, "devices of product %lld", (long long)pid);
        goto out;
    }
    json_t *list = json_array();
    for (json_int_t i = 0; i < n; i++) {
        char master[FOTA_KEY_BUF], owner[FOTA_KEY_BUF];
        fota_server_device_key(srv, "master", &ds[i], master);
        fota_server_device_key(srv, "owner", &ds[i], owner);
        json_array_append_new(list, fota_http_json_pack(
            "{s:I, s:s, s:s, s:s}", "id", (json_int_t)ds[i].id, "name", ds[i].name,
            "master_device_key", master, "owner_key", owner));
    }
    FOTA_INFO("devices created product=%lld count=%lld first=%lld last=%lld", (long long)pid,
              (long long)n, (long long)ds[0].id, (long long)ds[n - 1].id);
    fota_reply_json(r, 200, fota_http_json_pack("{s:o}", "devices", list));
out:
    free(ds);
    free(rnd);
}

static void handle_device_create(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_product p;
    struct fota_device d;
    char master[FOTA_KEY_BUF], owner[FOTA_KEY_BUF];
    json_t *body = NULL, *v;
    int64_t pid;
    int e;

    if (fota_api_admin_product(r, &p))
        return;
    pid = p.id;
    body = fota_req_json_body(r);
    if (!body)
        return;
    if ((v = json_object_get(body, "count")) != NULL) {
        if (json_object_get(body, "name") || json_object_get(body, "bssid"))
            fota_reply_error(r, 422, "count takes no name or bssid: the devices get default names");
        else
            create_batch(r, pid, v);
        goto out;
    }
    memset(&d, 0, sizeof(d));
    d.product_id = pid;
    v = json_object_get(body, "name");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) >= sizeof(d.name) ||
            memchr(json_string_value(v), '\0', json_string_length(v))) {
            fota_reply_error(r, 422, "name must be a string of 1..%zu characters",
                             sizeof(d.name) - 1);
            goto out;
        }
        memcpy(d.name, json_string_value(v), json_string_length(v) + 1);
    } else {
        uint8_t rnd[4];
        RAND_bytes(rnd, sizeof(rnd));
        snprintf(d.name, sizeof(d.name), "device-name-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3]);
    }
    v = json_object_get(body, "bssid");
    if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0)) {
        if (!json_is_string(v) || bssid_norm(json_string_value(v), d.bssid) != 0) {
            fota_reply_error(r, 422, "bssid must be a MAC address like 18:fe:34:97:f3:cd");
            goto out;
        }
    }
    e = srv->store->ops->device_create(srv->store, &d);
    if (e == FOTA_EEXIST) {
        fota_reply_error(r, 409, "device exists");
        goto out;
    }
    if (e) {
        fota_reply_status(r, e, "device %s", d.name);
        goto out;
    }
    e = fota_server_device_keys_create(srv, &d);
    if (e) {
        fota_reply_error(r, 500, "cannot store the device keys: %s", fota_errname(e));
        goto out;
    }
    fota_server_device_key(srv, "master", &d, master);
    fota_server_device_key(srv, "owner", &d, owner);
    char nq[2 * FOTA_NAME_MAX + 4];
    FOTA_INFO("device created id=%lld product=%lld name=%s", (long long)d.id, (long long)pid,
              fota_log_quote(d.name, nq, sizeof(nq)));
    json_t *j = json_object();
    json_object_set_new(j, "device", fota_api_device_view(srv, &d, NULL));
    json_object_set_new(j, "master_device_key", json_string(master));
    json_object_set_new(j, "owner_key", json_string(owner));
    fota_reply_json(r, 200, j);
out:
    json_decref(body);
}

/* Loads the device of the path; admin or the device's own key. */
static int device_for_req(struct fota_req *r, struct fota_key *key, struct fota_device *d,
                          int admin_only)
{
    if (fota_req_auth(r, key))
        return -1;
    int64_t id = fota_req_cap_id(r, 0);
    if (id < 0)
        return -1;
    if (key->kind != FOTA_KEY_ADMIN) {
        if (admin_only || (key->kind != FOTA_KEY_OWNER && key->kind != FOTA_KEY_MASTER)) {
            fota_reply_error(r, 403, "this needs the admin key");
            return -1;
        }
        if (key->device_id != id) {
            fota_reply_error(r, 403, "this key belongs to another device");
            return -1;
        }
    }
    return fota_api_device_load(r, id, d) ? -1 : 0;
}

static void handle_device_get(struct fota_req *r)
{
    struct fota_key key;
    struct fota_device d;
    if (device_for_req(r, &key, &d, 0))
        return;
    json_t *j = json_object();
    json_t *dv = fota_api_device_view(r->srv, &d, NULL);
    /* Every byte of firmware served to it (the store's ledger; a download's
     * bytes join it when the download completes). */
    int64_t served = 0;
    fota_hub_publish(r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    if (r->srv->store->ops->download_bytes(r->srv->store, d.id, &served) == 0)
        json_object_set_new(dv, "download_bytes", json_integer((json_int_t)served));
    json_object_set_new(j, "device", dv);
    fota_reply_json(r, 200, j);
}

/* Replaces the device's master and owner keys: the old ones stop working at
 * once. Not one transaction: a crash in between leaves the device without
 * keys, and rotating again repairs it. */
static void handle_device_rotate_keys(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_key key;
    struct fota_device d;
    char master[FOTA_KEY_BUF], owner[FOTA_KEY_BUF];
    int e;

    if (device_for_req(r, &key, &d, 1))
        return;
    e = srv->store->ops->key_delete_for_device(srv->store, d.id, 0);
    if (e && e != FOTA_ENOENT) {
        fota_reply_status(r, e, "keys of device %lld", (long long)d.id);
        return;
    }
    d.key_generation++;
    e = srv->store->ops->device_update(srv->store, &d, FOTA_DEV_F_KEYGEN);
    if (e == 0)
        e = fota_server_device_keys_create(srv, &d);
    if (e) {
        fota_reply_status(r, e, "device %lld", (long long)d.id);
        return;
    }
    fota_server_device_key(srv, "master", &d, master);
    fota_server_device_key(srv, "owner", &d, owner);
    FOTA_INFO("device keys rotated dev=%lld generation=%d", (long long)d.id, d.key_generation);
    json_t *j = json_object();
    json_object_set_new(j, "device", fota_api_device_view(srv, &d, NULL));
    json_object_set_new(j, "master_device_key", json_string(master));
    json_object_set_new(j, "owner_key", json_string(owner));
    fota_reply_json(r, 200, j);
}

/* The device's commands, newest first (at most limit=, default 50, max 500). */
static void handle_device_commands(struct fota_req *r)
{
    struct fota_key key;
    struct fota_device d;
    struct fota_command *list = NULL;
    size_t n = 0;
    long limit = 50;

    if (device_for_req(r, &key, &d, 0))
        return;
    const char *q = fota_req_query(r, "limit");
    if (q) {
        char *end;
        limit = strtol(q, &end, 10);
        if (*end || limit < 1 || limit > 500) {
            fota_reply_error(r, 400, "limit must be 1..500");
            return;
        }
    }
    fota_hub_publish(r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);   /* a download's `delivered` first */
    int e = r->srv->store->ops->command_list_device(r->srv->store, d.id, 0, &list, &n);
    if (e) {
        fota_reply_status(r, e, "commands of device %lld", (long long)d.id);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = n; i-- > 0 && json_array_size(arr) < (size_t)limit;)
        json_array_append_new(arr, fota_api_json_command(&list[i]));
    fota_store_command_list_free(list, n);
    json_t *j = json_object();
    json_object_set_new(j, "commands", arr);
    fota_reply_json(r, 200, j);
}

static void handle_device_keybin(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_key key, row;
    struct fota_device d;
    struct fota_product p;
    char master[FOTA_KEY_BUF], token[FOTA_KEY_BUF], hash[FOTA_HASH_HEX], addr[64] = "";
    uint8_t sector[FOTA_KEYBIN_SIZE];

    if (device_for_req(r, &key, &d, 1))
        return;
    fota_server_device_key(srv, "master", &d, master);
    fota_key_hash(master, FOTA_KEY_LEN, hash);
    if (srv->store->ops->key_lookup(srv->store, hash, &row) != 0 || row.device_id != d.id ||
        row.kind != FOTA_KEY_MASTER) {
        fota_reply_error(r, 409, "the master key of device %lld cannot be derived any more "
                                 "(DATA/secret.key changed or the key was revoked)",
                         (long long)d.id);
        return;
    }
    fota_server_device_key(srv, "token", &d, token);
    fota_key_bin_build(master, token, 0, sector);
    fota_reply_header(r, "Content-Disposition", "attachment; filename=master_device_key.bin");
    if (srv->store->ops->product_head(srv->store, d.product_id, &p) == 0) {
        const struct fota_flash_map *m = fota_flash_map_get(p.flash_map);
        if (m && m->priv_param_addr) {
            snprintf(addr, sizeof(addr), "0x%X", (unsigned)(m->priv_param_addr + 0x2000));
            fota_reply_header(r, "X-Fota-Flash-Address", addr);
        }
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, sector, sizeof(sector));
    FOTA_INFO("master key sector downloaded device=%lld flash_addr=%s", (long long)d.id,
              addr[0] ? addr : "-");
    fota_reply_raw(r, 200, "application/octet-stream", b);
    evbuffer_free(b);
}

int fota_api_devices_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_POST, "/v1/products/*/devices/", handle_device_create, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/devices/*/", handle_device_get, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/devices/*/master_device_key.bin", handle_device_keybin,
          FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/devices/*/commands/", handle_device_commands, FOTA_ROUTE_STORE },
        { FOTA_M_POST, "/v1/devices/*/rotate_keys", handle_device_rotate_keys, FOTA_ROUTE_STORE },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
