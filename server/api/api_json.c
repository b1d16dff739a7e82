/* api_json.c - JSON views of store rows, shared by the API files. Field
 * names follow Espressif's where it had one (device "activate_status");
 * times are Unix seconds (its Time-Zone: Epoch). */
#include <stdio.h>
#include <string.h>

#include "api.h"

static const char *const cmd_states[] = { "?", "queued", "delivered", "acked", "done",
                                          "failed", "timeout", "cancelled" };

json_t *fota_api_json_product(const struct fota_product *p)
{
    return fota_http_json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:s}",
                     "id", (json_int_t)p->id, "name", p->name, "serial", p->serial,
                     "status", p->status, "description", p->description,
                     "flash_map", p->flash_map,
                     "slot_check", p->slot_check == FOTA_SLOT_CHECK_NAME ? "name" : "byte3",
                     "created", (json_int_t)p->created,
                     "devices_total", (json_int_t)p->devices_total,
                     "devices_activated", (json_int_t)p->devices_activated,
                     "current_version", p->current_version);
}

json_t *fota_api_json_device(const struct fota_device *d)
{
    return fota_http_json_pack("{s:I, s:I, s:s, s:s, s:b, s:i, s:I, s:s, s:i, s:I, s:b, s:I, s:i}",
                     "id", (json_int_t)d->id, "product_id", (json_int_t)d->product_id,
                     "name", d->name, "bssid", d->bssid, "activated", d->activated != 0,
                     "activate_status", d->activated ? 1 : 0,
                     "activated_at", (json_int_t)d->activated_at, "rom_version", d->rom_version,
                     "running_slot", d->running_slot, "last_active", (json_int_t)d->last_active,
                     "online", d->online != 0, "created", (json_int_t)d->created,
                     "key_generation", d->key_generation);
}

json_t *fota_api_json_message(const struct fota_message *m)
{
    json_error_t je;
    json_t *body = m->body[0] ? json_loads(m->body, 0, &je) : NULL;
    if (!body)
        body = m->body[0] ? json_string(m->body) : json_object();
    return fota_http_json_pack("{s:I, s:I, s:I, s:s, s:o, s:I}", "id", (json_int_t)m->id,
                     "product_id", (json_int_t)m->product_id, "device_id",
                     (json_int_t)m->device_id, "action", m->action, "body", body, "created",
                     (json_int_t)m->created);
}

json_t *fota_api_json_command(const struct fota_command *c)
{
    /* params and result were decoded when the row left the store. */
    json_t *params = c->params ? json_incref(c->params) : json_object();
    json_t *result = c->result ? json_incref(c->result) : json_null();
    const char *state = c->state >= 1 && c->state <= 7 ? cmd_states[c->state] : "unknown";
    return fota_http_json_pack("{s:I, s:I, s:I, s:s, s:o, s:s, s:o, s:I, s:I}", "id",
                               (json_int_t)c->id, "device_id", (json_int_t)c->device_id, "nonce",
                               (json_int_t)c->nonce, "action", c->action, "params", params,
                               "state", state, "result", result, "created",
                               (json_int_t)c->created, "updated", (json_int_t)c->updated);
}

