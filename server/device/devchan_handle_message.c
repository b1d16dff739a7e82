/* devchan_handle_message.c - D7, POST /v1/messages/: a device's report,
 * usually the end of an upgrade (device_upgrade_success / _failed with its
 * versions). The report goes to the hub first (DEVICE_REPORT: a rollout
 * that pushed the upgrade takes it), else it finishes the newest open
 * sys_upgrade command of the device; a success records the device's new
 * version, a report after a download its slot (running_slot), and every
 * report is stored and published as a message: all of it one store job on
 * the device's lane, the connection's reading paused until its answer.
 * A report that reads no command (a rollout's, which its engine counts and
 * writes in its own batch, or a message that is no upgrade report) is
 * written in a batch instead: report_batch, one transaction for the
 * reports of FOTA_DEVCHAN_REPORT_MS (or FOTA_DEVCHAN_REPORT_MAX of them),
 * one batch at a time, a job on the lane `messages`; each waits for its
 * batch's commit before its reply, as alone, and a push to its connection
 * meanwhile (a rollout's reboot) waits for that reply. */
#include "devchan_int.h"

#include <stdlib.h>

#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "fota_str.h"
#include "hub.h"
#include "log.h"
#include "relcache.h"
#include "rom.h"
#include "xmalloc.h"

#define FOTA_DEVCHAN_REPORT_MS 10     /* reports wait this long for their batch, at most */
#define FOTA_DEVCHAN_REPORT_MAX 512   /* a batch is written at once when this many wait */

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
    /* the written message's action, not the message: the job stays small
     * (a body is 2 KiB, and every allocation of 1 KiB or more makes glibc
     * consolidate its fast bins) */
    char m_action[sizeof ((struct fota_message *)0)->action];
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

/* What p writes of its device (FOTA_DEV_F_ROM_VERSION, FOTA_DEV_F_SLOT
 * into row's fields) and its message (row->m). */
static void report_row(struct fota_store *st, struct report_job *p, struct fota_report_row *row)
{
    int slot = p->is_report ? report_slot(p->j.srv, st, p->product_id, p->device_id, p->ok,
                                          p->real)
                            : 0;
    row->fields = (p->ok && p->real[0] ? FOTA_DEV_F_ROM_VERSION : 0) |
                  (slot ? FOTA_DEV_F_SLOT : 0);
    row->running_slot = slot;
    fota_str_copy(row->rom_version, sizeof row->rom_version, p->real);
    struct fota_message *m = &row->m;
    m->product_id = p->product_id;
    m->device_id = p->device_id;
    fota_str_copy(m->action, sizeof m->action, p->action[0] ? p->action : "message");
    json_t *body = json_pack("{s:s, s:s}", "pre_rom_version", p->pre, "rom_version", p->real);
    char *t = json_dumps(body, JSON_SORT_KEYS);
    fota_str_copy(m->body, sizeof m->body, t);
    free(t);
    json_decref(body);
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
    struct fota_report_row row = { 0 };
    report_row(st, p, &row);
    if (row.fields) {
        /* device_update writes only the fields named: no read of the row first. */
        struct fota_device d = { .id = p->device_id, .running_slot = row.running_slot };
        fota_str_copy(d.rom_version, sizeof d.rom_version, row.rom_version);
        int rc = st->ops->device_update(st, &d, row.fields);
        if (rc < 0 && rc != FOTA_ENOENT)   /* a device deleted meanwhile has nothing to record */
            FOTA_ERROR("rom_version not stored dev=%lld error=%s", (long long)d.id,
                       fota_errname(rc));
    }
    fota_str_copy(p->m_action, sizeof p->m_action, row.m.action);
    int rc = fota_server_publish_message(srv, &row.m);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("message not stored dev=%lld", (long long)p->device_id);
}

static void report_done(struct fota_devchan_job *j, struct fota_dconn *c)
{
    struct report_job *p = (struct report_job *)j;
    char q1[80], q2[80];
    FOTA_INFO("device report conn=%llu dev=%lld action=%s pre=%s new=%s cmd=%lld recovered=%d",
              (unsigned long long)j->conn_id, (long long)p->device_id, p->m_action,
              fota_log_quote(p->pre, q1, sizeof q1), fota_log_quote(p->real, q2, sizeof q2),
              (long long)p->cmd_id, p->recovered);
    if (c && !c->closing) {
        char out[96];
        fota_devchan_conn_send(c, out, fota_devproto_reply_message(out, sizeof out));
    }
    free(p);
}

