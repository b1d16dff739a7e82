/* api_products.c - admin endpoints for products:
 * POST /v1/products/, GET /v1/products/, GET /v1/products/ID/.
 * A product's flash_map and slot_check decide what its releases must be. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "api.h"
#include "arduino.h"
#include "clock.h"
#include "fwimg.h"
#include "log.h"

/* Copies a JSON string member into out; 0 ok, replies 400/422 otherwise.
 * required: missing is an error; else out keeps its value. */
static int take_str(struct fota_req *r, json_t *body, const char *name, char *out, size_t cap,
                    int required)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        if (required) {
            fota_reply_error(r, 400, "%s is required", name);
            return -1;
        }
        return 0;
    }
    if (json_is_integer(v)) {
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
        return 0;
    }
    if (!json_is_string(v)) {
        fota_reply_error(r, 400, "%s must be a string", name);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n >= cap) {
        fota_reply_error(r, 422, "%s is longer than %zu characters", name, cap - 1);
        return -1;
    }
    if (memchr(json_string_value(v), '\0', n)) {
        fota_reply_error(r, 400, "%s contains a NUL character", name);
        return -1;
    }
    memcpy(out, json_string_value(v), n + 1);
    return 0;
}

/* A product's JSON view, with its platform (and an arduino product's
 * settings). */
static json_t *product_view(struct fota_server *srv, const struct fota_product *p)
{
    json_t *pj = fota_api_json_product(p);

    fota_arduino_product_json(srv, p->id, pj);
    return pj;
}

/* {"product": {...}, "product_key": "..."}: what a create and a get answer. */
static void reply_product(struct fota_req *r, const struct fota_product *p, const char *pkey)
{
    json_t *j = json_object();

    json_object_set_new(j, "product", product_view(r->srv, p));
    json_object_set_new(j, "product_key", json_string(pkey));
    fota_reply_json(r, 200, j);
}

static void handle_product_create(struct fota_req *r)
{
    struct fota_key key;
    struct fota_product p;
    struct fota_key pk;
    char pkey[FOTA_KEY_BUF];
    struct fota_arduino_product ap;
    json_t *body, *fm, *sc;
    char why[256];
    int e, is_arduino;

    if (fota_req_admin(r, &key))
        return;
    body = fota_req_json_body(r);
    if (!body)
        return;
    memset(&p, 0, sizeof(p));
    p.flash_map = 2;
    snprintf(p.status, sizeof(p.status), "development");
    if (take_str(r, body, "name", p.name, sizeof(p.name), 1) ||
        take_str(r, body, "serial", p.serial, sizeof(p.serial), 0) ||
        take_str(r, body, "description", p.description, sizeof(p.description), 0) ||
        take_str(r, body, "status", p.status, sizeof(p.status), 0))
        goto out;
    if (p.name[0] == '\0') {
        fota_reply_error(r, 400, "name must not be empty");
        goto out;
    }
    fm = json_object_get(body, "flash_map");
    if (fm && !json_is_null(fm)) {
        if (!json_is_integer(fm) || !fota_flash_map_get((int)json_integer_value(fm)) ||
            json_integer_value(fm) < 0 || json_integer_value(fm) > 15) {
            fota_reply_error(r, 422, "flash_map must be one of 0, 2, 3, 4, 5, 6, 8, 9 "
                                     "(Espressif size map codes)");
            goto out;
        }
        p.flash_map = (int)json_integer_value(fm);
    }
    sc = json_object_get(body, "slot_check");
    if (sc && !json_is_null(sc)) {
        const char *v = json_is_string(sc) ? json_string_value(sc) : "";
        if (strcmp(v, "byte3") == 0) {
            p.slot_check = FOTA_SLOT_CHECK_BYTE3;
        } else if (strcmp(v, "name") == 0) {
            p.slot_check = FOTA_SLOT_CHECK_NAME;
        } else {
            fota_reply_error(r, 422, "slot_check must be \"byte3\" (byte 3 of each image is "
                                     "its slot, as NONOS >= 2.0 devices check) or \"name\" "
                                     "(RTOS 1.x images: the file name decides the slot)");
            goto out;
        }
    }
    /* platform "arduino" and its fleet settings (server/arduino/) */
    e = fota_arduino_product_parse(body, &ap, &is_arduino, why, sizeof(why));
    if (e) {
        fota_reply_error(r, e, "%s", why);
        goto out;
    }
    if (p.serial[0] == '\0') {
        uint8_t rnd[4];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            fota_reply_error(r, 500, "no randomness");
            goto out;
        }
        snprintf(p.serial, sizeof(p.serial), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    }
    e = r->srv->store->ops->product_create(r->srv->store, &p);
    if (e == FOTA_EEXIST) {
        fota_reply_error(r, 409, "a product named \"%s\" exists", p.name);
        goto out;
    }
    if (e) {
        fota_reply_status(r, e, "product %s", p.name);
        goto out;
    }
    /* The product key (read-only ROM listing) is derived, like device keys. */
    memset(&pk, 0, sizeof(pk));
    fota_api_product_key(r->srv, p.id, pkey);
    fota_key_hash(pkey, FOTA_KEY_LEN, pk.hash);
    pk.kind = FOTA_KEY_PRODUCT;
    pk.product_id = p.id;
    pk.created = fota_clock_wall_s();
    e = r->srv->store->ops->key_create(r->srv->store, &pk);
    if (e && e != FOTA_EEXIST) {
        fota_reply_status(r, e, "product key of %lld", (long long)p.id);
        goto out;
    }
    ap.product_id = p.id;
    e = is_arduino ? r->srv->store->ops->arduino_product_put(r->srv->store, &ap) : 0;
    if (e) {
        r->srv->store->ops->product_delete(r->srv->store, p.id);
        fota_reply_error(r, 500, "store error %s", fota_errname(e));
        goto out;
    }
    char nq[2 * FOTA_NAME_MAX + 4];
    FOTA_INFO("product created id=%lld name=%s flash_map=%d slot_check=%s", (long long)p.id,
              fota_log_quote(p.name, nq, sizeof(nq)), p.flash_map,
              p.slot_check == FOTA_SLOT_CHECK_NAME ? "name" : "byte3");
    reply_product(r, &p, pkey);
out:
    json_decref(body);
}

static void handle_product_list(struct fota_req *r)
{
    struct fota_key key;
    struct fota_product *list = NULL;
    size_t n = 0;

    if (fota_req_admin(r, &key))
        return;
    int e = r->srv->store->ops->product_list(r->srv->store, &list, &n);
    if (e) {
        fota_reply_status(r, e, "products");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, product_view(r->srv, &list[i]));
    free(list);
    json_t *j = json_object();
    json_object_set_new(j, "products", arr);
    fota_reply_json(r, 200, j);
}

static void handle_product_get(struct fota_req *r)
{
    struct fota_product p;
    char pkey[FOTA_KEY_BUF];

    if (fota_api_admin_product_counted(r, &p))
        return;
    fota_api_product_key(r->srv, p.id, pkey);
    reply_product(r, &p, pkey);
}

int fota_api_products_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_POST, "/v1/products/", handle_product_create, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/products/", handle_product_list, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/products/*/", handle_product_get, FOTA_ROUTE_STORE },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
