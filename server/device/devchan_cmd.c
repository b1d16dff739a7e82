/* devchan_cmd.c - commands on the device channel: encoding a stored command
 * as a push, queued delivery when the device comes online, the waits of the
 * RPC API for the device's D4 reply, and the D7 upgrade report that ends a
 * sys_upgrade (message, rom_version, command state). */
#include "devchan_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "devchan_requeue.h"
#include "log.h"
#include "rpc_fanout.h"

int64_t fota_devchan_nonce(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)rand();
    return fota_devproto_nonce(r);
}

/* Encodes cmd. Its params are a JSON object: either the extra RPC query
 * parameters ({"version": "v1.1"}), or a forwarded request with "path"
 * (and "method", "get", "body") for datastream and other paths. */
static int encode(struct fota_devchan *ch, const struct fota_command *cmd, char *buf, size_t cap)
{
    struct fota_server *srv = ch->srv;
    char auth[FOTA_KEY_BUF] = "";
    struct fota_device d;
    if (srv->store->ops->device_get(srv->store, cmd->device_id, &d) == 0)
        fota_server_device_key(srv, "owner", &d, auth);
    json_error_t jerr;
    json_t *params = cmd->params[0] ? json_loads(cmd->params, 0, &jerr) : json_object();
    if (!json_is_object(params)) {
        json_decref(params);
        return FOTA_EINVAL;
    }
    int rc;
    const char *path = json_string_value(json_object_get(params, "path"));
    if (path) {
        const char *method = json_string_value(json_object_get(params, "method"));
        char *get = NULL, *body = NULL;
        json_t *g = json_object_get(params, "get"), *b = json_object_get(params, "body");
        if (json_is_object(g))
            get = json_dumps(g, JSON_SORT_KEYS);
        if (json_is_object(b))
            body = json_dumps(b, JSON_SORT_KEYS);
        rc = fota_devproto_push(buf, cap, method ? method : "GET", path, get, body, auth, cmd->nonce);
        free(get);
        free(body);
    } else {
        json_t *get = json_deep_copy(params);
        json_object_set_new(get, "action", json_string(cmd->action));
        char *g = json_dumps(get, JSON_SORT_KEYS);
        json_decref(get);
        rc = g ? fota_devproto_push(buf, cap, "GET", "/v1/device/rpc/", g, NULL, auth, cmd->nonce)
               : FOTA_ENOMEM;
        free(g);
    }
    json_decref(params);
    return rc;
}

static int no_reply(const struct fota_command *cmd)
{
    return strcmp(cmd->action, "sys_reboot") == 0; /* stock devices never answer it */
}

static void store_cmd(struct fota_devchan *ch, struct fota_command *cmd)
{
    cmd->updated = fota_server_now();
    int rc = ch->srv->store->ops->command_update(ch->srv->store, cmd);
    if (rc < 0)
        FOTA_ERROR("command update failed cmd=%lld dev=%lld error=%s", (long long)cmd->id,
                   (long long)cmd->device_id, fota_errname(rc));
}

int fota_devchan_push_cmd(struct fota_dconn *c, struct fota_command *cmd)
{
    char buf[FOTA_DEVPROTO_PUSH_MAX];
    if (cmd->nonce <= 0 || cmd->nonce > 0x7FFFFFFF)
        cmd->nonce = fota_devchan_nonce();
    int n = encode(c->ch, cmd, buf, sizeof buf);
    if (n < 0) {
        FOTA_WARN("command not encodable cmd=%lld dev=%lld action=%s error=%s", (long long)cmd->id,
                  (long long)cmd->device_id, cmd->action, fota_errname(n));
        cmd->state = FOTA_CMD_FAILED;
        snprintf(cmd->result, sizeof cmd->result, "{\"error\": \"%s\"}", fota_errname(n));
        store_cmd(c->ch, cmd);
        return n;
    }
    fota_dconn_send(c, buf, n);
    cmd->state = no_reply(cmd) ? FOTA_CMD_DONE : FOTA_CMD_DELIVERED;
    store_cmd(c->ch, cmd);
    fota_devchan_requeue_note(c, cmd);   /* redelivered if c drops first */
    FOTA_INFO("command delivered conn=%llu dev=%lld cmd=%lld action=%s nonce=%lld bytes=%d",
              (unsigned long long)c->id, (long long)cmd->device_id, (long long)cmd->id, cmd->action,
              (long long)cmd->nonce, n);
    return 0;
}

