/* store_cases_tags.c - conformance cases of devices' tags and of a queued
 * command's end: tags added, removed and set on one device or many at once
 * (all or nothing), their limits (also with two handles adding at once),
 * the tags of a product with their counts, a deleted device's tags gone, a
 * reopen keeping them, no generation move;
 * command_cancel of a queued command (and its refusals) and
 * command_create_replacing (the queued commands of the same action, and
 * only they, cancelled in the same transaction). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "fota_str.h"
#include "store_fixture.h"

/* The device's tags joined by ',' ("" for none). */
static const char *tags_of(struct fota_store *s, int64_t dev, char *buf, size_t cap)
{
    char(*t)[FOTA_TAG_MAX] = NULL;
    size_t n = 0, len = 0;
    assert_int_equal(s->ops->device_tags(s, dev, &t, &n), 0);
    assert_non_null(t);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", t[i]);
    free(t);
    return buf;
}

static void test_tags_edit(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p");
    int64_t a = mk_device(s, pid, "a", 0), b = mk_device(s, pid, "b", 0);
    char buf[512];
    uint64_t gen = fota_store_generation(s);
    const char *two[] = { "zeta", "Alpha" }, *dup[] = { "x", "x" }, *one[] = { "zeta" };

    assert_string_equal(tags_of(s, a, buf, sizeof buf), "");
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_ADD, two, 2), 0);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "Alpha,zeta");     /* strcmp order */
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_ADD, one, 1), 0);
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_ADD, dup, 2), 0);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "Alpha,x,zeta");
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_REMOVE, one, 1), 0);
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_REMOVE, one, 1), 0);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "Alpha,x");
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_SET, one, 1), 0);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "zeta");
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_SET, NULL, 0), 0);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "");
    assert_string_equal(tags_of(s, b, buf, sizeof buf), "");
    /* many devices at once */
    int64_t both[] = { a, b };
    assert_int_equal(s->ops->device_tags_edit(s, both, 2, FOTA_TAGS_ADD, two, 2), 0);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "Alpha,zeta");
    assert_string_equal(tags_of(s, b, buf, sizeof buf), "Alpha,zeta");
    /* tags are not cached: no new generation */
    assert_int_equal(fota_store_generation(s), gen);
    /* and they stay */
    store_fixture_reopen(store_fx(state));
    s = store_of(state);
    assert_string_equal(tags_of(s, b, buf, sizeof buf), "Alpha,zeta");
}

static void test_tags_refused(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p");
    int64_t a = mk_device(s, pid, "a", 0), b = mk_device(s, pid, "b", 0);
    char buf[2048], name[FOTA_TAG_MAX + 8];
    const char *one[] = { "keep" };

    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_ADD, one, 1), 0);
    /* an unknown device anywhere in the list: nothing is written */
    int64_t mixed[] = { b, a + 1000 };
    const char *nt[] = { "new" };
    assert_int_equal(s->ops->device_tags_edit(s, mixed, 2, FOTA_TAGS_ADD, nt, 1), FOTA_ENOENT);
    assert_string_equal(tags_of(s, b, buf, sizeof buf), "");
    char(*t)[FOTA_TAG_MAX] = NULL;
    size_t n = 3;
    assert_int_equal(s->ops->device_tags(s, a + 1000, &t, &n), FOTA_ENOENT);
    /* invalid tags and modes */
    static const char *const bad[] = { "", "with space", "comma,", "slash/", "ünï", NULL };
    for (int i = 0; bad[i]; i++) {
        assert_false(fota_store_tag_valid(bad[i]));
        assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_ADD, &bad[i], 1),
                         FOTA_EINVAL);
    }
    memset(name, 'x', FOTA_TAG_MAX - 1);
    name[FOTA_TAG_MAX - 1] = '\0';
    assert_true(fota_store_tag_valid(name));             /* 63 characters */
    name[FOTA_TAG_MAX - 1] = 'x';
    name[FOTA_TAG_MAX] = '\0';
    assert_false(fota_store_tag_valid(name));            /* 64 */
    assert_true(fota_store_tag_valid("site=berlin:floor-2_a.b"));
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, 0, one, 1), FOTA_EINVAL);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "keep");
    /* at most FOTA_TAGS_PER_DEVICE: the one too many refuses the whole edit */
    char many[FOTA_TAGS_PER_DEVICE + 1][16];
    const char *ptr[FOTA_TAGS_PER_DEVICE + 1];
    for (int i = 0; i <= FOTA_TAGS_PER_DEVICE; i++) {
        snprintf(many[i], sizeof many[i], "t%02d", i);
        ptr[i] = many[i];
    }
    assert_int_equal(s->ops->device_tags_edit(s, &b, 1, FOTA_TAGS_SET, ptr,
                                              FOTA_TAGS_PER_DEVICE), 0);
    assert_int_equal(s->ops->device_tags_edit(s, &b, 1, FOTA_TAGS_ADD, &ptr[FOTA_TAGS_PER_DEVICE],
                                              1), FOTA_ERANGE);
    int64_t ab[] = { a, b };
    assert_int_equal(s->ops->device_tags_edit(s, ab, 2, FOTA_TAGS_ADD, &ptr[FOTA_TAGS_PER_DEVICE],
                                              1), FOTA_ERANGE);
    assert_string_equal(tags_of(s, a, buf, sizeof buf), "keep");   /* a's part undone too */
    assert_int_equal(s->ops->device_tags_edit(s, &b, 1, FOTA_TAGS_SET, ptr,
                                              FOTA_TAGS_PER_DEVICE + 1), FOTA_ERANGE);
    /* adding one it has is no growth */
    assert_int_equal(s->ops->device_tags_edit(s, &b, 1, FOTA_TAGS_ADD, ptr, 1), 0);
}

