/* api_select.h - which devices a request means, in one parser for every
 * place that selects devices: the query of the device lists
 * (GET /v1/products/ID/devices/?q=&tag=&version=&online=...) and the
 * filter object of a bulk request (POST /v1/products/ID/tags/ "filter"), so the same
 * words select the same devices everywhere (docs/api.md, "Selecting
 * devices"). And the opaque cursor of a device list. Pure: no I/O, no
 * store; the store's struct fota_device_sel is what comes out. */
#ifndef FOTA_API_SELECT_H
#define FOTA_API_SELECT_H

#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A parsed selection. sel's strings point into the parsed request (a
 * query) or into hold (a filter): it lives as long as both. */
struct fota_api_select {
    struct fota_device_sel sel;
    int64_t *ids;                      /* a filter's device_ids, sorted; NULL: any device */
    size_t nids;
    json_t *hold;                      /* owned: the filter's values sel points into */
};

/* The selection of a device list's query: q, name (1..63 characters),
 * tag (repeated or comma-separated: every one), version (repeated: any of
 * them; empty: unknown), online (true|false|1|0), checkin_before and
 * checkin_after (Unix seconds, or a duration back from now: 30s, 15m,
 * 12h, 7d). Other parameters are the caller's (skip() answers 1 for
 * those it takes; NULL: none). 0, or FOTA_EINVAL with a sentence in
 * reason (an unknown parameter, a bad value, more than FOTA_SELECT_MAX
 * tags or versions). out's product_id is 0. */
int fota_api_select_query(const struct evkeyvalq *query, int64_t now,
                          int (*skip)(const char *name), struct fota_api_select *out,
                          char *reason, size_t cap);

/* The selection of a filter object (NULL: every device): the
 * same members as a query, as JSON: "q", "name", "tag" (a tag or a list:
 * every one), "version" or "rom_version" (a version or a list: any of
 * them), "online" (true|false), "checkin_before", "checkin_after" (Unix
 * seconds, or a duration string as above), and "device_ids" (a list of
 * 1..100000 ids). 0, or FOTA_EINVAL with a sentence naming the key in
 * reason. */
int fota_api_select_json(const json_t *filter, int64_t now, struct fota_api_select *out,
                         char *reason, size_t cap);

/* 1 when device_id is among the selection's device_ids (or there are none). */
int fota_api_select_has_id(const struct fota_api_select *s, int64_t device_id);

/* Frees what a parse left in s (NULL-safe; s may be parsed again). */
void fota_api_select_cleanup(struct fota_api_select *s);

/* A device list's order: "id", "name", "version", "last_active" (or
 * "checkin"), "created", each descending with a leading '-'. NULL or ""
 * is "id". 0 with *sort (enum fota_device_sort) and *desc, or FOTA_EINVAL. */
int fota_api_sort_parse(const char *text, int *sort, int *desc);
/* The name of an order ("-name"); cap >= 16. */
void fota_api_sort_name(int sort, int desc, char *out, size_t cap);

/* The cursor of a device list: the order it was made for and the position
 * of the page's last row, as URL-safe text (base64url). encode: the
 * text's length, or FOTA_ETOOBIG when cap is short (FOTA_API_CURSOR_MAX
 * always holds one). decode: 0, or FOTA_EINVAL for text that is not a
 * cursor or belongs to another order (a cursor is tied to its sort). */
#define FOTA_API_CURSOR_MAX 192
int fota_api_cursor_encode(int sort, int desc, const struct fota_device_key *k, char *out,
                           size_t cap);
int fota_api_cursor_decode(const char *text, int sort, int desc, struct fota_device_key *k);

#endif
