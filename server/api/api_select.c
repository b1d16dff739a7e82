/* api_select.c - the one parser of device selections (api_select.h): a
 * device list's query and a JSON filter object fill the store's
 * struct fota_device_sel through the same checks; the orders of a list and
 * the cursor that holds a page's position in one. */
#include "api_select.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "xmalloc.h"

#define IDS_MAX   100000               /* device_ids of one filter */
#define TEXT_MAX  (FOTA_NAME_MAX - 1)  /* q and name */
#define WHEN_MAX  (3650LL * 86400)     /* a duration back from now: ten years */

static int fail(char *reason, size_t cap, const char *fmt, const char *a)
{
    snprintf(reason, cap, fmt, a);
    return FOTA_EINVAL;
}

/* true|false|1|0 */
static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* Unix seconds, or a duration back from now ("30s", "15m", "12h", "7d"). */
static int parse_when(const char *s, int64_t now, int64_t *out)
{
    int64_t v = 0, unit = 0;
    size_t i = 0;

    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > WHEN_MAX * 1000)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    if (s[i] == '\0') {
        *out = v;
        return v > 0 ? 0 : -1;
    }
    switch (s[i]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return -1;
    }
    if (s[i + 1] != '\0' || v > WHEN_MAX / unit)
        return -1;
    *out = now - v * unit;
    return *out > 0 ? 0 : -1;
}

static int text_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= TEXT_MAX;
}

static int add_tag(struct fota_api_select *out, const char *tag, char *reason, size_t cap)
{
    if (!fota_store_tag_valid(tag))
        return fail(reason, cap, "tag \"%.64s\" is not a tag (1..63 of A-Z a-z 0-9 . _ - : =)",
                    tag);
    if (out->sel.ntags >= FOTA_SELECT_MAX)
        return fail(reason, cap, "at most %s tags in one selection", "16");
    out->sel.tags[out->sel.ntags++] = tag;
    return 0;
}

static int add_version(struct fota_api_select *out, const char *v, char *reason, size_t cap)
{
    if (strlen(v) >= FOTA_VERSION_MAX)
        return fail(reason, cap, "version \"%.40s...\" is too long", v);
    if (out->sel.nversions >= FOTA_SELECT_MAX)
        return fail(reason, cap, "at most %s versions in one selection", "16");
    out->sel.versions[out->sel.nversions++] = v;
    return 0;
}

static void init(struct fota_api_select *out)
{
    memset(out, 0, sizeof *out);
    out->sel.online = -1;
}

void fota_api_select_cleanup(struct fota_api_select *s)
{
    if (!s)
        return;
    json_decref(s->hold);
    free(s->ids);
    init(s);
}

/* ---- a list's query */

/* tag=a,b: each tag kept in out->hold (the query's value stays whole). */
static int query_tags(struct fota_api_select *out, const char *value, char *reason, size_t cap)
{
    const char *p = value;
    do {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        json_t *t = json_stringn(p, n);
        if (!t)
            return fail(reason, cap, "tag \"%.64s\" is not a tag", value);
        json_array_append_new(out->hold, t);
        int rc = add_tag(out, json_string_value(t), reason, cap);
        if (rc)
            return rc;
        p = comma ? comma + 1 : NULL;
    } while (p);
    return 0;
}

