/* devchan_rate.c - the device channel's message rate, per device: each
 * message of an identified connection is checked against device_msg_rate
 * and device_msg_burst (devchan_rate.h); a message over the limit waits,
 * with the rest of the connection's input, until the rate allows it (the
 * reading pauses: TCP carries the back-pressure to the device, nothing is
 * dropped). A device's state outlives its connection for as long as it is
 * not back to a full burst, so reconnecting does not refill it. */
#include "devchan_int.h"

#include <stdlib.h>

#include "clock.h"
#include "devchan_rate.h"
#include "log.h"
#include "xmalloc.h"

/* A device whose connection closed with its burst not refilled yet. */
struct fota_devchan_rate_ent {
    int64_t device_id;
    int64_t tat_us;
    uint32_t held, warn_s;             /* its WARN line's count and second (per device) */
    struct fota_devchan_rate_ent *next;
};

static int64_t now_us(void)
{
    return fota_clock_mono_ms() * 1000;
}

static struct fota_devchan_rate_ent **slot(struct fota_devchan *ch, int64_t device_id)
{
    struct fota_devchan_rate_ent **pp =
        &ch->rate[(uint64_t)device_id % FOTA_DEVCHAN_RATE_BUCKETS];
    while (*pp && (*pp)->device_id != device_id)
        pp = &(*pp)->next;
    return pp;
}

void fota_devchan_rate_online(struct fota_dconn *c, int inherited)
{
    struct fota_devchan *ch = c->ch;
    struct fota_devchan_rate_ent **pp = slot(ch, c->device_id), *e = *pp;
    if (!inherited && e) {
        c->tat_us = e->tat_us;
        c->held = e->held;
        c->warn_s = e->warn_s;
    }
    if (e) {
        *pp = e->next;
        free(e);
        ch->nrate--;
    }
    /* The identify itself counts: a loop of reconnects spends the burst too. */
    int64_t now = now_us();
    unsigned rate = ch->conf->msg_rate;
    if (rate)
        c->tat_us = (c->tat_us > now ? c->tat_us : now) + 1000000 / (int64_t)rate;
}

void fota_devchan_rate_offline(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    if (fota_devchan_rate_idle(c->tat_us, now_us()))
        return;
    struct fota_devchan_rate_ent **pp = slot(ch, c->device_id), *e = *pp;
    if (!e) {
        e = fota_xcalloc(1, sizeof *e);
        e->device_id = c->device_id;
        *pp = e;
        ch->nrate++;
    }
    e->tat_us = c->tat_us;
    e->held = c->held;
    e->warn_s = c->warn_s;
}

void fota_devchan_rate_sweep(struct fota_devchan *ch)
{
    if (ch->nrate == 0)
        return;
    int64_t now = now_us();
    for (size_t b = 0; b < FOTA_DEVCHAN_RATE_BUCKETS; b++)
        for (struct fota_devchan_rate_ent **pp = &ch->rate[b]; *pp;) {
            struct fota_devchan_rate_ent *e = *pp;
            if (!fota_devchan_rate_idle(e->tat_us, now)) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            free(e);
            ch->nrate--;
        }
}

void fota_devchan_rate_free(struct fota_devchan *ch)
{
    for (size_t b = 0; b < FOTA_DEVCHAN_RATE_BUCKETS; b++)
        while (ch->rate[b]) {
            struct fota_devchan_rate_ent *e = ch->rate[b];
            ch->rate[b] = e->next;
            free(e);
        }
    ch->nrate = 0;
}

int64_t fota_devchan_rate_take(struct fota_dconn *c)
{
    const struct fota_devchan_conf *conf = c->ch->conf;
    if (conf->msg_rate == 0)
        return 0;
    int64_t now = now_us();
    int64_t wait = fota_devchan_rate_gcra(&c->tat_us, now, conf->msg_rate, conf->msg_burst);
    if (wait == 0)
        return 0;
    c->held++;
    uint32_t sec = (uint32_t)(now / 1000000) + 1; /* warn_s 0: never logged */
    if (sec != c->warn_s) { /* at most one line a second per connection, with the count */
        FOTA_WARN("device throttled conn=%llu dev=%lld rate=%u burst=%u held=%u wait_ms=%lld",
                  (unsigned long long)c->id, (long long)c->device_id, conf->msg_rate,
                  conf->msg_burst, c->held, (long long)(wait + 999) / 1000);
        c->warn_s = sec;
        c->held = 0;
    }
    return (wait + 999) / 1000;
}
