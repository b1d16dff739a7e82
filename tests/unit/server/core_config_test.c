/* core_config_test.c - server/core/config.c: every table default is valid, values
 * parse and are range-checked, INI loading reports FILE:LINE, flags override
 * the file, and reload copies only the reloadable options. */
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
#include "log.h"

static void test_defaults(void **st)
{
    struct fota_config c, d;
    char err[256];
    (void)st;
    fota_config_defaults(&c);
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.bind, "0.0.0.0");
    assert_string_equal(c.store, "sqlite");
    assert_int_equal(c.http_port, 80);
    assert_int_equal(c.https_port, 443);
    assert_int_equal(c.device_port, 8000);
    assert_int_equal(c.device_tls_port, 8443);
    assert_int_equal(c.legacy_port, 5555);
    assert_true(c.max_upload == 16u * 1024 * 1024);
    assert_int_equal(c.log_level, FOTA_LOG_INFO);
    assert_int_equal(c.ping_timeout, 120);
    assert_int_equal(c.legacy_chunk, 1280);
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), 0);
    /* Every default must be accepted by its own parser. */
    for (const struct fota_conf_opt *o = fota_conf_opts; o->name; o++) {
        memset(&d, 0, sizeof(d));
        if (fota_config_set(&d, o->name, o->def, err, sizeof(err)) != 0)
            fail_msg("default of %s rejected: %s", o->name, err);
    }
}

static void test_values(void **st)
{
    struct fota_config c;
    char err[256];
    (void)st;
    fota_config_defaults(&c);
    assert_int_equal(fota_config_set(&c, "http_port", "off", err, sizeof(err)), 0);
    assert_int_equal(c.http_port, FOTA_PORT_OFF);
    assert_int_equal(fota_config_set(&c, "http_port", "OFF", err, sizeof(err)), 0);
    assert_int_equal(fota_config_set(&c, "http_port", "0", err, sizeof(err)), 0);
    assert_int_equal(c.http_port, 0);
    assert_int_equal(fota_config_set(&c, "http_port", "65536", err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "http_port"));
    assert_int_equal(fota_config_set(&c, "http_port", "-1", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "http_port", "80x", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "max_upload", "2M", err, sizeof(err)), 0);
    assert_true(c.max_upload == 2u * 1024 * 1024);
    assert_int_equal(fota_config_set(&c, "max_upload", "64KiB", err, sizeof(err)), 0);
    assert_true(c.max_upload == 64u * 1024);
    assert_int_equal(fota_config_set(&c, "max_upload", "5", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "max_upload", "2X", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "max_upload", "99999999999999999999G", err,
                                     sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "log_level", "debug", err, sizeof(err)), 0);
    assert_int_equal(c.log_level, FOTA_LOG_DEBUG);
    assert_int_equal(fota_config_set(&c, "log_level", "loud", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "legacy_chunk", "1281", err, sizeof(err)), FOTA_ECONFIG);
    assert_int_equal(fota_config_set(&c, "nope", "1", err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "unknown option"));
    char longpath[FOTA_CONF_PATH_MAX + 8];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(fota_config_set(&c, "data", longpath, err, sizeof(err)), FOTA_ECONFIG);
}

static void test_check(void **st)
{
    struct fota_config c;
    char err[256];
    (void)st;
    fota_config_defaults(&c);
    snprintf(c.tls_cert, sizeof(c.tls_cert), "c.pem");
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), FOTA_ECONFIG);
    snprintf(c.tls_key, sizeof(c.tls_key), "k.pem");
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), 0);
    c.device_port = 80;
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), FOTA_ECONFIG);
    c.device_port = 0;
    c.http_port = 0;
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), 0); /* two ephemeral ports are fine */
    snprintf(c.bind, sizeof(c.bind), "[::1]");
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), 0);
    snprintf(c.bind, sizeof(c.bind), "localhost");
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "bind"));
    snprintf(c.bind, sizeof(c.bind), "0.0.0.0");
    snprintf(c.store, sizeof(c.store), "mysql");
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), FOTA_ECONFIG);
    snprintf(c.store, sizeof(c.store), "memory");
    assert_int_equal(fota_config_check(&c, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, "memory"));
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
    struct fota_config c;
    struct fota_cmdline cl;
    char err[256];
    (void)st;
    char *path = write_tmp("; comment\n# another\nhttp_port = 8080\n[fotad]\nbind = ::\n"
                           "max_upload = 1M\n");
    char *argv[] = { "fotad", "-c", path, "--http-port", "off", "--data=/srv/x", NULL };
    assert_int_equal(fota_config_from_args(&c, &cl, 6, argv, err, sizeof(err)), 0);
    assert_int_equal(c.http_port, FOTA_PORT_OFF);       /* flag wins */
    assert_string_equal(c.bind, "::");                   /* from the file */
    assert_true(c.max_upload == 1024 * 1024);
    assert_string_equal(c.data_dir, "/srv/x");
    assert_string_equal(c.config_file, path);
    unlink(path);

    path = write_tmp("http_port = 1\n[other]\nx = 1\n");
    assert_int_equal(fota_config_load_file(&c, path, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, ":3:"));
    assert_non_null(strstr(err, "[other]"));
    unlink(path);
    path = write_tmp("http_port = 1\nlog_level = shout\n");
    assert_int_equal(fota_config_load_file(&c, path, err, sizeof(err)), FOTA_ECONFIG);
    assert_non_null(strstr(err, ":2:"));
    unlink(path);
    assert_int_equal(fota_config_load_file(&c, "/nonexistent/fotad.conf", err, sizeof(err)),
                     FOTA_EIO);

    char *argv2[] = { "fotad", "-t", "--legacy-port", NULL };
    assert_int_equal(fota_config_from_args(&c, &cl, 3, argv2, err, sizeof(err)), FOTA_ECONFIG);
    char *argv3[] = { "fotad", "-t", "--ping-timeout", "30", NULL };
    assert_int_equal(fota_config_from_args(&c, &cl, 4, argv3, err, sizeof(err)), 0);
    assert_int_equal(cl.test_only, 1);
    assert_int_equal(c.ping_timeout, 30);
}

static void test_reload(void **st)
{
    struct fota_config live, fresh;
    char changed[256];
    (void)st;
    fota_config_defaults(&live);
    fresh = live;
    fresh.http_port = 1234;             /* not reloadable */
    fresh.log_level = FOTA_LOG_DEBUG;   /* reloadable */
    fresh.max_upload = 1024 * 1024;
    fota_config_apply_reloadable(&live, &fresh, changed, sizeof(changed));
    assert_int_equal(live.http_port, 80);
    assert_int_equal(live.log_level, FOTA_LOG_DEBUG);
    assert_string_equal(changed, "max_upload,log_level");
    fota_config_apply_reloadable(&live, &fresh, changed, sizeof(changed));
    assert_string_equal(changed, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_values),
        cmocka_unit_test(test_check),    cmocka_unit_test(test_file_and_flags),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