static void test_tag_list_and_delete(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "p"), r = mk_product(s, "r");
    int64_t a = mk_device(s, p, "a", 0), b = mk_device(s, p, "b", 0), c = mk_device(s, r, "c", 0);
    const char *ab[] = { "beta", "canary" }, *bt[] = { "beta" };
    int64_t both[] = { a, b };
    struct fota_tag_count *t = NULL;
    size_t n = 0;

    assert_int_equal(s->ops->tag_list(s, p, &t, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(t);
    free(t);
    assert_int_equal(s->ops->device_tags_edit(s, both, 2, FOTA_TAGS_ADD, bt, 1), 0);
    assert_int_equal(s->ops->device_tags_edit(s, &a, 1, FOTA_TAGS_ADD, ab, 2), 0);
    assert_int_equal(s->ops->device_tags_edit(s, &c, 1, FOTA_TAGS_ADD, ab, 2), 0);
    assert_int_equal(s->ops->tag_list(s, p, &t, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].tag, "beta");
    assert_int_equal(t[0].devices, 2);
    assert_string_equal(t[1].tag, "canary");
    assert_int_equal(t[1].devices, 1);
    free(t);
    assert_int_equal(s->ops->tag_list(s, 0, &t, &n), 0);     /* every product */
    assert_int_equal(n, 2);
    assert_int_equal(t[0].devices, 3);
    assert_int_equal(t[1].devices, 2);
    free(t);
    /* a deleted device takes its tags along */
    assert_int_equal(s->ops->device_delete(s, a), 0);
    assert_int_equal(s->ops->tag_list(s, p, &t, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].tag, "beta");
    assert_int_equal(t[0].devices, 1);
    free(t);
    struct fota_device_query q;
    struct fota_device *rows = NULL;
    int64_t total = 0;
    size_t m = 0;
    memset(&q, 0, sizeof q);
    q.sel.online = -1;
    q.sel.tags[0] = "canary";
    q.sel.ntags = 1;
    assert_int_equal(s->ops->device_page(s, &q, 0, &rows, &m, &total), 0);
    assert_int_equal(m, 1);
    assert_int_equal(rows[0].id, c);
    free(rows);
}

/* Two store handles on one database (two fotad, or two threads of one on
 * PostgreSQL) adding two tags each at once to a device that has room for
 * two: one edit is whole, the other refused whole, each time. */
struct tagger {
    struct fota_store *s;
    int64_t dev;
    const char *tags[2];
    pthread_barrier_t *go;
    int rc;
};

static void *tag_run(void *arg)
{
    struct tagger *w = arg;

    pthread_barrier_wait(w->go);
    w->rc = w->s->ops->device_tags_edit(w->s, &w->dev, 1, FOTA_TAGS_ADD, w->tags, 2);
    return NULL;
}

static void test_tags_limit_race(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_store *s = fx->s, *s2 = NULL;
    int64_t dev = mk_device(s, mk_product(s, "p"), "a", 0);
    char base[FOTA_TAGS_PER_DEVICE - 2][8];
    const char *ptr[FOTA_TAGS_PER_DEVICE - 2];
    pthread_barrier_t go;
    pthread_t t[2];

    for (int i = 0; i < FOTA_TAGS_PER_DEVICE - 2; i++) {
        snprintf(base[i], sizeof base[i], "b%02d", i);
        ptr[i] = base[i];
    }
    assert_int_equal(fx->backend->open(fx, &s2), 0);
    for (int round = 0; round < 20; round++) {
        struct tagger w[2] = {
            { .s = s, .dev = dev, .tags = { "x1", "x2" }, .go = &go },
            { .s = s2, .dev = dev, .tags = { "y1", "y2" }, .go = &go },
        };
        char(*have)[FOTA_TAG_MAX] = NULL;
        size_t n = 0;
        assert_int_equal(s->ops->device_tags_edit(s, &dev, 1, FOTA_TAGS_SET, ptr,
                                                  FOTA_TAGS_PER_DEVICE - 2), 0);
        assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, tag_run, &w[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        assert_true((w[0].rc == 0 && w[1].rc == FOTA_ERANGE) ||
                    (w[0].rc == FOTA_ERANGE && w[1].rc == 0));
        assert_int_equal(s->ops->device_tags(s, dev, &have, &n), 0);
        free(have);
        assert_int_equal(n, FOTA_TAGS_PER_DEVICE);
    }
    fota_store_close(s2);
    assert_int_equal(store_log_errors, 0);
}

/* ---- commands */

static int64_t cmd(struct fota_store *s, int64_t dev, const char *action, int state)
{
    struct fota_command c;
    memset(&c, 0, sizeof c);
    c.device_id = dev;
    fota_str_copy(c.action, sizeof c.action, action);
    c.params = json_pack("{s:s}", "version", "v1");
    c.state = state;
    assert_int_equal(s->ops->command_create(s, &c), 0);
    json_decref(c.params);
    return c.id;
}

static int state_of(struct fota_store *s, int64_t id)
{
    struct fota_command c;
    assert_int_equal(s->ops->command_get(s, id, &c), 0);
    int st = c.state;
    fota_store_command_cleanup(&c);
    return st;
}

static void test_command_cancel(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p");
    int64_t d = mk_device(s, pid, "d", 1), e = mk_device(s, pid, "e", 1);
    int64_t q1 = cmd(s, d, "sys_upgrade", 0), sent = cmd(s, d, "sys_upgrade", FOTA_CMD_DELIVERED);
    int64_t q2 = cmd(s, d, "sys_reboot", 0);
    struct fota_command out;
    uint64_t gen = fota_store_generation(s);

    assert_int_equal(s->ops->command_cancel(s, d, q1, NULL, &out), 0);
    assert_int_equal(out.id, q1);
    assert_int_equal(out.state, FOTA_CMD_CANCELLED);
    assert_json_text(out.result, "{\"cancelled\": \"by request\"}");
    assert_json_text(out.params, "{\"version\": \"v1\"}");
    fota_store_command_cleanup(&out);
    assert_int_equal(state_of(s, q1), FOTA_CMD_CANCELLED);
    /* again: no longer queued */
    assert_int_equal(s->ops->command_cancel(s, d, q1, NULL, &out), FOTA_EBUSY);
    assert_int_equal(out.state, FOTA_CMD_CANCELLED);
    fota_store_command_cleanup(&out);
    /* delivered: refused, unchanged */
    assert_int_equal(s->ops->command_cancel(s, d, sent, NULL, &out), FOTA_EBUSY);
    assert_int_equal(out.state, FOTA_CMD_DELIVERED);
    assert_null(out.result);
    fota_store_command_cleanup(&out);
    assert_int_equal(state_of(s, sent), FOTA_CMD_DELIVERED);
    /* another device's command, an unknown one */
    assert_int_equal(s->ops->command_cancel(s, e, q2, NULL, &out), FOTA_ENOENT);
    assert_int_equal(s->ops->command_cancel(s, d, q2 + 100, NULL, NULL), FOTA_ENOENT);
    assert_int_equal(state_of(s, q2), FOTA_CMD_QUEUED);
    /* a result of the caller's */
    json_t *why = json_of("{\"cancelled\": \"by the console\", \"user\": \"ann\"}");
    assert_int_equal(s->ops->command_cancel(s, d, q2, why, NULL), 0);
    json_decref(why);
    assert_int_equal(s->ops->command_get(s, q2, &out), 0);
    assert_int_equal(out.state, FOTA_CMD_CANCELLED);
    assert_json_text(out.result, "{\"cancelled\": \"by the console\", \"user\": \"ann\"}");
    fota_store_command_cleanup(&out);
    assert_int_equal(fota_store_generation(s), gen);
    /* a cancelled command stays cancelled after a restart */
    store_fixture_reopen(store_fx(state));
    assert_int_equal(state_of(store_of(state), q1), FOTA_CMD_CANCELLED);
}

static void test_command_create_replacing(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p");
    int64_t d = mk_device(s, pid, "d", 1), e = mk_device(s, pid, "e", 1);
    int64_t old1 = cmd(s, d, "sys_upgrade", 0), old2 = cmd(s, d, "sys_upgrade", 0);
    int64_t sent = cmd(s, d, "sys_upgrade", FOTA_CMD_DELIVERED);
    int64_t reboot = cmd(s, d, "sys_reboot", 0), other = cmd(s, e, "sys_upgrade", 0);
    int64_t replaced[4] = { 0 };
    size_t n = 9;
    struct fota_command c;

    memset(&c, 0, sizeof c);
    c.device_id = d;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    c.params = json_pack("{s:s}", "version", "v2");
    assert_int_equal(s->ops->command_create_replacing(s, &c, replaced, 4, &n), 0);
    json_decref(c.params);
    assert_true(c.id > other);
    assert_int_equal(c.state, FOTA_CMD_QUEUED);
    assert_true(c.nonce > 0);
    assert_int_equal(n, 2);
    assert_int_equal(replaced[0], old1);
    assert_int_equal(replaced[1], old2);
    struct fota_command r;
    char want[128];
    snprintf(want, sizeof want, "{\"cancelled\": \"replaced by command %lld\", \"replaced_by\": %lld}",
             (long long)c.id, (long long)c.id);
    assert_int_equal(s->ops->command_get(s, old1, &r), 0);
    assert_int_equal(r.state, FOTA_CMD_CANCELLED);
    assert_json_text(r.result, want);
    fota_store_command_cleanup(&r);
    assert_int_equal(state_of(s, old2), FOTA_CMD_CANCELLED);
    /* what is not a queued upgrade of d stays */
    assert_int_equal(state_of(s, sent), FOTA_CMD_DELIVERED);
    assert_int_equal(state_of(s, reboot), FOTA_CMD_QUEUED);
    assert_int_equal(state_of(s, other), FOTA_CMD_QUEUED);
    assert_int_equal(state_of(s, c.id), FOTA_CMD_QUEUED);
    /* d's queued commands: the reboot and the new upgrade */
    struct fota_command *list = NULL;
    size_t nl = 0;
    assert_int_equal(s->ops->command_list_device(s, d, FOTA_CMD_QUEUED, &list, &nl), 0);
    assert_int_equal(nl, 2);
    assert_int_equal(list[0].id, reboot);
    assert_int_equal(list[1].id, c.id);
    fota_store_command_list_free(list, nl);

    /* again, with room for no id and no count wanted */
    struct fota_command c2;
    memset(&c2, 0, sizeof c2);
    c2.device_id = d;
    snprintf(c2.action, sizeof c2.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create_replacing(s, &c2, NULL, 0, NULL), 0);
    assert_int_equal(state_of(s, c.id), FOTA_CMD_CANCELLED);
    n = 5;
    struct fota_command c3;
    memset(&c3, 0, sizeof c3);
    c3.device_id = d;
    snprintf(c3.action, sizeof c3.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create_replacing(s, &c3, replaced, 0, &n), 0);
    assert_int_equal(n, 1);
    /* an unknown device: nothing written */
    struct fota_command bad;
    memset(&bad, 0, sizeof bad);
    bad.device_id = e + 1000;
    snprintf(bad.action, sizeof bad.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create_replacing(s, &bad, NULL, 0, &n), FOTA_ENOENT);
    assert_int_equal(n, 0);
    bad.device_id = d;
    bad.action[0] = '\0';
    assert_int_equal(s->ops->command_create_replacing(s, &bad, NULL, 0, NULL), FOTA_EINVAL);
    assert_int_equal(state_of(s, c3.id), FOTA_CMD_QUEUED);
}

const struct CMUnitTest store_cases_tags[] = {
    cmocka_unit_test(test_tags_edit),
    cmocka_unit_test(test_tags_refused),
    cmocka_unit_test(test_tag_list_and_delete),
    cmocka_unit_test(test_tags_limit_race),
    cmocka_unit_test(test_command_cancel),
    cmocka_unit_test(test_command_create_replacing),
};
const size_t store_cases_tags_n = sizeof store_cases_tags / sizeof store_cases_tags[0];
