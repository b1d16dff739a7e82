/* metrics_store.c - the store's latency histograms: a timing shim around
 * struct fota_store_ops. The store handle keeps its backend's state; only
 * its ops pointer moves to a copy of the table whose every op reads the
 * monotonic clock, calls the backend's op and counts the duration in its
 * op's histogram (fota_store_op_duration_seconds{op=...}) and a failure
 * (any error but the expected ENOENT, EEXIST, EINVAL, EBUSY, ERANGE) in
 * fota_store_errors_total. Callers everywhere go through s->ops as before,
 * so no call site knows the shim is there. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "metrics.h"
#include "xmalloc.h"

/* Every op of struct fota_store_ops after the handle s: name, parameters,
 * arguments. close is not timed (it takes the shim away). */
#define STORE_OPS(X)                                                                              \
    X(product_create, (struct fota_product *p), (p))                                              \
    X(product_get, (int64_t id, struct fota_product *out), (id, out))                             \
    X(product_head, (int64_t id, struct fota_product *out), (id, out))                            \
    X(product_find, (const char *name, struct fota_product *out), (name, out))                    \
    X(product_list, (struct fota_product **out, size_t *n), (out, n))                             \
    X(product_heads, (struct fota_product **out, size_t *n), (out, n))                            \
    X(rom_create, (struct fota_rom *rom), (rom))                                                  \
    X(rom_get,                                                                                    \
      (int64_t product_id, const char *version, struct fota_rom *out),                            \
      (product_id, version, out))                                                                 \
    X(rom_list, (int64_t product_id, struct fota_rom **out, size_t *n), (product_id, out, n))     \
    X(rom_set_current, (int64_t product_id, const char *version), (product_id, version))          \
    X(rom_current, (int64_t product_id, struct fota_rom *out), (product_id, out))                 \
    X(device_create, (struct fota_device *d), (d))                                                \
    X(device_create_many,                                                                         \
      (struct fota_device *d, size_t n, fota_store_device_keys_fn keys, void *ud),                \
      (d, n, keys, ud))                                                                           \
    X(device_get, (int64_t id, struct fota_device *out), (id, out))                               \
    X(device_list,                                                                                \
      (int64_t product_id, struct fota_device **out, size_t *n),                                  \
      (product_id, out, n))                                                                       \
    X(device_update, (const struct fota_device *d, unsigned fields), (d, fields))                 \
    X(device_presence_batch, (const struct fota_presence *rows, size_t n), (rows, n))             \
    X(key_create, (const struct fota_key *k), (k))                                                \
    X(key_lookup, (const char *hash_hex, struct fota_key *out), (hash_hex, out))                  \
    X(key_delete_for_device, (int64_t device_id, int kind), (device_id, kind))                    \
    X(command_create, (struct fota_command *c), (c))                                              \
    X(command_update, (const struct fota_command *c), (c))                                        \
    X(command_get, (int64_t id, struct fota_command *out), (id, out))                             \
    X(command_find_nonce,                                                                         \
      (int64_t device_id, int64_t nonce, struct fota_command *out),                               \
      (device_id, nonce, out))                                                                    \
    X(command_list_device,                                                                        \
      (int64_t device_id, int state, struct fota_command **out, size_t *n),                       \
      (device_id, state, out, n))                                                                 \
    X(command_create_many,                                                                        \
      (const struct fota_command *tmpl, const int64_t *device_ids, int64_t *nonces, int64_t *ids, \
       size_t n),                                                                                 \
      (tmpl, device_ids, nonces, ids, n))                                                         \
    X(command_update_batch, (const struct fota_command_set *rows, size_t n), (rows, n))           \
    X(message_add, (struct fota_message *m), (m))                                                 \
    X(report_batch, (struct fota_report_row *rows, size_t n), (rows, n))                          \
    X(message_list,                                                                               \
      (const struct fota_message_filter *f, struct fota_message **out, size_t *n),                \
      (f, out, n))                                                                                \
    X(download_add,                                                                               \
      (int64_t device_id, int64_t file_id, int64_t bytes, int completed),                         \
      (device_id, file_id, bytes, completed))                                                     \
    X(download_add_batch, (const struct fota_download_row *rows, size_t n), (rows, n))            \
    X(download_bytes, (int64_t device_id, int64_t *bytes), (device_id, bytes))                    \
    X(transfer_add, (struct fota_transfer *t), (t))                                               \
    X(transfer_list, (size_t limit, struct fota_transfer **out, size_t *n), (limit, out, n))      \
    X(message_prune, (struct fota_retention *r, size_t *deleted, int *more), (r, deleted, more))  \
    X(transfer_prune, (struct fota_retention *r, size_t *deleted, int *more), (r, deleted, more)) \
    X(blob_refs, (char (**out)[FOTA_HASH_HEX], size_t *n), (out, n))                              \
    X(rom_delete,                                                                                 \
      (int64_t product_id, const char *version, struct fota_rom *out),                            \
      (product_id, version, out))                                                                 \
    X(device_delete, (int64_t id), (id))                                                          \
    X(product_delete, (int64_t id), (id))                                                         \
    X(arduino_product_put, (const struct fota_arduino_product *p), (p))                           \
    X(arduino_product_get,                                                                        \
      (int64_t product_id, struct fota_arduino_product *out),                                     \
      (product_id, out))                                                                          \
    X(arduino_blob_put, (const struct fota_arduino_blob *b, size_t n), (b, n))                    \
    X(arduino_blob_get, (const char *sha256, struct fota_arduino_blob *out), (sha256, out))       \
    X(arduino_device_register, (struct fota_device *d, struct fota_arduino_device *a), (d, a))    \
    X(arduino_device_find,                                                                        \
      (int64_t product_id, const char *sta_mac, const char *name,                                 \
       struct fota_arduino_device *out),                                                          \
      (product_id, sta_mac, name, out))                                                           \
    X(arduino_device_get, (int64_t device_id, struct fota_arduino_device *out), (device_id, out)) \
    X(arduino_device_list,                                                                        \
      (int64_t product_id, struct fota_arduino_device **out, size_t *n),                          \
      (product_id, out, n))                                                                       \
    X(arduino_device_report, (const struct fota_arduino_device *rows, size_t n), (rows, n))       \
    X(arduino_device_track, (const struct fota_arduino_device *a), (a))                           \
    X(arduino_device_mqtt, (const struct fota_arduino_device *a), (a))                            \
    X(arduino_device_served, (const struct fota_arduino_download *rows, size_t n), (rows, n))     \
    X(rollout_create, (struct fota_rollout_row *r), (r))                                          \
    X(rollout_save,                                                                               \
      (const struct fota_rollout_row *rs, size_t nr, const struct fota_rollout_member_row *ms,    \
       size_t nm),                                                                                \
      (rs, nr, ms, nm))                                                                           \
    X(rollout_get, (int64_t id, struct fota_rollout_row *out), (id, out))                         \
    X(rollout_list,                                                                               \
      (int64_t product_id, int state, struct fota_rollout_row **out, size_t *n),                  \
      (product_id, state, out, n))                                                                \
    X(rollout_members,                                                                            \
      (int64_t rollout_id, int64_t after_device, int state, size_t limit,                         \
       struct fota_rollout_member_row **out, size_t *n),                                          \
      (rollout_id, after_device, state, limit, out, n))                                           \
    X(rollout_sample_add, (const struct fota_rollout_sample *rows, size_t n), (rows, n))          \
    X(rollout_samples,                                                                            \
      (int64_t rollout_id, struct fota_rollout_sample **out, size_t *n),                          \
      (rollout_id, out, n))                                                                       \
    X(rollout_events_add, (const struct fota_rollout_event *rows, size_t n), (rows, n))          \
    X(rollout_events_take, (struct fota_rollout_event **out, size_t *n), (out, n))               \
    X(rollout_queued_held,                                                                        \
      (const int64_t *ids, size_t nids, int64_t instance_id, struct fota_rollout_member_row **out, \
       size_t *n),                                                                                \
      (ids, nids, instance_id, out, n))                                                           \
    X(device_census, (int64_t now, struct fota_census_row **out, size_t *n), (now, out, n))       \
    X(rollout_census, (int64_t *counts, size_t ncounts), (counts, ncounts))                      \
    X(device_page,                                                                                \
      (const struct fota_device_query *q, int64_t now, struct fota_device **out, size_t *n,       \
       int64_t *total),                                                                           \
      (q, now, out, n, total))                                                                    \
    X(device_tags_edit,                                                                           \
      (const int64_t *device_ids, size_t nd, int mode, const char *const *tags, size_t nt),       \
      (device_ids, nd, mode, tags, nt))                                                           \
    X(device_tags,                                                                                \
      (int64_t device_id, char (**out)[FOTA_TAG_MAX], size_t *n),                                 \
      (device_id, out, n))                                                                        \
    X(tag_list,                                                                                   \
      (int64_t product_id, struct fota_tag_count **out, size_t *n),                               \
      (product_id, out, n))                                                                       \
    X(command_cancel,                                                                             \
      (int64_t device_id, int64_t id, const struct json_t *result, struct fota_command *out),     \
      (device_id, id, result, out))                                                               \
    X(command_create_replacing,                                                                   \
      (struct fota_command *c, int64_t *replaced, size_t cap, size_t *nreplaced),                 \
      (c, replaced, cap, nreplaced))                                                              \
    X(product_census,                                                                             \
      (int64_t product_id, int64_t now, struct fota_census_row **out, size_t *n),                 \
      (product_id, now, out, n))                                                                  \
    X(product_activity,                                                                           \
      (int64_t product_id, int64_t since, int64_t until, int64_t step,                            \
       struct fota_activity_row **out, size_t *n),                                                \
      (product_id, since, until, step, out, n))                                                   \
    X(command_queued_devices,                                                                     \
      (const int64_t *device_ids, size_t n, uint8_t *queued),                                     \
      (device_ids, n, queued))                                                                    \
    X(command_reply,                                                                              \
      (int64_t device_id, int64_t nonce, int status, const struct json_t *result,                 \
       struct fota_command *out),                                                                 \
      (device_id, nonce, status, result, out))                                                    \
    X(blob_put, (const char *sha256, const void *data, size_t len), (sha256, data, len))          \
    X(blob_fetch,                                                                                 \
      (const char *sha256, int (*sink)(void *ud, const void *data, size_t len), void *ud,         \
       int64_t *size),                                                                            \
      (sha256, sink, ud, size))

