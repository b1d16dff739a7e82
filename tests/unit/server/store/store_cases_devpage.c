/* store_cases_devpage.c - conformance cases of device_page: every order,
 * both directions, walked a page at a time, gives every selected device
 * once and in order; a walk stays right while devices are added; each
 * filter (product, name, search, versions, tags, online, last check-in)
 * and their combination select what they say, with the total beside;
 * presence follows the one rule (the channel's column for nonos devices,
 * fota_arduino_online for arduino ones) and agrees with the census; bad
 * queries are EINVAL; a page is read-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "fota_str.h"
#include "store_fixture.h"

#define NDEV 37

static int64_t dev_full(struct fota_store *s, int64_t pid, const char *name, const char *bssid,
                        const char *version, int64_t last_active, int online)
{
    struct fota_device d;
    memset(&d, 0, sizeof d);
    d.product_id = pid;
    fota_str_copy(d.name, sizeof d.name, name);
    fota_str_copy(d.bssid, sizeof d.bssid, bssid);
    fota_str_copy(d.rom_version, sizeof d.rom_version, version);
    assert_int_equal(s->ops->device_create(s, &d), 0);
    d.last_active = last_active;
    d.online = online;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_PRESENCE), 0);
    return d.id;
}

/* A product of NDEV devices whose names, versions, check-ins and creation
 * times are in different orders, with ties in each. */
static int64_t fleet(struct fota_store *s, int64_t *ids)
{
    int64_t pid = mk_product(s, "fleet");
    static const char *const versions[] = { "v1.2", "v1.0", "", "v1.10", "v1.1" };
    for (int i = 0; i < NDEV; i++) {
        char name[32], mac[18];
        snprintf(name, sizeof name, "dev-%02d", (i * 11) % 17);  /* names repeat */
        snprintf(mac, sizeof mac, "18:fe:34:00:%02x:%02x", i / 7, i);
        ids[i] = dev_full(s, pid, name, mac, versions[i % 5], 1700000000 + (i * 7) % 5,
                          i % 3 == 0);
        if (i % 9 == 0)
            fota_clock_advance_ms(1000);                /* created: a few distinct seconds */
    }
    return pid;
}

static int cmp_for(int sort, int desc, const struct fota_device *a, const struct fota_device *b)
{
    int c = 0;
    switch (sort) {
    case FOTA_DEVICE_SORT_NAME: c = strcmp(a->name, b->name); break;
    case FOTA_DEVICE_SORT_VERSION: c = strcmp(a->rom_version, b->rom_version); break;
    case FOTA_DEVICE_SORT_LAST_ACTIVE:
        c = a->last_active < b->last_active ? -1 : a->last_active > b->last_active;
        break;
    case FOTA_DEVICE_SORT_CREATED: c = a->created < b->created ? -1 : a->created > b->created; break;
    default: break;
    }
    if (c == 0)
        c = a->id < b->id ? -1 : a->id > b->id;
    return desc ? -c : c;
}

static int g_sort, g_desc;
static int qcmp(const void *a, const void *b)
{
    return cmp_for(g_sort, g_desc, a, b);
}

/* Walks q's selection in pages of `limit`; returns every row (caller frees). */
static struct fota_device *walk(struct fota_store *s, struct fota_device_query *q, size_t limit,
                                size_t *n, int64_t *total)
{
    struct fota_device *all = calloc(1000, sizeof *all);
    size_t k = 0;
    assert_non_null(all);
    memset(&q->after, 0, sizeof q->after);
    q->limit = limit;
    for (int guard = 0; guard < 1000; guard++) {
        struct fota_device *rows = NULL;
        size_t m = 0;
        int64_t t = -1;
        assert_int_equal(s->ops->device_page(s, q, 1700000100, &rows, &m, &t), 0);
        assert_non_null(rows);
        assert_true(m <= limit);
        if (guard == 0)
            *total = t;
        assert_int_equal(t, *total);       /* the total ignores the position */
        for (size_t i = 0; i < m; i++)
            all[k++] = rows[i];
        if (m > 0)
            fota_device_key_of(&rows[m - 1], q->sort, &q->after);
        free(rows);
        if (m < limit)
            break;
    }
    *n = k;
    return all;
}

