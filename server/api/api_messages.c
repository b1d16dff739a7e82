/* api_messages.c - GET /v1/messages/ (admin: any, filter product_id=,
 * device_id=; a device key: its own device), newest first, paged with
 * before=ID and limit=N; and ?follow=true: a live text/event-stream fed by
 * the server's message bus (one `id: N` + `data: {json}` event per message,
 * a comment line every 15 s to keep proxies and dead peers in check). A
 * follower with Last-Event-ID (or after=ID) first gets what it missed: a
 * store job reads it, and the stream starts in the job's continuation on
 * the request's loop; the live messages of the meantime wait in the
 * follower and follow the replay, without repeating it. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "loop.h"
#include "log.h"
#include "store_exec.h"
#include "xmalloc.h"

#define KEEPALIVE_S 15
#define REPLAY_MAX 500    /* messages replayed to a follower, the oldest first */

struct held {             /* a live message that came during the replay */
    struct fota_message m;
    struct held *next;
};

struct follower {
    struct fota_req *r;
    struct fota_server *srv;
    struct fota_server_sub *sub;
    struct event *keepalive;
    int replaying;                    /* live messages wait in held */
    struct held *held, **held_tail;
};

/* The replay's store job: its filter in, the messages out. */
struct replay {
    struct follower *f;               /* touched in the continuation only */
    struct fota_message_filter flt;
    struct fota_message *list;
    size_t n;
    int rc;
};

static int64_t qnum(struct fota_req *r, const char *name, int64_t def, int *bad)
{
    const char *s = fota_req_query(r, name);
    char *end;
    if (!s || !*s)
        return def;
    long long v = strtoll(s, &end, 10);
    if (*end || v < 0)
        *bad = 1;
    return v;
}

/* FOTA_ECLOSED when the stream ended (r is gone). */
static int send_event(struct fota_req *r, const struct fota_message *m)
{
    int rc = 0;
    json_t *j = fota_api_json_message(m);
    char *t = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    if (!t)
        return 0;   /* a body jansson cannot encode: not sent */
    size_t cap = strlen(t) + 64;
    char *buf = fota_xmalloc(cap);
    int n = snprintf(buf, cap, "id: %lld\ndata: %s\n\n", (long long)m->id, t);
    rc = fota_req_stream_send(r, buf, (size_t)n);
    free(buf);
    free(t);
    return rc == FOTA_ECLOSED ? rc : 0;
}

static void on_message(void *ud, const struct fota_message *m)
{
    struct follower *f = ud;
    if (f->replaying) {
        struct held *h = fota_xmalloc(sizeof(*h));
        h->m = *m;
        h->next = NULL;
        *f->held_tail = h;
        f->held_tail = &h->next;
        return;
    }
    send_event(f->r, m);
}

static void held_free(struct follower *f)
{
    while (f->held) {
        struct held *h = f->held;
        f->held = h->next;
        free(h);
    }
    f->held_tail = &f->held;
}

static void on_keepalive(evutil_socket_t fd, short what, void *ud)
{
    struct follower *f = ud;
    (void)fd;
    (void)what;
    fota_req_stream_send(f->r, ": keep-alive\n\n", 14);
}

static void on_closed(void *ud)
{
    struct follower *f = ud;
    fota_server_unsubscribe(f->srv, f->sub);
    if (f->keepalive)
        event_free(f->keepalive);
    held_free(f);
    free(f);
}

static void follower_free(struct follower *f)
{
    fota_server_unsubscribe(f->srv, f->sub);
    event_free(f->keepalive);
    held_free(f);
    free(f);
}

/* Starts f's stream on its request's loop: the opening comment, then
 * events of list (oldest first, as message_list gives them after an id;
 * NULL: none), then the live messages held meanwhile that list does not
 * hold. r is the stream's, or released. */
