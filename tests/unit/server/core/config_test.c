/* config_test.c - server/core/config.c over the union of core's rows and
 * the modules' (http, device, legacy): every default is valid, values parse and are
 * range-checked, INI loading reports FILE:LINE, flags override the file, a
 * port is configured at most once across the parts, and reload copies only
 * the reloadable rows of every part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fota_err.h"
#include "http.h"
#include "log.h"
#include "server.h"

/* The device and legacy modules' settings structs are private: the test
 * reads their rows' values through the tables. */
struct conf {
    struct fota_config core;
    struct fota_http_conf http;
    char device[256], legacy[256];
    struct fota_conf_set set;
};

static void conf_init(struct conf *c)
{
    memset(c, 0, sizeof(*c));
    assert_true(fota_device_module.conf_size <= sizeof(c->device));
    assert_true(fota_legacy_module.conf_size <= sizeof(c->legacy));
    assert_int_equal(fota_config_add_part(&c->set, "core", fota_config_opts, &c->core,
                                          fota_config_check_core), 0);
    assert_int_equal(fota_config_add_part(&c->set, "http", fota_http_module.conf_opts, &c->http,
                                          fota_http_module.conf_check), 0);
    assert_int_equal(fota_config_add_part(&c->set, "device", fota_device_module.conf_opts,
                                          c->device, fota_device_module.conf_check), 0);
    assert_int_equal(fota_config_add_part(&c->set, "legacy", fota_legacy_module.conf_opts,
                                          c->legacy, fota_legacy_module.conf_check), 0);
}

/* The value of a UINT or PORT row of any part. */
static int *row_int(struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->set.n; i++)
        for (const struct fota_conf_opt *o = c->set.part[i].opts; o->name; o++)
            if (strcmp(o->name, name) == 0)
                return (int *)(void *)((char *)c->set.part[i].base + o->offset);
    fail_msg("no row %s", name);
    return NULL;
}

static int legacy_int(struct conf *c, const char *name)
{
    return *row_int(c, name);
}

static void test_defaults(void **st)
{
    static struct conf c, d;
    char err[256];
    (void)st;
    conf_init(&c);
    fota_config_defaults(&c.set);
    assert_string_equal(c.core.data_dir, "./var");
    assert_string_equal(c.core.bind, "0.0.0.0");
    assert_string_equal(c.core.store, "sqlite");
    assert_int_equal(c.http.http_port, 80);
    assert_int_equal(c.http.https_port, 443);
    assert_int_equal(*row_int(&c, "device_port"), 8000);
    assert_int_equal(*row_int(&c, "device_tls_port"), 8443);
    assert_int_equal(legacy_int(&c, "legacy_port"), 5555);
    assert_true(c.http.max_upload == 16u * 1024 * 1024);
    assert_int_equal(c.core.log_level, FOTA_LOG_INFO);
    assert_int_equal(*row_int(&c, "ping_timeout"), 120);
    assert_int_equal(legacy_int(&c, "legacy_chunk"), 1280);
    assert_int_equal(fota_config_check(&c.set, err, sizeof(err)), 0);
    /* Every default of every part must be accepted by its own parser. */
    conf_init(&d);
    for (size_t i = 0; i < d.set.n; i++)
        for (const struct fota_conf_opt *o = d.set.part[i].opts; o->name; o++)
            if (fota_config_set(&d.set, o->name, o->def, err, sizeof(err)) != 0)
                fail_msg("default of %s rejected: %s", o->name, err);
    /* No row name appears twice in the union. */
    for (size_t i = 0; i < d.set.n; i++)
        for (const struct fota_conf_opt *a = d.set.part[i].opts; a->name; a++)
            for (size_t j = 0; j < d.set.n; j++)
                for (const struct fota_conf_opt *b = d.set.part[j].opts; b->name; b++)
                    if (a != b && strcmp(a->name, b->name) == 0)
                        fail_msg("row %s is defined twice", a->name);
}

