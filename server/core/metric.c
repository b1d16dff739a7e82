/* metric.c - the metrics registry (metric.h): a fixed table of parts in
 * struct fota_server, rendered in the Prometheus text format at scrape
 * time. Rendering reads the values with relaxed loads: a scrape sees each
 * value as it was at some moment during the scrape, as every Prometheus
 * client does. */
#include "metric.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "fota_err.h"
#include "server.h"

const int64_t fota_metric_bounds_ns[FOTA_METRIC_BUCKETS - 1] = {
    100000,     250000,     500000,     1000000,     2500000,     5000000,
    10000000,   25000000,   50000000,   100000000,   250000000,   500000000,
    1000000000, 2500000000, 5000000000, 10000000000, 30000000000,
};

/* The same bounds as the text of the `le` label. */
static const char *const bounds_text[FOTA_METRIC_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "30",    "+Inf",
};

struct fota_metric_out {
    struct evbuffer *buf;
    const char *name;
};

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int name_ok(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

static int part_add(struct fota_server *srv, const struct fota_metric_part *p)
{
    struct fota_metrics *reg = &srv->metrics;
    const struct fota_metric_desc *d = p->desc;
    if (!d || !name_ok(d->name) || !d->help || d->type < FOTA_METRIC_COUNTER ||
        d->type > FOTA_METRIC_HISTOGRAM)
        return FOTA_EINVAL;
    for (unsigned i = 0; i < reg->n; i++)
        if (strcmp(reg->part[i].desc->name, d->name) == 0 && reg->part[i].desc->type != d->type)
            return FOTA_EINVAL;
    if (reg->n == FOTA_METRIC_PARTS_MAX)
        return FOTA_ETOOBIG;
    reg->part[reg->n++] = *p;
    return 0;
}

int fota_metric_register(struct fota_server *srv, const struct fota_metric_desc *desc,
                         struct fota_metric *values)
{
    if (!values || !desc || desc->n == 0 || desc->type == FOTA_METRIC_HISTOGRAM ||
        (!desc->labels && desc->n != 1))
        return FOTA_EINVAL;
    struct fota_metric_part p = { .desc = desc, .values = values };
    return part_add(srv, &p);
}

int fota_metric_register_hist(struct fota_server *srv, const struct fota_metric_desc *desc,
                              struct fota_metric_hist *hists)
{
    if (!hists || !desc || desc->n == 0 || desc->type != FOTA_METRIC_HISTOGRAM ||
        (!desc->labels && desc->n != 1))
        return FOTA_EINVAL;
    struct fota_metric_part p = { .desc = desc, .hists = hists };
    return part_add(srv, &p);
}

int fota_metric_register_fn(struct fota_server *srv, const struct fota_metric_desc *desc,
                            fota_metric_collect_fn fn, void *ud)
{
    if (!fn || !desc || desc->type == FOTA_METRIC_HISTOGRAM)
        return FOTA_EINVAL;
    struct fota_metric_part p = { .desc = desc, .collect = fn, .ud = ud };
    return part_add(srv, &p);
}

/* name{labels} or name{labels,extra} or name, without the value. */
static void series(struct evbuffer *b, const char *name, const char *suffix, const char *labels,
                   const char *extra)
{
    int l = labels && *labels, e = extra && *extra;
    evbuffer_add_printf(b, "%s%s%s%s%s%s%s", name, suffix, l || e ? "{" : "", l ? labels : "",
                        l && e ? "," : "", e ? extra : "", l || e ? "}" : "");
}

void fota_metric_put(struct fota_metric_out *o, const char *labels, int64_t v)
{
    series(o->buf, o->name, "", labels, NULL);
    evbuffer_add_printf(o->buf, " %" PRId64 "\n", v);
}

void fota_metric_put_ns(struct fota_metric_out *o, const char *labels, int64_t ns)
{
    series(o->buf, o->name, "", labels, NULL);
    const char *sign = ns < 0 ? "-" : "";
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    evbuffer_add_printf(o->buf, " %s%" PRIu64 ".%09" PRIu64 "\n", sign, a / 1000000000u,
                        a % 1000000000u);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
        return 0;   /* overlong, surrogates */
    if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || s[0] > 0xf4 ||
                     (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;   /* overlong, beyond U+10FFFF */
    return len;
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void label_value(struct evbuffer *b, const char *v)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t n = strlen(v);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(s + i, n - i);
        if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
            evbuffer_add(b, s[i] == '\n' ? "\\n" : "?", s[i] == '\n' ? 2 : 1);
            i++;
        } else if (s[i] == '\\' || s[i] == '"') {
            evbuffer_add(b, s[i] == '\\' ? "\\\\" : "\\\"", 2);
            i++;
        } else {
            evbuffer_add(b, s + i, k);
            i += k;
        }
    }
}