/* ---- reports in batches --------------------------------------------- */

/* A push held for a connection until its report's reply (fota_devchan_hold). */
struct fota_devchan_held {
    uint64_t conn_id;
    int len;
    char *line;
};

struct fota_devchan_report {
    struct report_job p;
};

struct batch_job {
    struct fota_devchan_job j;
    struct report_job **rs;
    struct fota_report_row *rows;
    size_t n;
};

void fota_devchan_hold(struct fota_dconn *c, const char *buf, int len)
{
    struct fota_devchan *ch = c->ch;
    if (ch->nheld == ch->capheld) {
        ch->capheld = ch->capheld ? ch->capheld * 2 : 16;
        ch->held = fota_xreallocarray(ch->held, ch->capheld, sizeof *ch->held);
    }
    ch->held[ch->nheld++] = (struct fota_devchan_held){ c->id, len, fota_xmemdup(buf, (size_t)len) };
}

/* The report of connection id was answered: what was held for it goes out
 * in order (c NULL, the connection gone: dropped). */
static void held_send(struct fota_devchan *ch, uint64_t id, struct fota_dconn *c)
{
    size_t k = 0;
    for (size_t i = 0; i < ch->nheld; i++) {
        struct fota_devchan_held *h = &ch->held[i];
        if (h->conn_id != id) {
            ch->held[k++] = *h;
            continue;
        }
        if (c && !c->closing)
            fota_devchan_conn_send(c, h->line, h->len);
        free(h->line);
    }
    ch->nheld = k;
}

static void batch_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct batch_job *b = (struct batch_job *)j;
    struct fota_server *srv = j->srv;
    for (size_t i = 0; i < b->n; i++)
        report_row(st, b->rs[i], &b->rows[i]);
    int rc = st->ops->report_batch(st, b->rows, b->n);
    if (rc < 0) {
        if (rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
            FOTA_WARN("reports not stored rows=%zu error=%s", b->n, fota_errname(rc));
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        fota_server_bus_stored(srv, st, &b->rows[i].m);
}

static void batch_free(struct batch_job *b)
{
    free(b->rs);
    free(b->rows);
    free(b);
}

static void batch_drop(struct fota_devchan_job *j)
{
    struct batch_job *b = (struct batch_job *)j;
    for (size_t i = 0; i < b->n; i++)
        free(b->rs[i]);
    batch_free(b);
}

static void reports_arm(struct fota_devchan *ch);

/* Main loop: each report's reply, then what was held for its connection;
 * its reading resumes. The next batch may go. */
static void batch_done(struct fota_devchan_job *j, struct fota_dconn *unused)
{
    struct batch_job *b = (struct batch_job *)j;
    struct fota_devchan *ch = j->ch;
    (void)unused;
    for (size_t i = 0; i < b->n; i++) {
        struct report_job *p = b->rs[i];
        uint64_t id = p->j.conn_id;
        struct fota_dconn *c = fota_devchan_conn_by_id(ch, id);
        fota_str_copy(p->m_action, sizeof p->m_action, b->rows[i].m.action);
        report_done(&p->j, c);   /* frees p */
        if (ch->nheld)
            held_send(ch, id, c);
        if (!c)
            continue;
        c->reporting = 0;
        if ((c = fota_devchan_conn_by_id(ch, id)) != NULL && ch->resume)
            ch->resume(c, FOTA_DCONN_PAUSE_STORE);
    }
    batch_free(b);
    ch->rb_busy = 0;
    reports_arm(ch);
}

/* Writes what waits: when no batch is being written, or (force: the
 * module stops) at once, queued behind it on the lane. */
static void reports_write(struct fota_devchan *ch, int force)
{
    if (ch->nrb == 0 || (ch->rb_busy && !force))
        return;
    struct batch_job *b = fota_devchan_job_new(ch, sizeof *b);
    b->j.run = batch_run;
    b->j.done = batch_done;
    b->j.drop = batch_drop;
    b->n = ch->nrb < FOTA_DEVCHAN_REPORT_MAX ? ch->nrb : FOTA_DEVCHAN_REPORT_MAX;
    b->rs = fota_xreallocarray(NULL, b->n, sizeof *b->rs);
    for (size_t i = 0; i < b->n; i++)
        b->rs[i] = &ch->rb[i]->p;
    b->rows = fota_xcalloc(b->n, sizeof *b->rows);
    ch->nrb -= b->n;   /* the rest: the next batch */
    memmove(ch->rb, ch->rb + b->n, ch->nrb * sizeof *ch->rb);
    ch->rb_busy = 1;
    if (fota_devchan_job_submit_on(ch, fota_server_bus_lane(ch->srv), NULL, &b->j) == 0)
        return;
    ch->rb_busy = 0;
    for (size_t i = 0; i < b->n; i++) {   /* the store takes no more: as a job refused alone */
        struct fota_dconn *c = fota_devchan_conn_by_id(ch, b->rs[i]->j.conn_id);
        if (c) {
            c->reporting = 0;
            c->paused &= (uint8_t)~FOTA_DCONN_PAUSE_STORE;
            held_send(ch, c->id, c);
            fota_devchan_conn_refuse(c, 503, "store busy", "report while the store is busy");
        }
        free(b->rs[i]);
    }
    batch_free(b);
}

void fota_devchan_reports_flush(struct fota_devchan *ch)
{
    while (ch->nrb > 0)   /* each round takes a batch, written or refused */
        reports_write(ch, 1);
}

static void reports_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    reports_write(ud, 0);
}

