/* api_rpc.c - the device RPC endpoint and the ROM download dispatch, kept in
 * their own file so the device channel (issue 4) can take them over:
 * GET /v1/device/rpc/?deliver_to_device=true&action=sys_upgrade&version=V
 * and &action=sys_reboot (the seed's curl lines): an owner/master key
 * targets its own device, the admin key needs device_id=. The command is
 * recorded (state queued) and handed to srv->command_hook if a module set
 * one. GET/HEAD /v1/device/rom/?action=download_rom goes to srv->rom_download. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "http.h"
#include "log.h"

void fota_api_rom_download(struct fota_req *r);

void fota_api_rom_download(struct fota_req *r)
{
    if (r->srv->rom_download) {
        r->srv->rom_download(r->srv->rom_download_ud, r);
        return;
    }
    fota_reply_error(r, 501, "ROM download is served by the device channel module, "
                             "which is not built in");
}

static int action_ok(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n >= 32)
        return 0;
    for (const char *p = a; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

static void rpc(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_key key;
    struct fota_device d;
    struct fota_command c;
    int64_t did;
    json_t *params = NULL;

    if (fota_req_auth(r, &key))
        return;
    if (key.kind == FOTA_KEY_ADMIN) {
        const char *q = fota_req_query(r, "device_id");
        did = q ? strtoll(q, NULL, 10) : 0;
        if (!q) {
            fota_reply_error(r, 400, "the admin key needs device_id=");
            return;
        }
        if (did <= 0) {
            fota_reply_error(r, 404, "no device %s", q);
            return;
        }
    } else if (key.kind == FOTA_KEY_OWNER || key.kind == FOTA_KEY_MASTER) {
        did = key.device_id;
        const char *q = fota_req_query(r, "device_id");
        if (q && strtoll(q, NULL, 10) != did) {
            fota_reply_error(r, 403, "this key belongs to another device");
            return;
        }
    } else {
        fota_reply_error(r, 403, "a product key cannot send commands");
        return;
    }
    if (fota_api_device_load(r, did, &d))
        return;
    const char *action = fota_req_query(r, "action");
    if (!action || !action_ok(action)) {
        fota_reply_error(r, 400, "action= is required (sys_upgrade, sys_reboot, ...)");
        return;
    }
    const char *dtd = fota_req_query(r, "deliver_to_device");
    if (dtd && strcmp(dtd, "true") != 0) {
        fota_reply_error(r, 400, "only deliver_to_device=true is supported");
        return;
    }
    memset(&c, 0, sizeof(c));
    c.device_id = d.id;
    snprintf(c.action, sizeof(c.action), "%s", action);
    params = json_object();
    if (strcmp(action, "sys_upgrade") == 0) {
        const char *v = fota_req_query(r, "version");
        char ver[FOTA_VERSION_MAX];
        if (!v || !*v) {
            fota_reply_error(r, 400, "sys_upgrade needs version=");
            goto out;
        }
        /* Lenient like the device: cut at the first '"'. */
        size_t n = strcspn(v, "\"");
        if (n >= sizeof(ver)) {
            fota_reply_error(r, 400, "version too long");
            goto out;
        }
        memcpy(ver, v, n);
        ver[n] = '\0';
        struct fota_rom *rom = malloc(sizeof(*rom));
        int e = rom ? srv->store->ops->rom_get(srv->store, d.product_id, ver, rom) : FOTA_ENOMEM;
        free(rom);
        if (e == FOTA_ENOENT) {
            fota_reply_error(r, 404, "product %lld has no version %s", (long long)d.product_id,
                             ver);
            goto out;
        }
        if (e) {
            fota_reply_error(r, 500, "store error %s", fota_errname(e));
            goto out;
        }
        json_object_set_new(params, "version", json_string(ver));
    } else {
        /* Other actions carry their remaining query parameters as strings. */
        const struct evkeyval *kv;
        TAILQ_FOREACH(kv, &r->query, next) {
            if (strcmp(kv->key, "action") == 0 || strcmp(kv->key, "deliver_to_device") == 0 ||
                strcmp(kv->key, "device_id") == 0 || strcmp(kv->key, "method") == 0)
                continue;
            json_t *s = json_string(kv->value);
            if (s)
                json_object_set_new(params, kv->key, s);
        }
    }
    char *ptext = json_dumps(params, JSON_SORT_KEYS);
    if (!ptext || strlen(ptext) >= sizeof(c.params)) {
        free(ptext);
        fota_reply_error(r, 413, "parameters too long");
        goto out;
    }
    memcpy(c.params, ptext, strlen(ptext) + 1);
    free(ptext);
    uint32_t nonce = 0;
    while (nonce == 0) {
        if (RAND_bytes((unsigned char *)&nonce, sizeof(nonce)) != 1) {
            fota_reply_error(r, 500, "no randomness");
            goto out;
        }
        nonce &= 0x7fffffffu;
    }
    c.nonce = nonce;
    c.state = FOTA_CMD_QUEUED;
    int e = srv->store->ops->command_create(srv->store, &c);
    if (e) {
        fota_reply_error(r, 500, "store error %s", fota_errname(e));
        goto out;
    }
    if (srv->command_hook) {
        int st = srv->command_hook(srv->command_ud, &c);
        if (st > 0)
            c.state = st;
    }
    FOTA_INFO("command recorded dev=%lld action=%s nonce=%lld state=%d", (long long)d.id,
              c.action, (long long)c.nonce, c.state);
    json_t *j = json_object();
    json_object_set_new(j, "command", fota_json_command(&c));
    json_object_set_new(j, "nonce", json_integer(c.nonce));
    json_object_set_new(j, "deliver_to_device", json_true());
    fota_reply_json(r, 200, j);
out:
    json_decref(params);
}

void fota_api_rpc_routes(struct fota_server *srv)
{
    fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/device/rpc/", rpc, NULL);
}
