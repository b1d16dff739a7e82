/* devchan_handle_message.c - D7, POST /v1/messages/: a device's report,
 * usually the end of an upgrade (device_upgrade_success / _failed with its
 * versions). The report goes to the hub first (DEVICE_REPORT: a rollout
 * that pushed the upgrade takes it), else it finishes the newest open
 * sys_upgrade command of the device; a success records the device's new
 * version, a report after a download its slot (running_slot), and every
 * report is stored and published as a message. */
#include "devchan_int.h"

#include <stdlib.h>

#include <string.h>

#include <jansson.h>

#include "fota_str.h"
#include "hub.h"
#include "log.h"
#include "relcache.h"
#include "rom.h"

/* The device's newest sys_upgrade still waiting for its report (out owns
 * its params and result). 0 or FOTA_ENOENT. */
static int open_upgrade(struct fota_devchan *ch, int64_t device_id, struct fota_command *out)
{
    struct fota_store *st = ch->srv->store;
    struct fota_command *list = NULL;
    size_t n = 0;
    int rc = st->ops->command_list_device(st, device_id, 0, &list, &n);
    if (rc < 0)
        return rc;
    rc = FOTA_ENOENT;
    for (size_t i = n; i-- > 0;) {
        struct fota_command *c = &list[i];
        if ((c->state == FOTA_CMD_DELIVERED || c->state == FOTA_CMD_ACKED ||
             c->state == FOTA_CMD_TIMEOUT) && strcmp(c->action, "sys_upgrade") == 0) {
            *out = *c; /* the row's params and result move to out */
            c->params = c->result = NULL;
            rc = 0;
            break;
        }
    }
    fota_store_command_list_free(list, n);
    return rc;
}

/* Ends cmd with the report; real becomes the command's full version when
 * the report's (at most 15 bytes) is its prefix. */
static void finish_upgrade(struct fota_devchan *ch, struct fota_command *cmd,
                           const struct fota_devproto_frame *f, int ok, const char *clean,
                           char *real, size_t cap)
{
    const char *v = json_string_value(json_object_get(cmd->params, "version"));
    if (v && clean[0] && strncmp(v, clean, strlen(clean)) == 0)
        fota_str_copy(real, cap, v);
    cmd->state = ok ? FOTA_CMD_DONE : FOTA_CMD_FAILED;
    json_decref(cmd->result);
    cmd->result = json_pack("{s:s, s:s, s:s}", "action", f->action, "pre_rom_version",
                            f->pre_version, "rom_version", real);
    fota_devchan_push_store(ch, cmd);
}

static void publish(struct fota_dconn *c, const struct fota_devproto_frame *f, const char *real,
                    struct fota_message *m)
{
    m->product_id = c->product_id;
    m->device_id = c->device_id;
    fota_str_copy(m->action, sizeof m->action, f->action[0] ? f->action : "message");
    json_t *body = json_pack("{s:s, s:s}", "pre_rom_version", f->pre_version, "rom_version", real);
    char *t = json_dumps(body, JSON_SORT_KEYS);
    fota_str_copy(m->body, sizeof m->body, t);
    free(t);
    json_decref(body);
    int rc = fota_server_publish_message(c->ch->srv, m);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("message not stored conn=%llu dev=%lld", (unsigned long long)c->id,
                  (long long)c->device_id);
}

/* The slot a report leaves the device on, from the image it downloaded for
 * it (rom module's record of its last download, which must be of the
 * reported version): a NONOS device writes the slot it does not run, so a
 * success puts the new version in that slot (booted at the next reboot) and
 * a failure leaves it on the other one. 0 when not known (no download since
 * fotad started, another version, a file without a slot). */
static int report_slot(struct fota_server *srv, int64_t product_id, int64_t device_id, int ok,
                       const char *version)
{
    struct fota_rom_progress dl;
    struct fota_rom rom;
    if (!version[0] || fota_rom_progress_get(srv, device_id, &dl) != 0 ||
        strncmp(dl.version, version, strlen(version)) != 0 ||
        fota_relcache_get(srv->relcache, srv->store, product_id, dl.version, &rom) != 0)
        return 0;
    for (size_t i = 0; i < rom.nfiles; i++) {
        int slot = rom.files[i].slot;
        if (strcmp(rom.files[i].name, dl.file) == 0 && (slot == 1 || slot == 2))
            return ok ? slot : 3 - slot;
    }
    return 0;
}

void fota_devchan_handle_message(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_devchan *ch = c->ch;
    struct fota_server *srv = ch->srv;
    char clean[FOTA_DEVPROTO_VER_MAX], real[FOTA_VERSION_MAX];
    fota_devproto_version_clean(clean, sizeof clean, f->rom_version, strlen(f->rom_version));
    fota_str_copy(real, sizeof real, clean);
    int ok = strcmp(f->action, "device_upgrade_success") == 0;
    int is_report = ok || strcmp(f->action, "device_upgrade_failed") == 0;
    struct fota_command cmd = { 0 };
    struct fota_hub_report ev = { c->device_id, ok, clean, "", real, sizeof real };
    int in_rollout = is_report && fota_hub_publish(srv, FOTA_HUB_DEVICE_REPORT, &ev) != 0;
    int have_cmd = is_report && !in_rollout && open_upgrade(ch, c->device_id, &cmd) == 0;
    if (have_cmd)
        finish_upgrade(ch, &cmd, f, ok, clean, real, sizeof real);
    int slot = is_report ? report_slot(srv, c->product_id, c->device_id, ok, real) : 0;
    unsigned fields = (ok && real[0] ? FOTA_DEV_F_ROM_VERSION : 0) | (slot ? FOTA_DEV_F_SLOT : 0);
    if (fields) {
        /* device_update writes only the fields named: no read of the row first. */
        struct fota_device d = { .id = c->device_id, .running_slot = slot };
        if (fields & FOTA_DEV_F_ROM_VERSION)
            fota_str_copy(d.rom_version, sizeof d.rom_version, real);
        int rc = srv->store->ops->device_update(srv->store, &d, fields);
        if (rc < 0 && rc != FOTA_ENOENT)   /* a device deleted meanwhile has nothing to record */
            FOTA_ERROR("rom_version not stored conn=%llu dev=%lld error=%s",
                       (unsigned long long)c->id, (long long)d.id, fota_errname(rc));
    }
    struct fota_message m = { 0 };
    publish(c, f, real, &m);
    char q1[80], q2[80];
    FOTA_INFO("device report conn=%llu dev=%lld action=%s pre=%s new=%s cmd=%lld recovered=%d",
              (unsigned long long)c->id, (long long)c->device_id, m.action,
              fota_log_quote(f->pre_version, q1, sizeof q1), fota_log_quote(real, q2, sizeof q2),
              have_cmd ? (long long)cmd.id : -1LL, f->recovered);
    fota_store_command_cleanup(&cmd);
    char out[96];
    fota_devchan_conn_send(c, out, fota_devproto_reply_message(out, sizeof out));
}
