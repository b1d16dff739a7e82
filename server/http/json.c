/* json.c - JSON views of store rows, shared by the API files. Field names
 * follow Espressif's where it had one (rom "recommended", file "path",
 * device "activate_status"); times are Unix seconds (its Time-Zone: Epoch). */
#include <stdio.h>
#include <string.h>

#include "http.h"

static const char *const cmd_states[] = { "?", "queued", "delivered", "acked", "done",
                                          "failed", "timeout", "cancelled" };

json_t *fota_json_product(const struct fota_product *p)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:s}",
                     "id", (json_int_t)p->id, "name", p->name, "serial", p->serial,
                     "status", p->status, "description", p->description,
                     "flash_map", p->flash_map,
                     "slot_check", p->slot_check == FOTA_SLOT_CHECK_NAME ? "name" : "byte3",
                     "created", (json_int_t)p->created,
                     "devices_total", (json_int_t)p->devices_total,
                     "devices_activated", (json_int_t)p->devices_activated,
                     "current_version", p->current_version);
}

json_t *fota_json_rom(const struct fota_rom *rom)
{
    json_t *files = json_array();
    for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++) {
        const struct fota_rom_file *f = &rom->files[i];
        char path[256];
        snprintf(path, sizeof(path), "/v1/device/rom/?action=download_rom&version=%s&filename=%s",
                 rom->version, f->name);
        json_array_append_new(files, json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:i, s:I, s:I, s:I, s:i}",
            "id", (json_int_t)f->id, "rom_id", (json_int_t)rom->id, "name", f->name,
            "path", path, "size", (json_int_t)f->size, "sha256", f->sha256, "slot", f->slot,
            "download_count", (json_int_t)f->download_count, "created", (json_int_t)rom->created,
            "updated", (json_int_t)rom->created, "visibly", 1));
    }
    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:b, s:s, s:I, s:I, s:i, s:o}",
                     "id", (json_int_t)rom->id, "product_id", (json_int_t)rom->product_id,
                     "version", rom->version, "codename", rom->codename,
                     "changelog", rom->changelog, "recommended", rom->current != 0,
                     "current", rom->current != 0, "life_cycle", "release",
                     "created", (json_int_t)rom->created, "updated", (json_int_t)rom->created,
                     "visibly", 1, "files", files);
}

json_t *fota_json_device(const struct fota_device *d)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:b, s:i, s:I, s:s, s:i, s:I, s:b, s:I, s:i}",
                     "id", (json_int_t)d->id, "product_id", (json_int_t)d->product_id,
                     "name", d->name, "bssid", d->bssid, "activated", d->activated != 0,
                     "activate_status", d->activated ? 1 : 0,
                     "activated_at", (json_int_t)d->activated_at, "rom_version", d->rom_version,
                     "running_slot", d->running_slot, "last_active", (json_int_t)d->last_active,
                     "online", d->online != 0, "created", (json_int_t)d->created,
                     "key_generation", d->key_generation);
}

json_t *fota_json_message(const struct fota_message *m)
{
    json_error_t je;
    json_t *body = m->body[0] ? json_loads(m->body, 0, &je) : NULL;
    if (!body)
        body = m->body[0] ? json_string(m->body) : json_object();
    return json_pack("{s:I, s:I, s:I, s:s, s:o, s:I}", "id", (json_int_t)m->id,
                     "product_id", (json_int_t)m->product_id, "device_id",
                     (json_int_t)m->device_id, "action", m->action, "body", body, "created",
                     (json_int_t)m->created);
}

json_t *fota_json_command(const struct fota_command *c)
{
    json_error_t je;
    json_t *params = c->params[0] ? json_loads(c->params, 0, &je) : NULL;
    json_t *result = c->result[0] ? json_loads(c->result, 0, &je) : NULL;
    const char *state = c->state >= 1 && c->state <= 7 ? cmd_states[c->state] : "unknown";
    if (!params)
        params = json_object();
    if (!result)
        result = json_null();
    return json_pack("{s:I, s:I, s:I, s:s, s:o, s:s, s:o, s:I, s:I}", "id", (json_int_t)c->id,
                     "device_id", (json_int_t)c->device_id, "nonce", (json_int_t)c->nonce,
                     "action", c->action, "params", params, "state", state, "result", result,
                     "created", (json_int_t)c->created, "updated", (json_int_t)c->updated);
}

int fota_api_product_load(struct fota_req *r, int64_t id, struct fota_product *out)
{
    struct fota_store *st = r->srv->store;
    int e = st->ops->product_get(st, id, out);
    if (e == FOTA_ENOENT) {
        fota_reply_error(r, 404, "no product %lld", (long long)id);
        return e;
    }
    if (e) {
        fota_reply_error(r, 500, "store error %s", fota_errname(e));
        return e;
    }
    return 0;
}

int fota_api_device_load(struct fota_req *r, int64_t id, struct fota_device *out)
{
    struct fota_store *st = r->srv->store;
    int e = st->ops->device_get(st, id, out);
    if (e == FOTA_ENOENT) {
        fota_reply_error(r, 404, "no device %lld", (long long)id);
        return e;
    }
    if (e) {
        fota_reply_error(r, 500, "store error %s", fota_errname(e));
        return e;
    }
    return 0;
}

void fota_api_current_version(struct fota_server *srv, int64_t product_id, char *out, size_t cap)
{
    struct fota_rom rom;
    if (cap)
        out[0] = '\0';
    if (srv->store->ops->rom_current(srv->store, product_id, &rom) == 0)
        snprintf(out, cap, "%s", rom.version);
}

int fota_api_utf8_ok(const char *p, size_t len)
{
    if (memchr(p, '\0', len))
        return 0;
    json_t *j = json_stringn(p, len);
    if (!j)
        return 0;
    json_decref(j);
    return 1;
}

int fota_api_filename_ok(const char *s, size_t len)
{
    if (len == 0 || len >= FOTA_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void fota_api_product_key(const struct fota_server *srv, int64_t product_id, char out[FOTA_KEY_BUF])
{
    fota_key_derive(srv->secret, "product", product_id, 0, out);
}