static void test_values(void **st)
{
    static struct conf cc;
    struct fota_conf_set *c = &cc.set;
    char err[256];
    (void)st;
    conf_init(&cc);
    fota_config_defaults(c);
    assert_int_equal(fota_config_set(c, "http_port", "off", err, sizeof(err)), 0);
    assert_int_equal(cc.http.http_port, FOTA_PORT_OFF);
    assert_int_equal(fota_config_set(c, "http_port", "OFF", err, sizeof(err)), 0);
    assert_int_equal(fota_config_set(c, "http_port", "0", err, sizeof(err)), 0);
    assert_int_equal(cc.http.http_port, 0);
    assert_int_equal(fota_config_set(c, "http_port", "65536", err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "http_port"));
    assert_int_equal(fota_config_set(c, "http_port", "-1", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "http_port", "80x", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "max_upload", "2M", err, sizeof(err)), 0);
    assert_true(cc.http.max_upload == 2u * 1024 * 1024);
    assert_int_equal(fota_config_set(c, "max_upload", "64KiB", err, sizeof(err)), 0);
    assert_true(cc.http.max_upload == 64u * 1024);
    assert_int_equal(fota_config_set(c, "max_upload", "5", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "max_upload", "2X", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "max_upload", "99999999999999999999G", err,
                                     sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "log_level", "debug", err, sizeof(err)), 0);
    assert_int_equal(cc.core.log_level, FOTA_LOG_DEBUG);
    assert_int_equal(fota_config_set(c, "log_level", "loud", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "legacy_chunk", "1281", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(c, "nope", "1", err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "unknown option"));
    char longpath[FOTA_CONF_PATH_MAX + 8];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(fota_config_set(c, "data", longpath, err, sizeof(err)), FOTA_ECONFIG);
}

static void test_check(void **st)
{
    static struct conf cc;
    struct fota_config *c = &cc.core;
    char err[256];
    (void)st;
    conf_init(&cc);
    fota_config_defaults(&cc.set);
    snprintf(c->tls_cert, sizeof(c->tls_cert), "c.pem");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    snprintf(c->tls_key, sizeof(c->tls_key), "k.pem");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), 0);
    *row_int(&cc, "device_port") = 80;   /* the device module's row against http's */
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "port 80 is configured twice (http_port, device_port)"));
    *row_int(&cc, "device_port") = 8000;
    assert_int_equal(fota_config_set(&cc.set, "legacy_port", "443", err, sizeof(err)), 0);
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "(https_port, legacy_port)"));
    assert_int_equal(fota_config_set(&cc.set, "legacy_port", "off", err, sizeof(err)), 0);
    assert_int_equal(fota_config_set(&cc.set, "https_port", "off", err, sizeof(err)), 0);
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), 0);   /* two offs */
    *row_int(&cc, "device_port") = 0;
    cc.http.http_port = 0;
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), 0); /* two ephemeral ports are fine */
    snprintf(c->bind, sizeof(c->bind), "[::1]");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), 0);
    snprintf(c->bind, sizeof(c->bind), "localhost");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "bind"));
    snprintf(c->bind, sizeof(c->bind), "0.0.0.0");
    snprintf(c->store, sizeof(c->store), "mysql");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    snprintf(c->store, sizeof(c->store), "memory");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "memory"));
    /* postgresql:DSN, the DSN not empty (checked by libpq when the store opens) */
    snprintf(c->store, sizeof(c->store), "postgresql:");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "postgresql:DSN"));
    snprintf(c->store, sizeof(c->store), "postgresql");
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&cc.set, "store",
                                     "postgresql:host=/run/postgresql dbname=fota user=fota"
                                     " target_session_attrs=read-write",
                                     err, sizeof(err)),
                     0);
    assert_int_equal(fota_config_check(&cc.set, err, sizeof(err)), 0);
    assert_string_equal(c->store, "postgresql:host=/run/postgresql dbname=fota user=fota"
                                  " target_session_attrs=read-write");
    snprintf(c->store, sizeof(c->store), "sqlite");
}

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/fota-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_file_and_flags(void **st)
{
    static struct conf cc;
    struct fota_conf_set *c = &cc.set;
    struct fota_cmdline cl;
    char err[256];
    (void)st;
    conf_init(&cc);
    char *path = write_tmp("; comment\n# another\nhttp_port = 8080\n[fotad]\nbind = ::\n"
                           "max_upload = 1M\n");
    char *argv[] = { "fotad", "-c", path, "--http-port", "off", "--data=/srv/x", NULL };
    assert_int_equal(fota_config_from_args(c, &cl, 6, argv, err, sizeof(err)), 0);
    assert_int_equal(cc.http.http_port, FOTA_PORT_OFF);  /* flag wins */
    assert_string_equal(cc.core.bind, "::");             /* from the file */
    assert_true(cc.http.max_upload == 1024 * 1024);
    assert_string_equal(cc.core.data_dir, "/srv/x");
    assert_string_equal(cl.config_file, path);
    unlink(path);

    path = write_tmp("http_port = 1\n[other]\nx = 1\n");
    assert_int_equal(fota_config_load_file(c, path, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, ":3:"));
    assert_non_null(strstr(err, "[other]"));
    unlink(path);
    path = write_tmp("http_port = 1\nlog_level = shout\n");
    assert_int_equal(fota_config_load_file(c, path, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, ":2:"));
    unlink(path);
    assert_int_equal(fota_config_load_file(c, "/nonexistent/fotad.conf", err, sizeof(err)),
                     FOTA_EIO);
    /* The same parser over a buffer (config_fuzz feeds it so). */
    static const char text[] = "[fotad]\nhttp_port = 8081\nmax_upload = 2k\n";
    FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");
    assert_non_null(f);
    assert_int_equal(fota_config_load_stream(c, f, "mem", err, sizeof(err)), 0);
    fclose(f);
    assert_int_equal(cc.http.http_port, 8081);
    assert_true(cc.http.max_upload == 2048);
    static const char bad[] = "http_port = 8081\nhttps_port = 70000\n";
    f = fmemopen((void *)bad, sizeof(bad) - 1, "r");
    assert_non_null(f);
    assert_int_equal(fota_config_load_stream(c, f, "mem", err, sizeof(err)), FOTA_ECONFIG);
    fclose(f);
    assert_non_null(strstr(err, "mem:2: https_port"));

    char *argv2[] = { "fotad", "-t", "--legacy-port", NULL };
    assert_int_equal(fota_config_from_args(c, &cl, 3, argv2, err, sizeof(err)), FOTA_ECONFIG);
    char *argv3[] = { "fotad", "-t", "--ping-timeout", "30", NULL };
    assert_int_equal(fota_config_from_args(c, &cl, 4, argv3, err, sizeof(err)), 0);
    assert_int_equal(cl.test_only, 1);
    assert_int_equal(*row_int(&cc, "ping_timeout"), 30);
    char *argv4[] = { "fotad", "--legacy-chunk=100", NULL };   /* a module's flag */
    assert_int_equal(fota_config_from_args(c, &cl, 2, argv4, err, sizeof(err)), 0);
    assert_int_equal(legacy_int(&cc, "legacy_chunk"), 100);
}