static void wait_unlink(struct fota_devchan_wait *w)
{
    struct fota_devchan *ch = w->ch;
    if (w->prev)
        w->prev->next = w->next;
    else
        ch->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->timer)
        event_free(w->timer);
    free(w);
}

static void wait_timeout_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_devchan_wait *w = ud;
    (void)fd;
    (void)what;
    FOTA_INFO("command reply timed out dev=%lld cmd=%lld nonce=%lld", (long long)w->device_id,
              (long long)w->cmd_id, (long long)w->nonce);
    fota_devchan_done_cb cb = w->cb;
    void *cud = w->ud;
    wait_unlink(w);
    cb(cud, FOTA_CMD_TIMEOUT, NULL);
}

void fota_devchan_cancel(struct fota_devchan *ch, struct fota_devchan_wait *w)
{
    (void)ch;
    if (w)
        wait_unlink(w);
}

void fota_devchan_waits_free(struct fota_devchan *ch)
{
    while (ch->waits)
        wait_unlink(ch->waits);
}

int fota_devchan_deliver(struct fota_devchan *ch, struct fota_command *cmd, unsigned timeout_s,
                         fota_devchan_done_cb cb, void *ud, struct fota_devchan_wait **wait)
{
    if (wait)
        *wait = NULL;
    struct fota_dconn *c = ch ? fota_devchan_find(ch, cmd->device_id) : NULL;
    if (!c || c->closing)
        return FOTA_CMD_QUEUED;
    struct fota_devchan_wait *w = NULL;
    if (cb && !no_reply(cmd)) {
        w = calloc(1, sizeof *w);
        if (!w || !(w->timer = evtimer_new(ch->srv->base, wait_timeout_cb, w))) {
            free(w);
            return FOTA_ENOMEM;
        }
    }
    int rc = fota_devchan_push_cmd(c, cmd);
    if (rc < 0 || !w) {
        if (w) {
            event_free(w->timer);
            free(w);
        }
        return rc < 0 ? rc : cmd->state;
    }
    w->ch = ch;
    w->device_id = cmd->device_id;
    w->nonce = cmd->nonce;
    w->cmd_id = cmd->id;
    w->cb = cb;
    w->ud = ud;
    w->next = ch->waits;
    if (ch->waits)
        ch->waits->prev = w;
    ch->waits = w;
    struct timeval tv = { (time_t)(timeout_s ? timeout_s : 30), 0 };
    evtimer_add(w->timer, &tv);
    if (wait)
        *wait = w;
    return cmd->state;
}

/* Finds the device's newest command in one of two states whose nonce matches
 * (nonce 0: any nonce, newest sys_upgrade). 0 or FOTA_ENOENT. */
static int find_cmd(struct fota_devchan *ch, int64_t device_id, int64_t nonce, int want_upgrade,
                    struct fota_command *out)
{
    struct fota_store *st = ch->srv->store;
    struct fota_command *list = NULL;
    size_t n = 0;
    int rc = st->ops->command_list_device(st, device_id, 0, &list, &n);
    if (rc < 0)
        return rc;
    rc = FOTA_ENOENT;
    for (size_t i = n; i-- > 0;) {
        const struct fota_command *c = &list[i];
        if (c->state != FOTA_CMD_DELIVERED && c->state != FOTA_CMD_ACKED &&
            c->state != FOTA_CMD_TIMEOUT)
            continue;
        if (nonce ? c->nonce != nonce : !want_upgrade || strcmp(c->action, "sys_upgrade") != 0)
            continue;
        *out = *c;
        rc = 0;
        break;
    }
    free(list);
    return rc;
}