static void follow_begin(struct follower *f, const struct fota_message *list, size_t n,
                         int deferred)
{
    struct fota_req *r = f->r;
    int64_t last = n ? list[n - 1].id : 0;

    if (fota_req_stream_begin(r, on_closed, f) != 0) {
        follower_free(f);
        if (deferred)
            fota_req_release(r);
        return;
    }
    f->replaying = 0;
    struct timeval tv = { KEEPALIVE_S, 0 };
    event_add(f->keepalive, &tv);
    /* An opening comment tells clients the stream is live. */
    if (fota_req_stream_send(r, ": follow\n\n", 10) == FOTA_ECLOSED)
        return;
    for (size_t i = 0; i < n; i++)
        if (send_event(r, &list[i]) == FOTA_ECLOSED)
            return;
    struct held *h = f->held;
    f->held = NULL;
    f->held_tail = &f->held;
    int cut = 0;
    while (h) {
        struct held *next = h->next;
        if (!cut && h->m.id > last)
            cut = send_event(r, &h->m) == FOTA_ECLOSED;
        free(h);
        h = next;
    }
}

static void replay_job(struct fota_store *st, void *arg)
{
    struct replay *rp = arg;
    rp->rc = st->ops->message_list(st, &rp->flt, &rp->list, &rp->n);
    if (rp->rc) {
        free(rp->list);
        rp->list = NULL;
        rp->n = 0;
    }
}

/* The replay's continuation, on the request's loop. Cancelled (fotad
 * stops): the loop is gone with its subscriptions; only memory is freed. */
static void replay_done(void *arg, int cancelled)
{
    struct replay *rp = arg;
    struct follower *f = rp->f;

    if (cancelled) {
        held_free(f);
        free(f);
    } else {
        if (rp->rc)
            FOTA_WARN("messages not replayed to a follower after=%lld error=%s",
                      (long long)rp->flt.after_id, fota_errname(rp->rc));
        follow_begin(f, rp->list, rp->n, 1);
    }
    free(rp->list);
    free(rp);
}

/* Starts a follower of flt on r's loop. deferred: r waits already (a job
 * checked its query), so whatever ends here releases it. */
static void handle_follow(struct fota_req *r, const struct fota_message_filter *flt, int deferred)
{
    struct follower *f = fota_xcalloc(1, sizeof(*f));
    int64_t after = 0;
    const char *last = fota_req_header(r, "Last-Event-ID");
    int bad = 0;

    after = qnum(r, "after", 0, &bad);
    if (last && *last)
        after = strtoll(last, NULL, 10);
    f->r = r;
    f->srv = r->srv;
    f->held_tail = &f->held;
    f->replaying = 1;
    f->sub = fota_server_subscribe(r->srv, flt->product_id, flt->device_id, on_message, f);
    /* Both live on the request's own loop (this route runs on any loop). */
    f->keepalive = event_new(r->loop ? fota_loop_base(r->loop) : r->srv->base, -1, EV_PERSIST,
                             on_keepalive, f);
    if (!f->sub) {   /* no bus on this loop */
        event_free(f->keepalive);
        free(f);
        fota_reply_error(r, 503, "cannot follow messages now");
        if (deferred)
            fota_req_release(r);
        return;
    }
    if (after <= 0 || !r->srv->exec || !r->loop) {
        follow_begin(f, NULL, 0, deferred);
        return;
    }
    /* Replay what the client missed (bounded), read by a store job; live
     * messages are held from now on, so none falls between the two. */
    struct replay *rp = fota_xcalloc(1, sizeof(*rp));
    rp->f = f;
    rp->flt = *flt;
    rp->flt.after_id = after;
    rp->flt.before_id = 0;
    rp->flt.limit = REPLAY_MAX;
    fota_req_defer(r);
    if (fota_store_submit(r->srv->exec, NULL, r->loop, replay_job, replay_done, rp) != 0) {
        free(rp);
        follower_free(f);
        r->deferred = deferred;
        fota_reply_error(r, 503, "store busy: cannot replay messages now");
        if (deferred)
            fota_req_release(r);
    }
}

/* A listing or a follow, its query read on the loop; what it names checked
 * and the listing read by the store (query_store). */
struct msg_query {
    struct fota_req *r;
    struct fota_key key;
    struct fota_message_filter flt;
    int follow;
    int follow_ok;      /* the checks passed: the follow starts on r's loop */
};

/* The product and device the filter names must exist (and be the key's),
 * then the listing is replied or the follow allowed. Any thread. */
