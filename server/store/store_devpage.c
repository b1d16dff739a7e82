/* store_devpage.c - the parts of device_page (store.h) that are the same
 * in every SQL store (store_int.h): the query's checks, the LIKE patterns
 * of a search, the column of an order and the rarest-first order of a
 * selection's tags. The statements themselves are each store's own. */
#include <stdio.h>
#include <string.h>
#include "store_int.h"

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static void search_of(const char *q, int fold, struct fota_store_search *s)
{
    size_t n = 0, h = 0, digits = 0;
    int hexish = is_hex(q[0]), decimal = 1;

    s->name[n++] = '%';
    for (const char *p = q; *p && n + 3 < sizeof s->name; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            s->name[n++] = '\\';
        s->name[n++] = fold ? lower(*p) : *p;
    }
    s->name[n++] = '%';
    /* A MAC fragment: hex digits, single separators between them. */
    s->hex[h++] = '%';
    for (const char *p = q; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        } else {
            decimal = 0;
        }
        if (is_hex(*p)) {
            if (h + 2 < sizeof s->hex)
                s->hex[h++] = lower(*p);
        } else if (!((*p == ':' || *p == '-' || *p == '.') && is_hex(p[1]) && p > q)) {
            hexish = 0;
        }
    }
    s->hex[h++] = '%';
    if (!hexish)
        s->hex[0] = '\0';
    if (decimal && digits > 0)
        snprintf(s->dec, sizeof s->dec, "%%%s%%", q);
}

int fota_store_page_search(const struct fota_device_query *qy, int fold,
                           struct fota_store_search *sr)
{
    const struct fota_device_sel *sel = &qy->sel;

    memset(sr, 0, sizeof *sr);
    if ((qy->sort != FOTA_DEVICE_SORT_ID && !fota_store_sort_col(qy->sort)) ||
        sel->ntags > FOTA_SELECT_MAX || sel->nversions > FOTA_SELECT_MAX)
        return FOTA_EINVAL;
    if (sel->q)
        search_of(sel->q, fold, sr);
    return 0;
}

const char *fota_store_sort_col(int sort)
{
    switch (sort) {
    case FOTA_DEVICE_SORT_NAME: return "d.name";
    case FOTA_DEVICE_SORT_VERSION: return "d.rom_version";
    case FOTA_DEVICE_SORT_LAST_ACTIVE: return "d.last_active";
    case FOTA_DEVICE_SORT_CREATED: return "d.created";
    default: return NULL;
    }
}

void fota_store_tags_rarest_first(int64_t *count, const char **tags, size_t n)
{
    for (size_t i = 1; i < n; i++)   /* insertion sort: at most FOTA_SELECT_MAX */
        for (size_t j = i; j > 0 && count[j] < count[j - 1]; j--) {
            int64_t c = count[j];
            const char *t = tags[j];
            count[j] = count[j - 1];
            tags[j] = tags[j - 1];
            count[j - 1] = c;
            tags[j - 1] = t;
        }
}
