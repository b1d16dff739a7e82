/* metric.h - fotad's metrics: counters, gauges and latency histograms that
 * the modules bump where things happen, and the registry that renders them
 * in the Prometheus text format (version 0.0.4) when the metrics module is
 * scraped (docs/metrics.md lists every metric).
 *
 * A value is one 64-bit word changed with one relaxed atomic operation: no
 * lock, no allocation, any thread. A value only one thread ever writes (a
 * loop's own shard) may use the _local variants: a plain load and store,
 * which other threads may still read. A histogram counts observations in
 * FOTA_METRIC_BUCKETS buckets over one fixed set of bounds (100 us .. 30 s,
 * every duration fotad measures) and sums them in nanoseconds: an
 * observation is two relaxed adds.
 *
 * Registration happens in a module's start() (main thread, before the worker
 * loops run) and never changes afterwards: the registry keeps pointers to
 * the module's descriptors (static) and values (its state), which live until
 * its stop(). The metrics module, last in main.c's table, stops first, so
 * nothing renders them after. No allocation: at most FOTA_METRIC_PARTS_MAX
 * parts.
 *
 * Names follow Prometheus conventions: `fota_` prefix, the unit in the name
 * (`_seconds`, `_bytes`), counters end in `_total`. Parts registered by
 * several modules may share a name (fota_refused_total: device channel,
 * HTTP, legacy): they render under one HELP and TYPE. A part's labels are
 * fixed strings, so its series are bounded by construction; values that come
 * from data (product names, versions) appear only through collectors, which
 * escape them (fota_metric_put_kv) and bound them themselves. */
#ifndef FOTA_METRIC_H
#define FOTA_METRIC_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* A counter or a gauge (a gauge's int64 in two's complement). */
struct fota_metric {
    uint64_t v;
};

static inline void fota_metric_add(struct fota_metric *m, uint64_t n)
{
    __atomic_fetch_add(&m->v, n, __ATOMIC_RELAXED);
}

static inline void fota_metric_inc(struct fota_metric *m)
{
    fota_metric_add(m, 1);
}

/* Gauges: down by one, or set. */
static inline void fota_metric_dec(struct fota_metric *m)
{
    __atomic_fetch_sub(&m->v, 1, __ATOMIC_RELAXED);
}

static inline void fota_metric_set(struct fota_metric *m, int64_t v)
{
    __atomic_store_n(&m->v, (uint64_t)v, __ATOMIC_RELAXED);
}

/* The caller's thread is the only writer of m (a per-loop shard): no locked
 * instruction, still readable from the scraping thread. */
static inline void fota_metric_add_local(struct fota_metric *m, int64_t n)
{
    __atomic_store_n(&m->v, __atomic_load_n(&m->v, __ATOMIC_RELAXED) + (uint64_t)n,
                     __ATOMIC_RELAXED);
}

static inline uint64_t fota_metric_get(const struct fota_metric *m)
{
    return __atomic_load_n(&m->v, __ATOMIC_RELAXED);
}

/* Upper bounds in nanoseconds: 100 us, 250 us, 500 us, 1 ms ... 10 s, 30 s,
 * then +Inf. */
#define FOTA_METRIC_BUCKETS 18
extern const int64_t fota_metric_bounds_ns[FOTA_METRIC_BUCKETS - 1];

struct fota_metric_hist {
    uint64_t n[FOTA_METRIC_BUCKETS];   /* observations per bucket (not cumulative) */
    uint64_t sum_ns;
};

