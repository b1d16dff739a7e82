/* http_route.c - the route table and its matcher (http_route.h). */
#include "http_route.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

int fota_http_routes_add(struct fota_http_routes *t, int methods, const char *pattern,
                         fota_http_handler fn, void *ud, int flags)
{
    struct fota_http_route_entry *rt;
    if (!pattern || pattern[0] != '/' || !fn)
        return FOTA_EINVAL;
    for (rt = t->head; rt; rt = rt->next)
        if ((rt->methods & methods) && strcmp(rt->pattern, pattern) == 0)
            return FOTA_EEXIST;   /* one owner per route and method */
    rt = fota_xcalloc(1, sizeof(*rt));
    rt->pattern = fota_xstrdup(pattern);
    rt->methods = methods;
    rt->flags = flags;
    rt->fn = fn;
    rt->ud = ud;
    rt->next = t->head;
    t->head = rt;
    return 0;
}

void fota_http_routes_free(struct fota_http_routes *t)
{
    while (t->head) {
        struct fota_http_route_entry *n = t->head->next;
        free(t->head->pattern);
        free(t->head);
        t->head = n;
    }
}

int fota_http_route_match(const char *pat, const char *path, char caps[][FOTA_ROUTE_CAP_LEN],
                          int *ncaps)
{
    int n = 0;
    const char *p = pat, *s = path;

    for (;;) {
        /* Both at a segment start (after '/'). */
        while (*p == '/')
            p++;
        while (*s == '/')
            s++;
        if (*p == '\0' || *s == '\0')
            break;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (pl == 1 && *p == '*') {
            if (n >= FOTA_ROUTE_MAX_CAPS || sl >= FOTA_ROUTE_CAP_LEN)
                return 0;
            memcpy(caps[n], s, sl);
            caps[n][sl] = '\0';
            n++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl;
        s += sl;
    }
    if (*p != '\0' || *s != '\0')
        return 0;
    *ncaps = n;
    return 1;
}

const struct fota_http_route_entry *fota_http_routes_find(const struct fota_http_routes *t,
                                                          const char *path, int method,
                                                          char caps[][FOTA_ROUTE_CAP_LEN],
                                                          int *ncaps, int *allowed)
{
    *allowed = 0;
    for (const struct fota_http_route_entry *rt = t->head; rt; rt = rt->next) {
        if (!fota_http_route_match(rt->pattern, path, caps, ncaps))
            continue;
        if (rt->methods & method)
            return rt;
        *allowed |= rt->methods;
    }
    return NULL;
}

int fota_http_route_method(int ev_method, const char *tunnel, int *head)
{
    *head = ev_method == EVHTTP_REQ_HEAD;
    if (*head)
        return EVHTTP_REQ_GET;
    if (ev_method == EVHTTP_REQ_POST && tunnel) {
        if (strcasecmp(tunnel, "PUT") == 0)
            return EVHTTP_REQ_PUT;
        if (strcasecmp(tunnel, "DELETE") == 0)
            return EVHTTP_REQ_DELETE;
    }
    return ev_method;
}

int fota_http_route_has_nul(const char *raw)
{
    for (const char *p = raw ? strchr(raw, '%') : NULL; p; p = strchr(p + 1, '%'))
        if (p[1] == '0' && p[2] == '0')
            return 1;
    return 0;
}

char *fota_http_route_path(const char *raw)
{
    return evhttp_uridecode(raw && *raw ? raw : "/", 0, NULL);
}