static void test_page_every_order(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t ids[NDEV];
    int64_t pid = fleet(s, ids);
    mk_device(s, mk_product(s, "other"), "elsewhere", 0);   /* not in pid */
    struct fota_device *ref = NULL;
    size_t nref = 0;
    assert_int_equal(s->ops->device_list(s, pid, &ref, &nref), 0);
    assert_int_equal(nref, NDEV);

    for (int sort = FOTA_DEVICE_SORT_ID; sort <= FOTA_DEVICE_SORT_CREATED; sort++) {
        for (int desc = 0; desc <= 1; desc++) {
            for (size_t limit = 1; limit <= 50; limit += 7) {
                struct fota_device_query q;
                memset(&q, 0, sizeof q);
                q.sel.product_id = pid;
                q.sel.online = -1;
                q.sort = sort;
                q.desc = desc;
                size_t n = 0;
                int64_t total = 0;
                struct fota_device *got = walk(s, &q, limit, &n, &total);
                g_sort = sort;
                g_desc = desc;
                qsort(ref, nref, sizeof *ref, qcmp);
                assert_int_equal(total, NDEV);
                assert_int_equal(n, NDEV);
                for (size_t i = 0; i < n; i++) {
                    assert_int_equal(got[i].id, ref[i].id);
                    assert_string_equal(got[i].name, ref[i].name);
                    assert_int_equal(got[i].online, ref[i].online);
                }
                free(got);
            }
        }
    }
    free(ref);
}

/* Devices added between two pages: the walk goes on from its position,
 * none of the first devices comes twice or is skipped. */
static void test_page_stable_under_inserts(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t ids[NDEV];
    int64_t pid = fleet(s, ids);
    struct fota_device_query q;
    memset(&q, 0, sizeof q);
    q.sel.product_id = pid;
    q.sel.online = -1;
    q.sort = FOTA_DEVICE_SORT_NAME;
    q.limit = 10;
    int seen[NDEV] = { 0 };
    size_t pages = 0, rows_seen = 0;
    for (;;) {
        struct fota_device *rows = NULL;
        size_t m = 0;
        assert_int_equal(s->ops->device_page(s, &q, 1700000100, &rows, &m, NULL), 0);
        for (size_t i = 0; i < m; i++) {
            rows_seen++;
            for (int j = 0; j < NDEV; j++)
                if (rows[i].id == ids[j])
                    seen[j]++;
            if (i > 0 || q.after.id)
                assert_true(strcmp(rows[i].name, q.after.text) >= 0);
            fota_device_key_of(&rows[i], q.sort, &q.after);
        }
        free(rows);
        if (m < q.limit)
            break;
        /* one name before every position, one after it */
        char name[32];
        snprintf(name, sizeof name, "aaa-%zu", pages);
        dev_full(s, pid, name, "", "v9", 0, 0);
        snprintf(name, sizeof name, "zzz-%zu", pages);
        dev_full(s, pid, name, "", "v9", 0, 0);
        pages++;
        assert_true(pages < 20);
    }
    for (int j = 0; j < NDEV; j++)
        assert_int_equal(seen[j], 1);
    assert_int_equal(rows_seen, NDEV + pages);   /* the later "zzz" ones only */
}

static size_t page_all(struct fota_store *s, const struct fota_device_sel *sel, int64_t *ids,
                       int64_t *total)
{
    struct fota_device_query q;
    struct fota_device *rows = NULL;
    size_t n = 0;
    memset(&q, 0, sizeof q);
    q.sel = *sel;
    assert_int_equal(s->ops->device_page(s, &q, 1700000100, &rows, &n, total), 0);
    for (size_t i = 0; i < n; i++)
        ids[i] = rows[i].id;
    free(rows);
    return n;
}

static struct fota_device_sel sel_of(int64_t pid)
{
    struct fota_device_sel sel;
    memset(&sel, 0, sizeof sel);
    sel.product_id = pid;
    sel.online = -1;
    return sel;
}

