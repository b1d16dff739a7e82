/* api.h - the api module (fota_api_module, server.h), the REST catalog:
 * products, releases, devices, keys, messages and deletions under /v1/.
 * What its files share: the module's state, the route table each file
 * registers, the JSON views of store rows and the lookups every handler
 * starts with. Other modules may use the JSON views and the lookups (the
 * device module's RPC replies show commands); the api module reaches other
 * modules only through their public headers (rom.h, arduino.h) and the hub. */
#ifndef FOTA_API_H
#define FOTA_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct fota_api_uploads;                  /* api_roms.c */

/* The module's state; every route's ud. */
struct fota_api {
    struct fota_server *srv;
    struct fota_api_uploads *uploads;     /* release uploads in progress */
};

/* One row of a file's route table. */
struct fota_api_route {
    int methods;                          /* FOTA_M_* */
    const char *pattern;
    fota_http_handler fn;
    int flags;                            /* FOTA_ROUTE_* */
};

/* Registers n routes with api as their ud. 0 or the first error. */
int fota_api_routes_add(struct fota_api *api, const struct fota_api_route *routes, size_t n);

/* Each file's routes (api.c calls them in its start()). */
int fota_api_products_routes(struct fota_api *api);
int fota_api_roms_routes(struct fota_api *api);
int fota_api_devices_routes(struct fota_api *api);
int fota_api_device_routes(struct fota_api *api);
int fota_api_messages_routes(struct fota_api *api);
int fota_api_delete_routes(struct fota_api *api);
int fota_api_fleet_routes(struct fota_api *api);
int fota_api_overview_routes(struct fota_api *api);

/* api_roms.c: the upload queue. Created by fota_api_roms_routes; shutdown
 * finishes the upload being written and refuses the queued ones (module
 * stop, while the HTTP connections are still open). */
void fota_api_roms_shutdown(struct fota_api *api);
/* -1 while a release upload is queued or writing its blobs (it may reuse an
 * existing blob that no release names yet, so a delete must not remove
 * unreferenced blobs then: the start-up sweep does later), else the number
 * of uploads queued since start. A delete that reads the blob references
 * between two equal marks saw every upload's release. Main loop only. */
int64_t fota_api_uploads_mark(const struct fota_api *api);

/* JSON views of store rows (api_json.c; new references). A release's view
 * is the rom module's (fota_rom_json, rom.h). */
json_t *fota_api_json_product(const struct fota_product *p);
json_t *fota_api_json_device(const struct fota_device *d);
json_t *fota_api_json_message(const struct fota_message *m);
json_t *fota_api_json_command(const struct fota_command *c);

/* A device's whole view (api_devices.c): its row, latest_rom_version (the
 * product's current version: latest, or looked up when NULL), its tags, an
 * arduino device's report and presence, its download in flight. */
json_t *fota_api_device_view(struct fota_server *srv, const struct fota_device *d,
                             const char *latest);
/* A device's tags as a JSON array of strings ([] when it has none or the
 * store cannot say; api_fleet.c). */
json_t *fota_api_device_tags(struct fota_server *srv, int64_t device_id);

/* Lookups that reply (404 or 500, fota_reply_status) and return non-zero
 * on failure. A product is read without its device counts (product_head:
 * counting is O(devices), a route that checks the product does not pay it). */
int fota_api_product_load(struct fota_req *r, int64_t id, struct fota_product *out);
int fota_api_device_load(struct fota_req *r, int64_t id, struct fota_device *out);
/* The admin key, then the product named by the route's first capture:
 * 0, or non-zero after replying (401, 403, 404, 500). _counted: with
 * devices_total and devices_activated (product_get), for the replies and
 * checks that use them. */
int fota_api_admin_product(struct fota_req *r, struct fota_product *out);
int fota_api_admin_product_counted(struct fota_req *r, struct fota_product *out);
/* The product's current version into out ("" if none). */
void fota_api_current_version(struct fota_server *srv, int64_t product_id, char *out, size_t cap);
/* 1 if [p, p+len) is valid UTF-8 without NUL bytes. */
int fota_api_utf8_ok(const char *p, size_t len);
/* 1 if s (len bytes) is a safe file name: 1..63 of [A-Za-z0-9._-], not
 * starting with '.'. */
int fota_api_filename_ok(const char *s, size_t len);
/* Derived product key (read-only ROM listing). */
void fota_api_product_key(const struct fota_server *srv, int64_t product_id,
                          char out[FOTA_KEY_BUF]);

#endif
