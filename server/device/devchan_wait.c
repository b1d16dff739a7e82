/* devchan_wait.c - replies awaited by (device, nonce): a command delivered
 * for the RPC API waits here for the device's D4/D5 with its nonce, or its
 * timeout (monotonic, a libevent timer). The callback runs once, then the
 * wait is freed. */
#include "devchan_int.h"

#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"

static void wait_unlink(struct fota_devchan_wait *w)
{
    struct fota_devchan *ch = w->ch;
    if (w->prev)
        w->prev->next = w->next;
    else
        ch->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    event_free(w->timer);
    free(w);
}

/* Unlinks w, then calls its callback (which may add or drop other waits). */
static void wait_fire(struct fota_devchan_wait *w, int state, const struct json_t *result)
{
    fota_devchan_done_cb cb = w->cb;
    void *ud = w->ud;
    wait_unlink(w);
    cb(ud, state, result);
}

static void wait_timeout_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_devchan_wait *w = ud;
    (void)fd;
    (void)what;
    FOTA_INFO("command reply timed out dev=%lld cmd=%lld nonce=%lld", (long long)w->device_id,
              (long long)w->cmd_id, (long long)w->nonce);
    wait_fire(w, FOTA_CMD_TIMEOUT, NULL);
}

struct fota_devchan_wait *fota_devchan_wait_add(struct fota_devchan *ch, int64_t device_id,
                                                int64_t nonce, int64_t cmd_id, unsigned timeout_s,
                                                fota_devchan_done_cb cb, void *ud)
{
    struct fota_devchan_wait *w = fota_xcalloc(1, sizeof *w);
    w->timer = evtimer_new(ch->srv->base, wait_timeout_cb, w);
    w->ch = ch;
    w->device_id = device_id;
    w->nonce = nonce;
    w->cmd_id = cmd_id;
    w->cb = cb;
    w->ud = ud;
    w->next = ch->waits;
    if (ch->waits)
        ch->waits->prev = w;
    ch->waits = w;
    struct timeval tv = { (time_t)(timeout_s ? timeout_s : 30), 0 };
    evtimer_add(w->timer, &tv);
    return w;
}

int fota_devchan_wait_wake(struct fota_devchan *ch, int64_t device_id, int64_t nonce, int state,
                           const struct json_t *result)
{
    for (struct fota_devchan_wait *w = ch->waits; w; w = w->next) {
        if (w->device_id == device_id && w->nonce == nonce) {
            wait_fire(w, state, result);
            return 1;
        }
    }
    return 0;
}

void fota_devchan_wait_wake_device(struct fota_devchan *ch, int64_t device_id, int state)
{
    for (struct fota_devchan_wait *w = ch->waits; w;) {
        if (w->device_id != device_id) {
            w = w->next;
            continue;
        }
        wait_fire(w, state, NULL);
        w = ch->waits; /* the callback may have changed the list: walk it again */
    }
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