static void test_page_filters(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "plugs"), other = mk_product(s, "lamps");
    int64_t a = dev_full(s, pid, "kitchen-1", "18:fe:34:97:f3:cd", "v1.0", 1700000050, 1);
    int64_t b = dev_full(s, pid, "Kitchen-2", "18:fe:34:97:f3:ce", "v1.1", 1700000010, 0);
    int64_t c = dev_full(s, pid, "hall_50%", "5c:cf:7f:00:00:01", "v1.1", 0, 0);
    int64_t d = dev_full(s, other, "kitchen-3", "", "v1.0", 1700000090, 1);
    int64_t got[16], total = -1;
    const char *t_beta[] = { "beta" }, *t_both[] = { "beta", "floor:1" }, *t_floor[] = { "floor:1" };
    assert_int_equal(s->ops->device_tags_edit(s, (int64_t[]){ a, b }, 2, FOTA_TAGS_ADD, t_beta, 1), 0);
    assert_int_equal(s->ops->device_tags_edit(s, (int64_t[]){ a, d }, 2, FOTA_TAGS_ADD, t_floor, 1), 0);

    struct fota_device_sel sel = sel_of(pid);
    assert_int_equal(page_all(s, &sel, got, &total), 3);
    assert_int_equal(total, 3);
    sel.product_id = 0;                                  /* every product */
    assert_int_equal(page_all(s, &sel, got, &total), 4);
    assert_int_equal(total, 4);

    sel = sel_of(pid);
    sel.name = "kitchen-1";                              /* exact */
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], a);
    sel.name = "kitchen";
    assert_int_equal(page_all(s, &sel, got, &total), 0);
    assert_int_equal(total, 0);

    sel = sel_of(pid);
    sel.q = "KITCHEN";                                   /* name, ASCII case ignored */
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    assert_int_equal(total, 2);
    sel.q = "50%";                                       /* LIKE's own characters are text */
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], c);
    sel.q = "_";
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    sel.q = "F3:CD";                                     /* a MAC fragment, any case */
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], a);
    sel.q = "97f3c";                                     /* without separators */
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    sel.q = "97-f3-ce";
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], b);
    sel.q = "f3::cd";                                    /* not a MAC fragment: names only */
    assert_int_equal(page_all(s, &sel, got, &total), 0);

    sel = sel_of(pid);
    sel.versions[0] = "v1.1";
    sel.nversions = 1;
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    sel.versions[1] = "v1.0";                            /* one of them */
    sel.nversions = 2;
    assert_int_equal(page_all(s, &sel, got, &total), 3);
    sel.versions[0] = "";
    sel.nversions = 1;
    assert_int_equal(page_all(s, &sel, got, &total), 0);

    sel = sel_of(pid);
    sel.tags[0] = t_both[0];
    sel.ntags = 1;
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    sel.tags[1] = t_both[1];                             /* every one of them */
    sel.ntags = 2;
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], a);
    sel.tags[0] = "none";
    sel.ntags = 1;
    assert_int_equal(page_all(s, &sel, got, &total), 0);

    sel = sel_of(pid);
    sel.online = 1;
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], a);
    sel.online = 0;
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    assert_int_equal(total, 2);

    sel = sel_of(pid);
    sel.checkin_before = 1700000050;                     /* never seen counts as before */
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    assert_int_equal(got[0], b);
    assert_int_equal(got[1], c);
    sel.checkin_before = 0;
    sel.checkin_after = 1700000010;
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    sel.checkin_before = 1700000050;                     /* a range */
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], b);

    /* all together, across products */
    sel = sel_of(0);
    sel.q = "kitchen";
    sel.tags[0] = "floor:1";
    sel.ntags = 1;
    sel.versions[0] = "v1.0";
    sel.nversions = 1;
    sel.online = 1;
    sel.checkin_after = 1700000000;
    assert_int_equal(page_all(s, &sel, got, &total), 2);
    assert_int_equal(total, 2);
    assert_int_equal(got[0], a);
    assert_int_equal(got[1], d);

    /* the total counts the selection, the limit aside */
    struct fota_device_query q;
    struct fota_device *rows = NULL;
    size_t n = 0;
    memset(&q, 0, sizeof q);
    q.sel = sel_of(pid);
    q.limit = 1;
    assert_int_equal(s->ops->device_page(s, &q, 1700000100, &rows, &n, &total), 0);
    assert_int_equal(n, 1);
    assert_int_equal(total, 3);
    free(rows);
}