void fota_devchan_on_reply(struct fota_dconn *c, const struct fota_devproto_frame *f, const char *line)
{
    struct fota_devchan *ch = c->ch;
    struct fota_command cmd;
    if (fota_fanout_on_reply(ch->fanout, c->device_id, f->nonce, f->status))
        return; /* a bulk upgrade's push: counted and written in its batch */
    int found = find_cmd(ch, c->device_id, f->nonce, 0, &cmd) == 0;
    int state = FOTA_CMD_DONE;
    if (found) {
        /* An upgrade is acknowledged now and done at its D7 report. */
        state = strcmp(cmd.action, "sys_upgrade") == 0 ? FOTA_CMD_ACKED : FOTA_CMD_DONE;
        if (f->status != 200)
            state = FOTA_CMD_FAILED;
        cmd.state = state;
        snprintf(cmd.result, sizeof cmd.result, "%s", line);
        store_cmd(ch, &cmd);
    }
    FOTA_INFO("command reply conn=%llu dev=%lld nonce=%lld status=%d cmd=%lld",
              (unsigned long long)c->id, (long long)c->device_id, (long long)f->nonce, f->status,
              found ? (long long)cmd.id : -1LL);
    for (struct fota_devchan_wait *w = ch->waits; w; w = w->next) {
        if (w->device_id == c->device_id && w->nonce == f->nonce) {
            fota_devchan_done_cb cb = w->cb;
            void *ud = w->ud;
            wait_unlink(w);
            cb(ud, state, line);
            break;
        }
    }
}

void fota_devchan_on_message(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_devchan *ch = c->ch;
    struct fota_server *srv = ch->srv;
    char clean[FOTA_DEVPROTO_VER_MAX], real[FOTA_VERSION_MAX];
    fota_devproto_version_clean(clean, sizeof clean, f->rom_version, strlen(f->rom_version));
    snprintf(real, sizeof real, "%s", clean);
    int ok = strcmp(f->action, "device_upgrade_success") == 0;
    int is_report = ok || strcmp(f->action, "device_upgrade_failed") == 0;
    struct fota_command cmd;
    int in_job = is_report && fota_fanout_on_report(ch->fanout, c->device_id, ok, clean, real,
                                                    sizeof real);
    int have_cmd = is_report && !in_job && find_cmd(ch, c->device_id, 0, 1, &cmd) == 0;
    if (have_cmd) {
        /* The device reports at most 15 bytes of the version: take the
         * command's full version when the report is its (cleaned) prefix. */
        json_error_t jerr;
        json_t *p = json_loads(cmd.params, 0, &jerr);
        const char *v = json_string_value(json_object_get(p, "version"));
        if (v && clean[0] && strncmp(v, clean, strlen(clean)) == 0)
            snprintf(real, sizeof real, "%s", v);
        json_decref(p);
        cmd.state = ok ? FOTA_CMD_DONE : FOTA_CMD_FAILED;
        json_t *res = json_pack("{s:s, s:s, s:s}", "action", f->action, "pre_rom_version",
                                f->pre_version, "rom_version", real);
        char *t = res ? json_dumps(res, JSON_SORT_KEYS) : NULL;
        snprintf(cmd.result, sizeof cmd.result, "%s", t ? t : "");
        free(t);
        json_decref(res);
        store_cmd(ch, &cmd);
    }
    struct fota_device d;
    if (ok && real[0] && srv->store->ops->device_get(srv->store, c->device_id, &d) == 0) {
        snprintf(d.rom_version, sizeof d.rom_version, "%s", real);
        int rc = srv->store->ops->device_update(srv->store, &d, FOTA_DEV_F_ROM_VERSION);
        if (rc < 0)
            FOTA_ERROR("rom_version not stored dev=%lld error=%s", (long long)d.id, fota_errname(rc));
    }
    struct fota_message m = { 0 };
    m.product_id = c->product_id;
    m.device_id = c->device_id;
    snprintf(m.action, sizeof m.action, "%s", f->action[0] ? f->action : "message");
    json_t *body = json_pack("{s:s, s:s}", "pre_rom_version", f->pre_version, "rom_version", real);
    char *t = body ? json_dumps(body, JSON_SORT_KEYS) : NULL;
    snprintf(m.body, sizeof m.body, "%s", t ? t : "{}");
    free(t);
    json_decref(body);
    if (fota_server_publish_message(srv, &m) < 0)
        FOTA_WARN("message not stored dev=%lld", (long long)c->device_id);
    char q1[80], q2[80];
    FOTA_INFO("device report conn=%llu dev=%lld action=%s pre=%s new=%s cmd=%lld recovered=%d",
              (unsigned long long)c->id, (long long)c->device_id, m.action,
              fota_log_quote(f->pre_version, q1, sizeof q1), fota_log_quote(real, q2, sizeof q2),
              have_cmd ? (long long)cmd.id : -1LL, f->recovered);
}

