/* devchan_gone.c - what the device channel does when the REST API deletes
 * things: a deleted device's connections are closed at once (its key no
 * longer exists, so it cannot come back), a release that a running bulk
 * upgrade still pushes cannot be deleted, nor a device whose command row a
 * job that just started has not written yet. The bulk upgrade engine is only
 * read here (rpc_fanout_int.h). Main loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "devchan_gone.h"
#include "devchan_int.h"
#include "log.h"
#include "rpc_fanout_int.h"
#include "server.h"

/* Devices deleted since start, sorted: a bulk-upgrade member of one of them
 * will never report, so it no longer keeps its job's release busy. Jobs do
 * not survive a restart as running, so neither does this list. */
#define GONE_MAX (1u << 20)
static int64_t *gone_ids;
static size_t gone_n, gone_cap;

static int gone_find(int64_t id, size_t *at)
{
    size_t lo = 0, hi = gone_n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (gone_ids[mid] == id) {
            *at = mid;
            return 1;
        }
        if (gone_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

static void gone_add(int64_t id)
{
    size_t at;

    if (gone_find(id, &at))
        return;
    if (gone_n == gone_cap) {
        size_t cap = gone_cap ? gone_cap * 2 : 64;
        int64_t *p = cap <= GONE_MAX ? realloc(gone_ids, cap * sizeof *p) : NULL;
        if (!p) {
            FOTA_WARN("deleted device not recorded dev=%lld reason=\"list full\" (a bulk "
                      "upgrade it was queued in keeps its release busy until restart)",
                      (long long)id);
            return;
        }
        gone_ids = p;
        gone_cap = cap;
    }
    memmove(&gone_ids[at + 1], &gone_ids[at], (gone_n - at) * sizeof *gone_ids);
    gone_ids[at] = id;
    gone_n++;
}

static int device_gone(void *ud, int64_t device_id)
{
    struct fota_devchan *ch = ud;
    int closed = 0;

    gone_add(device_id);
    /* Every connection that proved this device's key, identified or not;
     * deletion is rare, so a walk of the list is fine. */
    for (struct fota_dconn *c = ch->conns; c; c = c->next) {
        if (c->device_id != device_id || c->closing)
            continue;
        fota_dconn_refuse(c, 403, "device deleted", "device deleted");
        closed++;
    }
    return closed;   /* the API logs the deletion with this count */
}

/* 1 if member m has not finished and its device still exists. */
static int member_open(const struct member *m)
{
    size_t at;

    if (m->state == M_DONE || m->state == M_FAILED || m->state == M_TIMEOUT)
        return 0;
    return !gone_find(m->device_id, &at);
}

static int64_t release_busy(void *ud, int64_t product_id, const char *version)
{
    struct fota_devchan *ch = ud;

    if (!ch->fanout)
        return 0;
    for (const struct job *j = ch->fanout->jobs; j; j = j->next) {
        int running = !j->interrupted && j->succeeded + j->failed + j->timed_out < j->n;
        if (!running || j->product_id != product_id || strcmp(j->version, version) != 0)
            continue;
        for (size_t i = 0; i < j->n; i++)
            if (member_open(&j->m[i]))
                return j->id;
    }
    return 0;
}

/* A job whose rows are not written yet would fail to write them all
 * (command_create_many refuses a missing device): the device waits. */
static int64_t device_busy(void *ud, int64_t device_id)
{
    struct fota_devchan *ch = ud;

    if (!ch->fanout)
        return 0;
    for (const struct job *j = ch->fanout->jobs; j; j = j->next) {
        if (j->interrupted || !j->rows_pending)
            continue;
        for (size_t i = 0; i < j->n; i++)
            if (j->m[i].device_id == device_id && j->m[i].cmd_id == 0)
                return j->id;
    }
    return 0;
}

void fota_devchan_gone_hooks(struct fota_devchan *ch, int on)
{
    struct fota_server *srv = ch->srv;

    if (on) {
        fota_server_set_device_gone_hook(srv, device_gone, release_busy, device_busy, ch);
        return;
    }
    if (srv->gone_ud == ch)
        fota_server_set_device_gone_hook(srv, NULL, NULL, NULL, NULL);
    free(gone_ids);
    gone_ids = NULL;
    gone_n = gone_cap = 0;
}
