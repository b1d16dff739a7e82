/* devchan_handle_message.c - D7, POST /v1/messages/: a device's report,
 * usually the end of an upgrade (device_upgrade_success / _failed with its
 * versions). The report goes to the hub first (DEVICE_REPORT: a rollout
 * that pushed the upgrade takes it), else it finishes the newest open
 * sys_upgrade command of the device; a success records the device's new
 * version, a report after a download its slot (running_slot), and every
 * report is stored and published as a message: all of it one store job on
 * the device's lane, the connection's reading paused until its answer. */
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
static int open_upgrade(struct fota_store *st, int64_t device_id, struct fota_command *out)
{
    struct fota_command *list = NULL;
    size_t n = 0;
    int rc = st->ops->command_list_device(st, device_id, 0, &list, &n);
    if (rc < 0)
        return rc;
    rc = FOTA_ENOENT;
    for (size_t i = n; i-- > 0;) {
        struct fota_command *c = &list[i];
        if (fota_store_command_open(c->state) && strcmp(c->action, "sys_upgrade") == 0) {
            *out = *c; /* the row's params and result move to out */
            c->params = c->result = NULL;
            rc = 0;
            break;
        }
    }
    fota_store_command_list_free(list, n);
    return rc;
}

/* What a report does in the store: a job on the device's lane, with the
 * frame's fields copied. */
struct report_job {
    struct fota_devchan_job j;
    int64_t device_id, product_id;
    int ok, is_report, in_rollout, recovered;
    char action[FOTA_DEVPROTO_VER_MAX], pre[FOTA_DEVPROTO_VER_MAX];
    char clean[FOTA_DEVPROTO_VER_MAX], real[FOTA_VERSION_MAX];
    int64_t cmd_id;                    /* the command it finished, -1: none */
    struct fota_message m;
};

/* Ends cmd with the report; real becomes the command's full version when
 * the report's (at most 15 bytes) is its prefix. */
static void finish_upgrade(struct fota_server *srv, struct report_job *p, struct fota_command *cmd)
{
    const char *v = json_string_value(json_object_get(cmd->params, "version"));
    if (v && p->clean[0] && strncmp(v, p->clean, strlen(p->clean)) == 0)
        fota_str_copy(p->real, sizeof p->real, v);
    cmd->state = p->ok ? FOTA_CMD_DONE : FOTA_CMD_FAILED;
    json_decref(cmd->result);
    cmd->result = json_pack("{s:s, s:s, s:s}", "action", p->action, "pre_rom_version", p->pre,
                            "rom_version", p->real);
    fota_devchan_push_store_now(srv, cmd);
}

/* The slot a report leaves the device on, from the image it downloaded for
 * it (rom module's record of its last download, which must be of the
 * reported version): a NONOS device writes the slot it does not run, so a
 * success puts the new version in that slot (booted at the next reboot) and
 * a failure leaves it on the other one. 0 when not known (no download since
 * fotad started, another version, a file without a slot). */
static int report_slot(struct fota_server *srv, struct fota_store *st, int64_t product_id,
                       int64_t device_id, int ok, const char *version)
{
    struct fota_rom_progress dl;
    struct fota_rom rom;
    if (!version[0] || fota_rom_progress_get(srv, device_id, &dl) != 0 ||
        strncmp(dl.version, version, strlen(version)) != 0 ||
        fota_relcache_get(srv->relcache, st, product_id, dl.version, &rom) != 0)
        return 0;
    for (size_t i = 0; i < rom.nfiles; i++) {
        int slot = rom.files[i].slot;
        if (strcmp(rom.files[i].name, dl.file) == 0 && (slot == 1 || slot == 2))
            return ok ? slot : 3 - slot;
    }
    return 0;
}

static void report_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct report_job *p = (struct report_job *)j;
    struct fota_server *srv = j->srv;
    struct fota_command cmd = { 0 };
    p->cmd_id = -1;
    if (p->is_report && !p->in_rollout && open_upgrade(st, p->device_id, &cmd) == 0) {
        finish_upgrade(srv, p, &cmd);
        p->cmd_id = cmd.id;
    }
    fota_store_command_cleanup(&cmd);
    int slot = p->is_report ? report_slot(srv, st, p->product_id, p->device_id, p->ok, p->real)
                            : 0;
    unsigned fields = (p->ok && p->real[0] ? FOTA_DEV_F_ROM_VERSION : 0) |
                      (slot ? FOTA_DEV_F_SLOT : 0);
    if (fields) {
        /* device_update writes only the fields named: no read of the row first. */
        struct fota_device d = { .id = p->device_id, .running_slot = slot };
        if (fields & FOTA_DEV_F_ROM_VERSION)
            fota_str_copy(d.rom_version, sizeof d.rom_version, p->real);
        int rc = st->ops->device_update(st, &d, fields);
        if (rc < 0 && rc != FOTA_ENOENT)   /* a device deleted meanwhile has nothing to record */
            FOTA_ERROR("rom_version not stored dev=%lld error=%s", (long long)d.id,
                       fota_errname(rc));
    }
    struct fota_message *m = &p->m;
    m->product_id = p->product_id;
    m->device_id = p->device_id;
    fota_str_copy(m->action, sizeof m->action, p->action[0] ? p->action : "message");
    json_t *body = json_pack("{s:s, s:s}", "pre_rom_version", p->pre, "rom_version", p->real);
    char *t = json_dumps(body, JSON_SORT_KEYS);
    fota_str_copy(m->body, sizeof m->body, t);
    free(t);
    json_decref(body);
    int rc = fota_server_publish_message(srv, m);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("message not stored dev=%lld", (long long)p->device_id);
}

static void report_done(struct fota_devchan_job *j, struct fota_dconn *c)
{
    struct report_job *p = (struct report_job *)j;
    char q1[80], q2[80];
    FOTA_INFO("device report conn=%llu dev=%lld action=%s pre=%s new=%s cmd=%lld recovered=%d",
              (unsigned long long)j->conn_id, (long long)p->device_id, p->m.action,
              fota_log_quote(p->pre, q1, sizeof q1), fota_log_quote(p->real, q2, sizeof q2),
              (long long)p->cmd_id, p->recovered);
    if (c && !c->closing) {
        char out[96];
        fota_devchan_conn_send(c, out, fota_devproto_reply_message(out, sizeof out));
    }
    free(p);
}

void fota_devchan_handle_message(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_devchan *ch = c->ch;
    struct report_job *p = fota_devchan_job_new(ch, sizeof *p);
    p->j.run = report_run;
    p->j.done = report_done;
    p->device_id = c->device_id;
    p->product_id = c->product_id;
    p->recovered = f->recovered;
    fota_str_copy(p->action, sizeof p->action, f->action);
    fota_str_copy(p->pre, sizeof p->pre, f->pre_version);
    fota_devproto_version_clean(p->clean, sizeof p->clean, f->rom_version, strlen(f->rom_version));
    fota_str_copy(p->real, sizeof p->real, p->clean);
    p->ok = strcmp(f->action, "device_upgrade_success") == 0;
    p->is_report = p->ok || strcmp(f->action, "device_upgrade_failed") == 0;
    struct fota_hub_report ev = { c->device_id, p->ok, p->clean, "", p->real, sizeof p->real };
    p->in_rollout = p->is_report && fota_hub_publish(ch->srv, FOTA_HUB_DEVICE_REPORT, &ev) != 0;
    if (fota_devchan_job_submit(ch, c, c->device_id, &p->j) < 0) {
        free(p);
        fota_devchan_conn_refuse(c, 503, "store busy", "report while the store is busy");
    }
}