/* One observation of ns nanoseconds (negative: 0). */
static inline void fota_metric_observe(struct fota_metric_hist *h, int64_t ns)
{
    unsigned i = 0;
    if (ns < 0)
        ns = 0;
    while (i < FOTA_METRIC_BUCKETS - 1 && ns > fota_metric_bounds_ns[i])
        i++;
    __atomic_fetch_add(&h->n[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum_ns, (uint64_t)ns, __ATOMIC_RELAXED);
}

enum fota_metric_type {
    FOTA_METRIC_COUNTER = 1,
    FOTA_METRIC_GAUGE,
    FOTA_METRIC_HISTOGRAM
};

/* What a part is: name, help, type, and its n series' labels, each a fixed
 * text such as `listener="device",reason="per_addr"` (NULL labels: one
 * series without labels). A histogram series with labels is left out of the
 * output until it has an observation (a store op never called). */
struct fota_metric_desc {
    const char *name;
    const char *help;
    int type;                          /* enum fota_metric_type */
    size_t n;
    const char *const *labels;
};

/* The families several modules share, each module registering its own
 * part with its own labels (one HELP text for all). */
#define FOTA_METRIC_REFUSED(n, labels)                                                        \
    { "fota_refused_total",                                                                   \
      "Connections and requests refused or closed before any work, by listener and reason.", \
      FOTA_METRIC_COUNTER, (n), (labels) }
#define FOTA_METRIC_DOWNLOADS_IN_FLIGHT(n, labels)                                           \
    { "fota_downloads_in_flight", "Firmware images being sent, by endpoint.",                 \
      FOTA_METRIC_GAUGE, (n), (labels) }
#define FOTA_METRIC_DOWNLOAD_BYTES(n, labels)                                                \
    { "fota_download_bytes_total", "Firmware bytes written to sockets, by endpoint.",          \
      FOTA_METRIC_COUNTER, (n), (labels) }

/* A collector writes its part's samples at scrape time, on the scraping
 * thread (any loop): it reads only what is safe from there (atomics, the
 * store). */
struct fota_metric_out;
typedef void (*fota_metric_collect_fn)(void *ud, struct fota_metric_out *out);

#define FOTA_METRIC_PARTS_MAX 64

struct fota_metric_part {
    const struct fota_metric_desc *desc;
    struct fota_metric *values;        /* counters and gauges: desc->n */
    struct fota_metric_hist *hists;    /* histograms: desc->n */
    fota_metric_collect_fn collect;    /* or a collector */
    void *ud;
};

/* Lives in struct fota_server (server.h); all zero is empty. */
struct fota_metrics {
    struct fota_metric_part part[FOTA_METRIC_PARTS_MAX];
    unsigned n;
};

struct fota_server;

/* Registers desc's series with their values (counters and gauges: values[n];
 * histograms: hists[n]) or a collector (fn, ud; desc->n and labels unused).
 * 0, FOTA_EINVAL (a name that is not a metric name, a type that differs
 * from an earlier part of the same name, no values), FOTA_ETOOBIG when the
 * registry is full. */
int fota_metric_register(struct fota_server *srv, const struct fota_metric_desc *desc,
                         struct fota_metric *values);
int fota_metric_register_hist(struct fota_server *srv, const struct fota_metric_desc *desc,
                              struct fota_metric_hist *hists);
int fota_metric_register_fn(struct fota_server *srv, const struct fota_metric_desc *desc,
                            fota_metric_collect_fn fn, void *ud);

/* Appends every registered part to out in the text format: parts of one
 * name together, under one HELP and TYPE line, in registration order. Any
 * thread, once the modules started. */
void fota_metric_render(const struct fota_metrics *reg, struct evbuffer *out);

/* Collectors: one sample of the part being written. labels is NULL or fixed
 * text (`state="running"`); put_kv takes n label names (fixed) and values
 * (any text: escaped, control characters and invalid UTF-8 shown as '?'). */
void fota_metric_put(struct fota_metric_out *o, const char *labels, int64_t v);
void fota_metric_put_kv(struct fota_metric_out *o, int64_t v, size_t n,
                        const char *const *names, const char *const *values);
/* A sample in seconds given in nanoseconds, printed exactly. */
void fota_metric_put_ns(struct fota_metric_out *o, const char *labels, int64_t ns);
/* A collector that writes several families (one store query feeding
 * them all) starts each after its first with this: desc's HELP and TYPE,
 * then the samples that follow belong to desc->name. A name started this
 * way must not be registered by any part. */
void fota_metric_begin(struct fota_metric_out *o, const struct fota_metric_desc *desc);

#endif