static void query_store(struct fota_store *st, struct msg_query *q)
{
    struct fota_req *r = q->r;
    struct fota_message_filter *flt = &q->flt;
    struct fota_message *list = NULL;
    size_t n = 0;

    if (flt->product_id) {
        struct fota_product p;
        if (fota_api_product_load(r, flt->product_id, &p))
            return;
    }
    if (flt->device_id && q->key.kind == FOTA_KEY_PRODUCT) {
        /* Another product's device and no device at all answer alike, so a
         * product key cannot tell which ids exist. */
        struct fota_device d;
        int e = st->ops->device_get(st, flt->device_id, &d);
        if (e == 0 && d.product_id != q->key.product_id)
            e = FOTA_ENOENT;
        if (e == FOTA_ENOENT) {
            fota_reply_error(r, 403, "device %lld is not a device of this key's product",
                             (long long)flt->device_id);
            return;
        }
        if (e) {
            fota_reply_status(r, e, "device %lld", (long long)flt->device_id);
            return;
        }
    } else if (flt->device_id) {
        struct fota_device d;
        if (fota_api_device_load(r, flt->device_id, &d))
            return;
    }
    if (q->follow) {
        q->follow_ok = 1;
        return;
    }
    int e = st->ops->message_list(st, flt, &list, &n);
    if (e) {
        fota_reply_status(r, e, "messages");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, fota_api_json_message(&list[i]));
    json_t *j = json_object();
    json_object_set_new(j, "messages", arr);
    if (n == flt->limit && n > 0)
        json_object_set_new(j, "next_before", json_integer(list[n - 1].id));
    else
        json_object_set_new(j, "next_before", json_null());
    free(list);
    fota_reply_json(r, 200, j);
}

static void query_job(struct fota_store *st, void *arg)
{
    query_store(st, arg);
}

/* On r's loop: a follow starts; anything else was replied by the job. */
static void query_done(void *arg, int cancelled)
{
    struct msg_query *q = arg;
    if (!cancelled && q->follow_ok)
        handle_follow(q->r, &q->flt, 1);
    else
        fota_req_release(q->r);   /* cancelled: no reply, the loop is gone */
    free(q);
}

static void handle_messages(struct fota_req *r)
{
    struct msg_query *q = fota_xcalloc(1, sizeof(*q));
    struct fota_message_filter *flt = &q->flt;
    struct fota_server *srv = r->srv;
    int bad = 0;

    q->r = r;
    if (fota_req_auth(r, &q->key))
        goto out;
    flt->product_id = qnum(r, "product_id", 0, &bad);
    flt->device_id = qnum(r, "device_id", 0, &bad);
    flt->before_id = qnum(r, "before", 0, &bad);
    int64_t limit = qnum(r, "limit", 50, &bad);
    if (bad || limit < 1 || limit > 500) {
        fota_reply_error(r, 400, "product_id, device_id, before must be ids; limit 1..500");
        goto out;
    }
    flt->limit = (size_t)limit;
    if (q->key.kind == FOTA_KEY_OWNER || q->key.kind == FOTA_KEY_MASTER) {
        if (flt->device_id && flt->device_id != q->key.device_id) {
            fota_reply_error(r, 403, "this key belongs to another device");
            goto out;
        }
        flt->device_id = q->key.device_id;
    } else if (q->key.kind == FOTA_KEY_PRODUCT) {
        if (flt->product_id && flt->product_id != q->key.product_id) {
            fota_reply_error(r, 403, "this key belongs to another product");
            goto out;
        }
        flt->product_id = q->key.product_id;
    }
    const char *fl = fota_req_query(r, "follow");
    q->follow = fl && strcmp(fl, "true") == 0;
    if (srv->exec && fota_store_exec_threaded(srv->exec) && r->loop) {
        /* On the publishers' lane: the listing sees every message published
         * before it was asked (an upload's rom_released once it answered). */
        fota_req_defer(r);
        if (fota_store_submit(srv->exec, fota_server_bus_lane(srv), r->loop, query_job,
                              query_done, q) == 0)
            return;
        r->deferred = 0;
        fota_reply_error(r, 503, "store busy: too many requests wait for the store");
        goto out;
    }
    query_store(srv->store, q);   /* a store a loop may call */
    if (q->follow_ok)
        handle_follow(r, flt, 0);
out:
    free(q);
}

int fota_api_messages_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        /* A live feed stays on the loop that took its connection. */
        { FOTA_M_GET, "/v1/messages/", handle_messages, FOTA_ROUTE_ANY_LOOP },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
