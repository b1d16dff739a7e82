/* reply.c - reading a REST reply: its owned buffers, the server's message,
 * and the list or object a command prints. */
#include "reply.h"

#include <stdlib.h>

void fota_cli_reply_cleanup(struct fota_cli_reply *r)
{
    if (!r)
        return;
    json_decref(r->json);
    free(r->body);
    r->json = NULL;
    r->body = NULL;
    r->len = 0;
}

const char *fota_cli_reply_message(const struct fota_cli_reply *r)
{
    json_t *m;

    if (!r->json || !json_is_object(r->json))
        return NULL;
    m = json_object_get(r->json, "message");
    if (json_is_string(m) && json_string_length(m) > 0)
        return json_string_value(m);
    m = json_object_get(r->json, "error");
    if (json_is_string(m) && json_string_length(m) > 0)
        return json_string_value(m);
    if (json_is_object(m) && json_is_string(json_object_get(m, "message")))
        return json_string_value(json_object_get(m, "message"));
    return NULL;
}

json_t *fota_cli_reply_array(json_t *reply, const char *name)
{
    json_t *a = json_object_get(reply, name), *v;
    const char *k;

    if (json_is_array(a))
        return a;
    if (json_is_array(reply))
        return reply;
    json_object_foreach(reply, k, v)
        if (json_is_array(v))
            return v;
    return NULL;
}

json_t *fota_cli_reply_object(json_t *reply, const char *name)
{
    json_t *o = json_object_get(reply, name);

    return json_is_object(o) ? o : reply;
}