void fota_metric_put_kv(struct fota_metric_out *o, int64_t v, size_t n,
                        const char *const *names, const char *const *values)
{
    evbuffer_add_printf(o->buf, "%s", o->name);
    for (size_t i = 0; i < n; i++) {
        evbuffer_add_printf(o->buf, "%s%s=\"", i ? "," : "{", names[i]);
        label_value(o->buf, values[i] ? values[i] : "");
        evbuffer_add(o->buf, "\"", 1);
    }
    evbuffer_add_printf(o->buf, "%s %" PRId64 "\n", n ? "}" : "", v);
}

static void hist_series(struct evbuffer *b, const char *name, const char *labels,
                        const struct fota_metric_hist *h)
{
    uint64_t n[FOTA_METRIC_BUCKETS], cum = 0;
    for (unsigned i = 0; i < FOTA_METRIC_BUCKETS; i++)
        n[i] = __atomic_load_n(&h->n[i], __ATOMIC_RELAXED);
    uint64_t sum = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < FOTA_METRIC_BUCKETS; i++)
        cum += n[i];
    if (cum == 0 && labels && *labels)
        return;   /* a labelled series appears with its first observation */
    cum = 0;
    for (unsigned i = 0; i < FOTA_METRIC_BUCKETS; i++) {
        char le[32];
        cum += n[i];
        snprintf(le, sizeof le, "le=\"%s\"", bounds_text[i]);
        series(b, name, "_bucket", labels, le);
        evbuffer_add_printf(b, " %" PRIu64 "\n", cum);
    }
    series(b, name, "_sum", labels, NULL);
    evbuffer_add_printf(b, " %" PRIu64 ".%09" PRIu64 "\n", sum / 1000000000u, sum % 1000000000u);
    series(b, name, "_count", labels, NULL);
    evbuffer_add_printf(b, " %" PRIu64 "\n", cum);
}

static void part_render(const struct fota_metric_part *p, struct evbuffer *b)
{
    const struct fota_metric_desc *d = p->desc;
    if (p->collect) {
        struct fota_metric_out o = { b, d->name };
        p->collect(p->ud, &o);
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        const char *labels = d->labels ? d->labels[i] : NULL;
        if (d->type == FOTA_METRIC_HISTOGRAM) {
            hist_series(b, d->name, labels, &p->hists[i]);
            continue;
        }
        uint64_t v = fota_metric_get(&p->values[i]);
        series(b, d->name, "", labels, NULL);
        if (d->type == FOTA_METRIC_GAUGE)
            evbuffer_add_printf(b, " %" PRId64 "\n", (int64_t)v);
        else
            evbuffer_add_printf(b, " %" PRIu64 "\n", v);
    }
}

static void header(struct evbuffer *out, const struct fota_metric_desc *d)
{
    static const char *const type_name[] = { "", "counter", "gauge", "histogram" };
    evbuffer_add_printf(out, "# HELP %s ", d->name);
    for (const char *h = d->help; *h; h++)   /* HELP escapes \\ and newline */
        evbuffer_add(out, *h == '\\' ? "\\\\" : *h == '\n' ? "\\n" : h,
                     *h == '\\' || *h == '\n' ? 2 : 1);
    evbuffer_add_printf(out, "\n# TYPE %s %s\n", d->name, type_name[d->type]);
}

void fota_metric_begin(struct fota_metric_out *o, const struct fota_metric_desc *desc)
{
    header(o->buf, desc);
    o->name = desc->name;
}

void fota_metric_render(const struct fota_metrics *reg, struct evbuffer *out)
{
    for (unsigned i = 0; i < reg->n; i++) {
        const struct fota_metric_desc *d = reg->part[i].desc;
        unsigned j = 0;
        while (j < i && strcmp(reg->part[j].desc->name, d->name) != 0)
            j++;
        if (j < i)
            continue;   /* rendered with the first part of its name */
        header(out, d);
        for (unsigned k = i; k < reg->n; k++)
            if (strcmp(reg->part[k].desc->name, d->name) == 0)
                part_render(&reg->part[k], out);
    }
}
