/* store_test_util.h - fixtures shared by the store unit tests: a fresh store
 * per test (SQLite in a mkdtemp dir under /tmp) and row builders.
 * Everything is static inline so each test program takes what it uses. */
#ifndef FOTA_STORE_TEST_UTIL_H
#define FOTA_STORE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sqlite3.h>
#include "store/store.h"

struct ctx {
    struct fota_store *s;
    char path[256];
};

static char tmpdir[64];
static int db_counter;
static int log_errors;

/* Creates the per-program temp dir that SQLite test databases live in. */
static inline int make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fota-store-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

static inline void test_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (level >= FOTA_LOG_ERROR)
        log_errors++;
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, msg);
}

static inline void remove_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static inline struct fota_store *open_sqlite(const char *path)
{
    struct fota_store *s = NULL;
    char err[256] = "";
    int rc = fota_store_sqlite_open(path, test_log, NULL, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "sqlite open %s: %s\n", path, err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static inline int open_store(void **state)
{
    struct ctx *c = *state;

    log_errors = 0;
    snprintf(c->path, sizeof c->path, "%s/t%d.db", tmpdir, ++db_counter);
    c->s = open_sqlite(c->path);
    assert_string_equal(c->s->ops->name, "sqlite");
    return 0;
}

static inline int close_store(void **state)
{
    struct ctx *c = *state;

    fota_store_close(c->s);
    c->s = NULL;
    remove_db(c->path);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static inline int64_t mk_product(struct fota_store *s, const char *name)
{
    struct fota_product p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.serial, sizeof p.serial, "serial-%s", name);
    snprintf(p.description, sizeof p.description, "product %s", name);
    p.flash_map = 4;
    assert_int_equal(s->ops->product_create(s, &p), 0);
    assert_true(p.id > 0);
    return p.id;
}

static inline void fake_hash(char out[FOTA_HASH_HEX], int seed)
{
    for (int i = 0; i < 64; i++)
        out[i] = "0123456789abcdef"[(seed * 7 + i) & 15];
    out[64] = '\0';
}

static inline void fill_rom(struct fota_rom *r, int64_t product_id, const char *version)
{
    memset(r, 0, sizeof *r);
    r->product_id = product_id;
    snprintf(r->version, sizeof r->version, "%s", version);
    snprintf(r->codename, sizeof r->codename, "code-%s", version);
    snprintf(r->changelog, sizeof r->changelog, "changes in %s\nline two", version);
    r->nfiles = 2;
    snprintf(r->files[0].name, sizeof r->files[0].name, "user1.bin");
    fake_hash(r->files[0].sha256, 1);
    r->files[0].size = 300000;
    r->files[0].slot = 1;
    snprintf(r->files[1].name, sizeof r->files[1].name, "user2.bin");
    fake_hash(r->files[1].sha256, 2);
    r->files[1].size = 300004;
    r->files[1].slot = 2;
}

static inline int64_t mk_rom(struct fota_store *s, int64_t product_id, const char *version)
{
    struct fota_rom r;
    fill_rom(&r, product_id, version);
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    assert_true(r.id > 0);
    return r.id;
}

static inline int64_t mk_device(struct fota_store *s, int64_t product_id, const char *name, int activated)
{
    struct fota_device d;
    memset(&d, 0, sizeof d);
    d.product_id = product_id;
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.bssid, sizeof d.bssid, "18:fe:34:00:00:01");
    d.activated = activated;
    d.activated_at = activated ? 1700000000 : 0;
    snprintf(d.rom_version, sizeof d.rom_version, "v1.0");
    assert_int_equal(s->ops->device_create(s, &d), 0);
    assert_true(d.id > 0);
    return d.id;
}


static inline int64_t add_msg(struct fota_store *s, int64_t product, int64_t device, const char *action)
{
    struct fota_message m;
    memset(&m, 0, sizeof m);
    m.product_id = product;
    m.device_id = device;
    snprintf(m.action, sizeof m.action, "%s", action);
    snprintf(m.body, sizeof m.body, "{\"a\": \"%s\"}", action);
    assert_int_equal(s->ops->message_add(s, &m), 0);
    assert_true(m.id > 0 && m.created > 1600000000);
    return m.id;
}


#endif