#define OP_ENUM(op, params, args) OP_##op,
enum { STORE_OPS(OP_ENUM) NOPS };

#define OP_LABEL(op, params, args) "op=\"" #op "\"",
static const char *const op_labels[NOPS] = { STORE_OPS(OP_LABEL) };

static const struct fota_metric_desc duration_desc = {
    "fota_store_op_duration_seconds",
    "Time a store operation took, lock wait included, by operation.",
    FOTA_METRIC_HISTOGRAM, NOPS, op_labels
};
static const struct fota_metric_desc errors_desc = {
    "fota_store_errors_total",
    "Store operations that failed (database or disk errors; not found, duplicates, invalid and "
    "busy answers are not failures).",
    FOTA_METRIC_COUNTER, 1, NULL
};

/* The copy of the table the handle points at while timed. ops first: a
 * handle's ops pointer is the shim's address. */
struct timed {
    struct fota_store_ops ops;
    const struct fota_store_ops *inner;
    struct fota_metric errors;
    struct fota_metric_hist hist[NOPS];
};

static struct timed *timed_of(struct fota_store *s)
{
    return (struct timed *)(uintptr_t)s->ops;
}

static void count(struct timed *t, int op, int64_t t0, int rc)
{
    fota_metric_observe(&t->hist[op], fota_clock_mono_ns() - t0);
    if (rc < 0 && rc != FOTA_ENOENT && rc != FOTA_EEXIST && rc != FOTA_EINVAL && rc != FOTA_EBUSY &&
        rc != FOTA_ERANGE)
        fota_metric_inc(&t->errors);
}