static void arduino_product(struct fota_store *s, int64_t pid, int64_t interval)
{
    struct fota_arduino_product ap;
    memset(&ap, 0, sizeof ap);
    ap.product_id = pid;
    ap.flash_mode = -1;
    ap.checkin_interval = interval;
    ap.confirm_after = 60;
    assert_int_equal(s->ops->arduino_product_put(s, &ap), 0);
}

static int64_t ard(struct fota_store *s, int64_t pid, const char *mac, int64_t chip,
                   int64_t checkin, const char *lwt)
{
    struct fota_device d;
    struct fota_arduino_device a;
    memset(&d, 0, sizeof d);
    memset(&a, 0, sizeof a);
    d.product_id = pid;
    fota_str_copy(d.name, sizeof d.name, mac);
    d.last_active = checkin;
    fota_str_copy(a.sta_mac, sizeof a.sta_mac, mac);
    a.chip_id = chip;
    a.last_checkin = checkin;
    assert_int_equal(s->ops->arduino_device_register(s, &d, &a), 0);
    if (lwt) {
        assert_int_equal(s->ops->arduino_device_get(s, d.id, &a), 0);
        fota_str_copy(a.mqtt_topic, sizeof a.mqtt_topic, "tasmota_X");
        fota_str_copy(a.mqtt_lwt, sizeof a.mqtt_lwt, lwt);
        assert_int_equal(s->ops->arduino_device_mqtt(s, &a), 0);
    }
    return d.id;
}

/* Arduino presence: one rule, the same in rows, filters, counts, the
 * census and fota_arduino_online. */
static void test_page_online_arduino(void **state)
{
    struct fota_store *s = store_of(state);
    const int64_t now = 1700001000;
    int64_t pid = mk_product(s, "sketches"), nonos = mk_product(s, "nonos");
    arduino_product(s, pid, 600);
    int64_t fresh = ard(s, pid, "5C:CF:7F:00:00:01", 1193046, now - 10, NULL);
    ard(s, pid, "5C:CF:7F:00:00:02", 42, now - 600, NULL);         /* just too old */
    ard(s, pid, "5C:CF:7F:00:00:03", -1, 0, NULL);                 /* never */
    int64_t mq_on = ard(s, pid, "5C:CF:7F:00:00:04", -1, 0, "Online");
    ard(s, pid, "5C:CF:7F:00:00:05", -1, now - 1, "Offline");      /* the LWT decides */
    int64_t ch = dev_full(s, nonos, "chan", "", "v1", 0, 1);
    /* a device of the arduino product without an arduino row: offline */
    dev_full(s, pid, "bare", "", "", now, 1);

    struct fota_device_query q;
    struct fota_device *rows = NULL;
    size_t n = 0;
    int64_t total = 0, want_online = 0;
    memset(&q, 0, sizeof q);
    q.sel = sel_of(pid);
    assert_int_equal(s->ops->device_page(s, &q, now, &rows, &n, &total), 0);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        struct fota_arduino_device a;
        int expect = 0;
        if (s->ops->arduino_device_get(s, rows[i].id, &a) == 0)
            expect = fota_arduino_online(&a, 600, now);
        assert_int_equal(rows[i].online, expect);
        want_online += expect;
    }
    free(rows);
    assert_int_equal(want_online, 2);

    q.sel.online = 1;
    assert_int_equal(s->ops->device_page(s, &q, now, &rows, &n, &total), 0);
    assert_int_equal(n, 2);
    assert_int_equal(total, 2);
    assert_int_equal(rows[0].id, fresh);
    assert_int_equal(rows[1].id, mq_on);
    free(rows);
    q.sel.online = 0;
    assert_int_equal(s->ops->device_page(s, &q, now, &rows, &n, &total), 0);
    assert_int_equal(total, 4);
    free(rows);

    /* across products: the nonos device by its channel column */
    q.sel = sel_of(0);
    q.sel.online = 1;
    assert_int_equal(s->ops->device_page(s, &q, now, &rows, &n, &total), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[2].id, ch);
    free(rows);

    /* the census counts the same devices online */
    struct fota_census_row *cr = NULL;
    size_t nc = 0;
    int64_t online = 0;
    assert_int_equal(s->ops->device_census(s, now, &cr, &nc), 0);
    for (size_t i = 0; i < nc; i++)
        if (cr[i].product_id == pid)
            online += cr[i].online;
    free(cr);
    assert_int_equal(online, 2);

    /* chip ids: decimal and hex (1193046 = 0x123456); STA MACs */
    int64_t got[8];
    struct fota_device_sel sel = sel_of(pid);
    sel.q = "1193046";
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    assert_int_equal(got[0], fresh);
    sel.q = "123456";
    assert_int_equal(page_all(s, &sel, got, &total), 1);
    sel.q = "7f:00:00:0";                                /* STA MACs and names */
    assert_int_equal(page_all(s, &sel, got, &total), 5);
}