static void test_reload(void **st)
{
    static struct conf live, fresh;
    char changed[256], err[256];
    (void)st;
    conf_init(&live);
    conf_init(&fresh);
    fota_config_defaults(&live.set);
    fota_config_defaults(&fresh.set);
    fresh.http.http_port = 1234;             /* not reloadable */
    fresh.core.log_level = FOTA_LOG_DEBUG;   /* reloadable */
    fresh.http.max_upload = 1024 * 1024;
    assert_int_equal(fota_config_set(&fresh.set, "legacy_chunk", "512", err, sizeof(err)), 0);
    assert_int_equal(fota_config_set(&fresh.set, "legacy_port", "5556", err, sizeof(err)), 0);
    fota_config_apply_reloadable(&live.set, &fresh.set, changed, sizeof(changed));
    assert_int_equal(live.http.http_port, 80);
    assert_int_equal(live.core.log_level, FOTA_LOG_DEBUG);
    assert_true(live.http.max_upload == 1024 * 1024);
    assert_int_equal(legacy_int(&live, "legacy_chunk"), 512);
    assert_int_equal(legacy_int(&live, "legacy_port"), 5555);
    assert_string_equal(changed, "log_level,max_upload,legacy_chunk");
    fota_config_apply_reloadable(&live.set, &fresh.set, changed, sizeof(changed));
    assert_string_equal(changed, "");
}

/* "Did you mean": the closest option within two edits (a swap counts one),
 * none for a word nothing resembles. */
static void test_nearest(void **st)
{
    static const char *const names[] = { "http_port", "https_port", "device_port", "workers" };
    (void)st;
    assert_string_equal(fota_config_nearest("htp_port", names, 4), "http_port");
    assert_string_equal(fota_config_nearest("wokrers", names, 4), "workers");
    assert_string_equal(fota_config_nearest("devcie_port", names, 4), "device_port");
    assert_null(fota_config_nearest("zzz", names, 4));
    assert_null(fota_config_nearest("", names, 4));
    static const char *const flags[] = { "--port", "--bind" };
    assert_string_equal(fota_config_nearest("--prot", flags, 2), "--port");
    char err[256];
    struct fota_conf_set set;
    struct fota_config c;
    memset(&set, 0, sizeof(set));
    fota_config_add_part(&set, "core", fota_config_opts, &c, NULL);
    fota_config_defaults(&set);
    assert_int_equal(fota_config_set(&set, "dta", "x", err, sizeof(err)), FOTA_ECONFIG);
    assert_string_equal(err, "unknown option dta: did you mean data?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_values),
        cmocka_unit_test(test_check),    cmocka_unit_test(test_file_and_flags),
        cmocka_unit_test(test_reload),   cmocka_unit_test(test_nearest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
