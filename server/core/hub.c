/* hub.c - topics and their subscribers (hub.h): a fixed table per topic in
 * struct fota_server, walked in subscription order on the main loop. */
#include "hub.h"

#include <string.h>

#include "fota_err.h"
#include "loop.h"
#include "server.h"

int fota_hub_subscribe(struct fota_server *srv, enum fota_hub_topic topic, fota_hub_cb cb,
                       void *ud)
{
    struct fota_hub *h = &srv->hub;
    if ((unsigned)topic >= FOTA_HUB_TOPICS || !cb)
        return FOTA_EINVAL;
    if (h->n[topic] == FOTA_HUB_SUBS_MAX)
        return FOTA_ETOOBIG;
    h->subs[topic][h->n[topic]++] = (struct fota_hub_sub){ cb, ud };
    return 0;
}

void fota_hub_unsubscribe(struct fota_server *srv, enum fota_hub_topic topic, fota_hub_cb cb,
                          void *ud)
{
    struct fota_hub *h = &srv->hub;
    if ((unsigned)topic >= FOTA_HUB_TOPICS)
        return;
    struct fota_hub_sub *s = h->subs[topic];
    for (unsigned i = 0; i < h->n[topic]; i++) {
        if (s[i].cb != cb || s[i].ud != ud)
            continue;
        memmove(&s[i], &s[i + 1], (h->n[topic] - i - 1) * sizeof s[0]);
        h->n[topic]--;
        return;
    }
}

int64_t fota_hub_publish(struct fota_server *srv, enum fota_hub_topic topic, const void *event)
{
    const struct fota_hub *h = &srv->hub;
    if ((unsigned)topic >= FOTA_HUB_TOPICS)
        return 0;
    for (unsigned i = 0; i < h->n[topic]; i++) {
        int64_t v = h->subs[topic][i].cb(h->subs[topic][i].ud, event);
        if (v != 0)
            return v;
    }
    return 0;
}

struct publish_call {
    struct fota_server *srv;
    enum fota_hub_topic topic;
    const void *event;
    int64_t answer;
};

static void publish_main(void *arg)
{
    struct publish_call *c = arg;
    c->answer = fota_hub_publish(c->srv, c->topic, c->event);
}

int64_t fota_hub_publish_any(struct fota_server *srv, enum fota_hub_topic topic,
                             const void *event)
{
    struct publish_call c = { srv, topic, event, 0 };
    struct fota_loop *main_loop = srv->loops[0];
    if (!main_loop || fota_loop_current() == main_loop)
        return fota_hub_publish(srv, topic, event);
    if (fota_loop_call(main_loop, publish_main, &c) != 0)
        return 0;
    return c.answer;
}