static void test_page_invalid_and_read_only(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t ids[NDEV];
    int64_t pid = fleet(s, ids);
    struct fota_device_query q;
    struct fota_device *rows = (struct fota_device *)&q;
    size_t n = 5;
    int64_t total = 0;
    uint64_t gen = fota_store_generation(s);

    memset(&q, 0, sizeof q);
    q.sel = sel_of(pid);
    q.sort = 99;
    assert_int_equal(s->ops->device_page(s, &q, 0, &rows, &n, &total), FOTA_EINVAL);
    assert_null(rows);
    assert_int_equal(n, 0);
    q.sort = FOTA_DEVICE_SORT_NAME;
    q.sel.ntags = FOTA_SELECT_MAX + 1;
    assert_int_equal(s->ops->device_page(s, &q, 0, &rows, &n, &total), FOTA_EINVAL);
    q.sel.ntags = 0;
    q.sel.nversions = FOTA_SELECT_MAX + 1;
    assert_int_equal(s->ops->device_page(s, &q, 0, &rows, &n, &total), FOTA_EINVAL);
    /* the largest selection there is still works */
    q.sel.nversions = FOTA_SELECT_MAX;
    q.sel.ntags = FOTA_SELECT_MAX;
    for (int i = 0; i < FOTA_SELECT_MAX; i++) {
        q.sel.versions[i] = "v1.0";
        q.sel.tags[i] = "t";
    }
    q.sel.q = "dev-01";
    q.sel.name = "dev-01";
    q.sel.online = 1;
    q.sel.checkin_after = 1;
    q.sel.checkin_before = 2000000000;
    q.after.id = 1;
    q.limit = 3;
    assert_int_equal(s->ops->device_page(s, &q, 0, &rows, &n, &total), 0);
    assert_int_equal(n, 0);
    assert_int_equal(total, 0);
    free(rows);
    /* an unknown product selects nothing */
    memset(&q, 0, sizeof q);
    q.sel = sel_of(pid + 100);
    assert_int_equal(s->ops->device_page(s, &q, 0, &rows, &n, &total), 0);
    assert_int_equal(n, 0);
    assert_non_null(rows);
    free(rows);
    assert_int_equal(fota_store_generation(s), gen);
}

const struct CMUnitTest store_cases_devpage[] = {
    cmocka_unit_test(test_page_every_order),
    cmocka_unit_test(test_page_stable_under_inserts),
    cmocka_unit_test(test_page_filters),
    cmocka_unit_test(test_page_online_arduino),
    cmocka_unit_test(test_page_invalid_and_read_only),
};
const size_t store_cases_devpage_n = sizeof store_cases_devpage / sizeof store_cases_devpage[0];
