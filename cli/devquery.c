/* devquery.c - `fotactl device list`'s options as a device-list query
 * (devquery.h): every value URL-encoded, the shapes the server would
 * refuse refused here first with the option's name. */
#include "devquery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fota_err.h"
#include "fota_str.h"

static int failf(char *err, size_t errlen, const char *msg, const char *arg)
{
    snprintf(err, errlen, msg, arg);
    return FOTA_EINVAL;
}

/* Appends "&name=value" (value encoded; the first without '&'). */
static int add(struct fota_cli_devquery *q, const char *name, const char *value, size_t vlen)
{
    char raw[256], enc[768];
    size_t o = strlen(q->query);

    if (fota_str_copy_n(raw, sizeof(raw), value, vlen) >= sizeof(raw) ||
        fota_cli_api_urlencode(raw, enc, sizeof(enc)) < 0)
        return FOTA_ETOOBIG;
    int n = snprintf(q->query + o, sizeof(q->query) - o, "%s%s=%s", o ? "&" : "", name, enc);
    return n < 0 || (size_t)n >= sizeof(q->query) - o ? FOTA_ETOOBIG : 0;
}

/* Each comma-separated part of list as name=part. */
static int add_list(struct fota_cli_devquery *q, const char *name, const char *list,
                    int (*ok)(const char *, size_t), const char *opt, char *err, size_t errlen)
{
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (!ok(p, n)) {
            char part[80];
            fota_str_copy_n(part, sizeof(part), p, n);
            snprintf(err, errlen, "--%s: '%s' is not %s", opt, part,
                     strcmp(opt, "tag") == 0 ? "a tag (1..63 of A-Z a-z 0-9 . _ - : =)"
                                             : "a version");
            return FOTA_EINVAL;
        }
        if (add(q, name, p, n) < 0)
            return failf(err, errlen, "--%s: too long", opt);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '='))
            return 0;
    }
    return 1;
}

static int version_ok(const char *s, size_t n)
{
    (void)s;
    return n > 0 && n < 64;
}

/* Unix seconds, or a duration: digits and one of s m h d. */
static int when_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 12 && (s[n] == '\0' || (strchr("smhd", s[n]) && s[n + 1] == '\0'));
}

static int sort_ok(const char *s)
{
    static const char *const names[] = { "id", "name", "version", "last_active", "checkin",
                                         "created", NULL };
    if (*s == '-')
        s++;
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return 1;
    return 0;
}

int fota_cli_devquery_build(const struct fota_cli_args *a, struct fota_cli_devquery *q, char *err,
                            size_t errlen)
{
    const char *v, *limit = fota_cli_args_get(a, "limit");
    int online = fota_cli_args_get(a, "online") != NULL;
    int offline = fota_cli_args_get(a, "offline") != NULL;
    static const char *const when[] = { "checkin-before", "checkin_before", "checkin-after",
                                        "checkin_after" };

    memset(q, 0, sizeof(*q));
    q->all = fota_cli_args_get(a, "all") != NULL;
    q->cursor = fota_cli_args_get(a, "cursor");
    if (online && offline)
        return failf(err, errlen, "--online and --offline%s exclude each other", "");
    if (q->all && q->cursor)
        return failf(err, errlen, "--all starts at the first page: no --cursor with it%s", "");
    if (q->cursor && !q->cursor[0])
        return failf(err, errlen, "--cursor needs the next_cursor a page gave%s", "");
    q->limit = q->all ? FOTA_CLI_PAGE_ALL : FOTA_CLI_PAGE_DEFAULT;
    if (limit) {
        char *end;
        q->limit = strtol(limit, &end, 10);
        if (!limit[0] || *end || q->limit < 1 || q->limit > 1000)
            return failf(err, errlen, "--limit wants 1..1000, not '%s'", limit);
    }
    if ((v = fota_cli_args_get(a, "tag")) &&
        add_list(q, "tag", v, tag_ok, "tag", err, errlen) < 0)
        return FOTA_EINVAL;
    if ((v = fota_cli_args_get(a, "version")) &&
        add_list(q, "version", v, version_ok, "version", err, errlen) < 0)
        return FOTA_EINVAL;
    if (online || offline)
        add(q, "online", online ? "true" : "false", online ? 4 : 5);
    if ((v = fota_cli_args_get(a, "search"))) {
        if (!v[0] || strlen(v) > 63)
            return failf(err, errlen, "--search wants 1..63 characters%s", "");
        add(q, "q", v, strlen(v));
    }
    if ((v = fota_cli_args_get(a, "name"))) {
        if (!v[0] || strlen(v) > 63)
            return failf(err, errlen, "--name wants 1..63 characters%s", "");
        add(q, "name", v, strlen(v));
    }
    for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i += 2) {
        if (!(v = fota_cli_args_get(a, when[i])))
            continue;
        if (!when_ok(v)) {
            snprintf(err, errlen, "--%s wants Unix seconds or a duration such as 30m, 12h or 7d, "
                     "not '%s'", when[i], v);
            return FOTA_EINVAL;
        }
        add(q, when[i + 1], v, strlen(v));
    }
    if ((v = fota_cli_args_get(a, "sort"))) {
        if (!sort_ok(v))
            return failf(err, errlen, "--sort wants id, name, version, last_active, checkin or "
                         "created (a leading - for descending), not '%s'", v);
        add(q, "sort", v, strlen(v));
    }
    return 0;
}