/* The batch goes at once when full, else after FOTA_DEVCHAN_REPORT_MS. */
static void reports_arm(struct fota_devchan *ch)
{
    if (ch->nrb == 0 || ch->rb_busy)
        return;
    if (ch->nrb >= FOTA_DEVCHAN_REPORT_MAX) {
        reports_write(ch, 0);
        return;
    }
    if (!ch->rb_ev)
        ch->rb_ev = evtimer_new(ch->srv->base, reports_cb, ch);
    if (!evtimer_pending(ch->rb_ev, NULL)) {
        struct timeval tv = { 0, FOTA_DEVCHAN_REPORT_MS * 1000 };
        evtimer_add(ch->rb_ev, &tv);
    }
}

void fota_devchan_reports_free(struct fota_devchan *ch)
{
    if (ch->rb_ev)
        event_free(ch->rb_ev);
    ch->rb_ev = NULL;
    for (size_t i = 0; i < ch->nrb; i++)
        free(ch->rb[i]);
    free(ch->rb);
    ch->rb = NULL;
    ch->nrb = ch->caprb = 0;
    for (size_t i = 0; i < ch->nheld; i++)
        free(ch->held[i].line);
    free(ch->held);
    ch->held = NULL;
    ch->nheld = ch->capheld = 0;
}

/* p waits for the next batch; c's reading pauses until its reply. */
static void report_batch_add(struct fota_dconn *c, struct report_job *p)
{
    struct fota_devchan *ch = c->ch;
    if (ch->nrb == ch->caprb) {
        ch->caprb = ch->caprb ? ch->caprb * 2 : 64;
        ch->rb = fota_xreallocarray(ch->rb, ch->caprb, sizeof *ch->rb);
    }
    ch->rb[ch->nrb++] = (struct fota_devchan_report *)p;
    p->j.conn_id = c->id;
    c->reporting = 1;
    c->paused |= FOTA_DCONN_PAUSE_STORE;
    bufferevent_disable(c->bev, EV_READ);
    reports_arm(ch);
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
    if ((p->in_rollout || !p->is_report) && ch->srv->store->ops->report_batch) {
        report_batch_add(c, p);   /* no command to read: written with others */
        return;
    }
    if (fota_devchan_job_submit(ch, c, c->device_id, &p->j) < 0) {
        free(p);
        fota_devchan_conn_refuse(c, 503, "store busy", "report while the store is busy");
    }
}