int fota_api_select_query(const struct evkeyvalq *query, int64_t now,
                          int (*skip)(const char *name), struct fota_api_select *out,
                          char *reason, size_t cap)
{
    init(out);
    out->hold = json_array();
    for (const struct evkeyval *kv = query->tqh_first; kv; kv = kv->next.tqe_next) {
        const char *k = kv->key, *v = kv->value;
        int rc = 0;
        if (strcmp(k, "q") == 0 || strcmp(k, "name") == 0) {
            const char **slot = k[0] == 'q' ? &out->sel.q : &out->sel.name;
            if (*slot)
                return fail(reason, cap, "%s is given twice", k);
            if (!text_ok(v))
                return fail(reason, cap, "%s must be 1..63 characters", k);
            *slot = v;
        } else if (strcmp(k, "tag") == 0) {
            rc = query_tags(out, v, reason, cap);
        } else if (strcmp(k, "version") == 0) {
            rc = add_version(out, v, reason, cap);
        } else if (strcmp(k, "online") == 0) {
            if (parse_bool(v, &out->sel.online) < 0)
                return fail(reason, cap, "online must be true or false, not \"%.20s\"", v);
        } else if (strcmp(k, "checkin_before") == 0 || strcmp(k, "checkin_after") == 0) {
            int64_t *slot = k[8] == 'b' ? &out->sel.checkin_before : &out->sel.checkin_after;
            if (parse_when(v, now, slot) < 0)
                return fail(reason, cap, "%s must be Unix seconds or a duration such as 30m, "
                            "12h or 7d", k);
        } else if (!(skip && skip(k))) {
            return fail(reason, cap, "unknown parameter \"%.40s\"", k);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- a filter object */

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int json_ids(struct fota_api_select *out, const json_t *v, char *reason, size_t cap)
{
    size_t n = json_array_size(v), i;
    json_t *e;
    if (!json_is_array(v) || n == 0 || n > IDS_MAX)
        return fail(reason, cap, "filter.device_ids must be a list of 1..%s device ids",
                    "100000");
    out->ids = fota_xreallocarray(NULL, n, sizeof *out->ids);
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) <= 0)
            return fail(reason, cap, "filter.device_ids must hold positive %s", "integers");
        out->ids[i] = json_integer_value(e);
    }
    out->nids = n;
    qsort(out->ids, n, sizeof *out->ids, cmp_id);
    return 0;
}

/* A string or a list of strings: each to add(). */
static int json_list(struct fota_api_select *out, const char *key, const json_t *v,
                     int (*add)(struct fota_api_select *, const char *, char *, size_t),
                     char *reason, size_t cap)
{
    size_t i;
    json_t *e;
    if (json_is_string(v))
        return add(out, json_string_value(v), reason, cap);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(reason, cap, "filter.%s must be a string or a list of them", key);
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return fail(reason, cap, "filter.%s must be a string or a list of them", key);
        int rc = add(out, json_string_value(e), reason, cap);
        if (rc)
            return rc;
    }
    return 0;
}

static int json_when(const char *key, const json_t *v, int64_t now, int64_t *out, char *reason,
                     size_t cap)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && parse_when(json_string_value(v), now, out) == 0)
        return 0;
    return fail(reason, cap, "filter.%s must be Unix seconds or a duration such as \"7d\"", key);
}