/* Pushes c's oldest queued command; with more queued, the next one in 1 s. */
static void deliver_next(struct fota_dconn *c)
{
    struct fota_store *st = c->ch->srv->store;
    if (!c->online || c->closing)
        return;
    struct fota_command *list = NULL;
    size_t n = 0;
    if (st->ops->command_list_device(st, c->device_id, FOTA_CMD_QUEUED, &list, &n) == 0 && n > 0)
        fota_devchan_push_cmd(c, &list[0]); /* one per wake-up: one TCP segment, one message */
    free(list);
    if (n > 1) {
        fota_devchan_kick_queue(c, 1000);
        return;
    }
    /* Nothing more queued: an idle connection keeps no timer (memory per device). */
    if (c->deliver_ev)
        event_free(c->deliver_ev);
    c->deliver_ev = NULL;
}

static void deliver_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    deliver_next(ud);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kick_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_devchan *ch = ud;
    (void)fd;
    (void)what;
    /* The due ones, bounded per wake-up (one store query each); connections
     * that went away are skipped, ones with their own timer are left to it. */
    int64_t now = now_ms();
    size_t n = 0;
    while (n < ch->nkick && n < 2048 && ch->kick[n].due_ms <= now) {
        struct fota_dconn *c = fota_devchan_find(ch, ch->kick[n++].device_id);
        if (c && !(c->deliver_ev && evtimer_pending(c->deliver_ev, NULL)))
            deliver_next(c);
    }
    memmove(ch->kick, ch->kick + n, (ch->nkick - n) * sizeof *ch->kick);
    ch->nkick -= n;
    if (ch->nkick > 0) {
        int64_t wait = ch->kick[0].due_ms - now;
        struct timeval tv = { 0, (suseconds_t)(wait > 0 ? wait * 1000 : 1000) };
        evtimer_add(ch->kick_ev, &tv);
    }
}

void fota_devchan_kick_later(struct fota_devchan *ch, int64_t device_id)
{
    if (!ch->kick_ev && !(ch->kick_ev = evtimer_new(ch->srv->base, kick_cb, ch)))
        return;
    if (ch->nkick == ch->capkick) {
        size_t cap = ch->capkick ? ch->capkick * 2 : 256;
        struct fota_kick *k = realloc(ch->kick, cap * sizeof *k);
        if (!k)
            return; /* the queue waits for the next connect */
        ch->kick = k;
        ch->capkick = cap;
    }
    ch->kick[ch->nkick++] = (struct fota_kick){ device_id, now_ms() + FOTA_DEVCHAN_KICK_MS };
    if (!evtimer_pending(ch->kick_ev, NULL)) {
        struct timeval tv = { 0, FOTA_DEVCHAN_KICK_MS * 1000 };
        evtimer_add(ch->kick_ev, &tv);
    }
}

void fota_devchan_kick_free(struct fota_devchan *ch)
{
    if (ch->kick_ev)
        event_free(ch->kick_ev);
    ch->kick_ev = NULL;
    free(ch->kick);
    ch->kick = NULL;
    ch->nkick = ch->capkick = 0;
}

void fota_devchan_kick_queue(struct fota_dconn *c, int delay_ms)
{
    if (!c->deliver_ev)
        c->deliver_ev = evtimer_new(c->ch->srv->base, deliver_cb, c);
    if (!c->deliver_ev)
        return;
    struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
    evtimer_add(c->deliver_ev, &tv);
}