#define WITH_S(...) (struct fota_store * s, __VA_ARGS__)
#define S_ARGS(...) (s, __VA_ARGS__)
#define OP_SHIM(op, params, args)                                                                \
    static int timed_##op WITH_S params                                                          \
    {                                                                                            \
        struct timed *shim_ = timed_of(s);                                                       \
        int64_t t0_ = fota_clock_mono_ns();                                                      \
        int rc_ = shim_->inner->op S_ARGS args;                                                  \
        count(shim_, OP_##op, t0_, rc_);                                                         \
        return rc_;                                                                              \
    }
STORE_OPS(OP_SHIM)

/* The backend's close, with its own table back first. */
static void timed_close(struct fota_store *s)
{
    struct timed *t = timed_of(s);
    s->ops = t->inner;
    free(t);
    s->ops->close(s);
}

int fota_metrics_store_wrap(struct fota_server *srv, struct fota_store *s)
{
    struct timed *t = fota_xcalloc(1, sizeof *t);
    t->inner = s->ops;
    t->ops = *s->ops;   /* an op not listed above stays untimed, never missing */
    t->ops.close = timed_close;
#define OP_SET(op, params, args) t->ops.op = t->inner->op ? timed_##op : NULL;
    STORE_OPS(OP_SET)
    s->ops = &t->ops;   /* installed either way: its close frees it */
    int rc = fota_metric_register_hist(srv, &duration_desc, t->hist);
    return rc < 0 ? rc : fota_metric_register(srv, &errors_desc, &t->errors);
}

size_t fota_metrics_store_untimed(const struct fota_store *s)
{
    const struct timed *t = (const struct timed *)(uintptr_t)s->ops;
    /* Every member after name is a function pointer: compare them slot by
     * slot with the backend's table. */
    size_t n = 0, first = offsetof(struct fota_store_ops, close) + sizeof t->ops.close;
    for (size_t off = first; off + sizeof(void (*)(void)) <= sizeof t->ops;
         off += sizeof(void (*)(void))) {
        void (*a)(void), (*b)(void);
        memcpy(&a, (const char *)&t->ops + off, sizeof a);
        memcpy(&b, (const char *)t->inner + off, sizeof b);
        n += a == b && a != NULL;
    }
    return n;
}