int fota_api_select_json(const json_t *filter, int64_t now, struct fota_api_select *out,
                         char *reason, size_t cap)
{
    const char *key;
    json_t *v;
    int versions = 0;

    init(out);
    if (!filter)
        return 0;
    if (!json_is_object(filter))
        return fail(reason, cap, "filter must be an %s", "object");
    out->hold = json_incref((json_t *)filter);
    json_object_foreach((json_t *)filter, key, v) {
        int rc = 0;
        if (strcmp(key, "q") == 0 || strcmp(key, "name") == 0) {
            if (!json_is_string(v) || !text_ok(json_string_value(v)))
                return fail(reason, cap, "filter.%s must be a string of 1..63 characters", key);
            *(key[0] == 'q' ? &out->sel.q : &out->sel.name) = json_string_value(v);
        } else if (strcmp(key, "tag") == 0) {
            rc = json_list(out, key, v, add_tag, reason, cap);
        } else if (strcmp(key, "version") == 0 || strcmp(key, "rom_version") == 0) {
            if (versions++)
                return fail(reason, cap, "filter has both version and %s", "rom_version");
            rc = json_list(out, key, v, add_version, reason, cap);
        } else if (strcmp(key, "online") == 0) {
            if (!json_is_boolean(v))
                return fail(reason, cap, "filter.online must be %s", "true or false");
            out->sel.online = json_is_true(v);
        } else if (strcmp(key, "checkin_before") == 0) {
            rc = json_when(key, v, now, &out->sel.checkin_before, reason, cap);
        } else if (strcmp(key, "checkin_after") == 0) {
            rc = json_when(key, v, now, &out->sel.checkin_after, reason, cap);
        } else if (strcmp(key, "device_ids") == 0) {
            rc = json_ids(out, v, reason, cap);
        } else {
            return fail(reason, cap, "unknown filter key \"%.40s\" (tag, version, online, "
                        "checkin_before, checkin_after, q, name, device_ids)", key);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int fota_api_select_has_id(const struct fota_api_select *s, int64_t device_id)
{
    return !s->ids || bsearch(&device_id, s->ids, s->nids, sizeof *s->ids, cmp_id) != NULL;
}

/* ---- orders and cursors */

static const char *const sort_names[] = { "id", "name", "version", "last_active", "created" };
#define NSORTS (sizeof sort_names / sizeof sort_names[0])

int fota_api_sort_parse(const char *text, int *sort, int *desc)
{
    *sort = FOTA_DEVICE_SORT_ID;
    *desc = 0;
    if (!text || !*text)
        return 0;
    if (*text == '-') {
        *desc = 1;
        text++;
    }
    if (strcmp(text, "checkin") == 0) {
        *sort = FOTA_DEVICE_SORT_LAST_ACTIVE;
        return 0;
    }
    for (size_t i = 0; i < NSORTS; i++)
        if (strcmp(text, sort_names[i]) == 0) {
            *sort = (int)i;
            return 0;
        }
    return FOTA_EINVAL;
}

void fota_api_sort_name(int sort, int desc, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", desc ? "-" : "",
             sort >= 0 && (size_t)sort < NSORTS ? sort_names[sort] : "id");
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int fota_api_cursor_encode(int sort, int desc, const struct fota_device_key *k, char *out,
                           size_t cap)
{
    char raw[FOTA_API_CURSOR_MAX];
    int n = snprintf(raw, sizeof raw, "1|%d|%c|%lld|%lld|%s", sort, desc ? 'd' : 'a',
                     (long long)k->id, (long long)k->num, k->text);
    size_t len = (size_t)n, o = 0;

    if (n < 0 || len >= sizeof raw)
        return FOTA_ETOOBIG;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)raw[i] << 16;
        size_t chunk = len - i < 3 ? len - i : 3;
        if (chunk > 1)
            v |= (uint32_t)(unsigned char)raw[i + 1] << 8;
        if (chunk > 2)
            v |= (unsigned char)raw[i + 2];
        if (o + chunk + 2 > cap)
            return FOTA_ETOOBIG;
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (chunk > 1)
            out[o++] = b64[(v >> 6) & 63];
        if (chunk > 2)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return (int)o;
}

/* A decimal integer ending in '|' at *p (then past it): 0, or -1. */
static int field(const char **p, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(*p, &end, 10);
    if (errno || end == *p || *end != '|' || !((**p >= '0' && **p <= '9') || **p == '-'))
        return -1;
    *out = v;
    *p = end + 1;
    return 0;
}

int fota_api_cursor_decode(const char *text, int sort, int desc, struct fota_device_key *k)
{
    unsigned char raw[FOTA_API_CURSOR_MAX + 4];
    size_t len = strlen(text), o = 0;

    memset(k, 0, sizeof *k);
    if (len == 0 || len % 4 == 1 || len > FOTA_API_CURSOR_MAX * 4 / 3)
        return FOTA_EINVAL;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        size_t chunk = len - i < 4 ? len - i : 4;
        for (size_t j = 0; j < 4; j++) {
            int d = j < chunk ? b64_value(text[i + j]) : 0;
            if (d < 0)
                return FOTA_EINVAL;
            v = v << 6 | (uint32_t)d;
        }
        raw[o++] = (unsigned char)(v >> 16);
        if (chunk > 2)
            raw[o++] = (unsigned char)(v >> 8);
        if (chunk > 3)
            raw[o++] = (unsigned char)v;
    }
    raw[o] = '\0';
    const char *p = (const char *)raw;
    int64_t version, s, id, num;
    if (memchr(raw, '\0', o) || field(&p, &version) || version != 1 || field(&p, &s) ||
        s != sort || p[0] != (desc ? 'd' : 'a') || p[1] != '|')
        return FOTA_EINVAL;
    p += 2;
    if (field(&p, &id) || id <= 0 || field(&p, &num) ||
        fota_str_copy(k->text, sizeof k->text, p) >= sizeof k->text)
        return FOTA_EINVAL;
    k->id = id;
    k->num = num;
    return 0;
}
