/* config_test.c - unit tests of fotactl's server and key resolution
 * (cli/config.c): the key's shape, the device-port sentence, precedence
 * flag > environment > file, and values too long for fotactl, which are
 * refused from every source and never cut. Runs in a temp XDG_CONFIG_HOME. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fota_err.h"
#include "fota_str.h"

static char dir[64], file[128];

static int setup(void **state)
{
    (void)state;
    fota_str_copy(dir, sizeof(dir), "/tmp/fotactl-config-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(file, sizeof(file), "%s/fota/config", dir);
    setenv("XDG_CONFIG_HOME", dir, 1);
    unsetenv("FOTA_SERVER");
    unsetenv("FOTA_KEY");
    unsetenv("FOTA_CACERT");
    return 0;
}

static int teardown(void **state)
{
    char sub[96];

    (void)state;
    unlink(file);
    snprintf(sub, sizeof(sub), "%s/fota", dir);
    rmdir(sub);
    return rmdir(dir);
}

static void write_file(const char *text)
{
    char sub[96];
    FILE *f;

    snprintf(sub, sizeof(sub), "%s/fota", dir);
    mkdir(sub, 0700);
    f = fopen(file, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(file, 0600), 0);
}

static void test_key_shape(void **state)
{
    char why[128];

    (void)state;
    assert_int_equal(fota_cli_config_key_check("0123456789abcdef0123456789abcdef01234567", why,
                                               sizeof(why)), 0);
    assert_int_equal(fota_cli_config_key_check("0123456789ABCDEF0123456789ABCDEF01234567", why,
                                               sizeof(why)), 0);
    assert_int_equal(fota_cli_config_key_check("abc", why, sizeof(why)), FOTA_EINVAL);
    assert_string_equal(why, "40 hex characters expected, got 3 characters");
    assert_int_equal(fota_cli_config_key_check("a", why, sizeof(why)), FOTA_EINVAL);
    assert_string_equal(why, "40 hex characters expected, got 1 character");
    assert_int_equal(fota_cli_config_key_check("0123456789abcdef0123456789abcdef012345678",
                                               why, sizeof(why)), FOTA_EINVAL);
    assert_string_equal(why, "40 hex characters expected, got 41 characters");
    assert_int_equal(fota_cli_config_key_check("0123456789abcdef0123456789abcdef0123456g",
                                               why, sizeof(why)), FOTA_EINVAL);
    assert_string_equal(why, "40 hex characters expected, got a character that is not hex");
    assert_int_equal(fota_cli_config_key_check(" 123456789abcdef0123456789abcdef01234567",
                                               why, sizeof(why)), FOTA_EINVAL);
}

static void test_device_port_sentence(void **state)
{
    (void)state;
    assert_string_equal(fota_cli_config_port_hint(8000),
                        "8000 is fotad's device port; the REST API is on the HTTP port, "
                        "80 by default");
    assert_non_null(strstr(fota_cli_config_port_hint(8443), "8443 is fotad's device TLS port"));
    assert_null(fota_cli_config_port_hint(80));
    assert_null(fota_cli_config_port_hint(8080));
    assert_null(fota_cli_config_port_hint(0));
}

static void test_precedence(void **state)
{
    struct fota_cli_config c;
    char err[256];

    (void)state;
    /* Nothing anywhere: empty, and no error. */
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.server, "");
    assert_null(c.key_from);
    write_file("# comment\n[other]\nurl = nope\n[server]\nurl = http://file:80\n"
               "key = ffff\n; more\n");
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.server, "http://file:80");
    assert_string_equal(c.key, "ffff");
    assert_string_equal(c.key_from, file);
    setenv("FOTA_KEY", "eeee", 1);
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.key, "eeee");
    assert_string_equal(c.key_from, "FOTA_KEY");
    assert_string_equal(c.server_from, file);
    assert_int_equal(fota_cli_config_load(&c, "http://flag:1", "dddd", NULL, err, sizeof(err)),
                     0);
    assert_string_equal(c.server, "http://flag:1");
    assert_string_equal(c.key, "dddd");
    assert_string_equal(c.key_from, "--key");
    unsetenv("FOTA_KEY");
}

static void test_too_long_is_refused(void **state)
{
    char big[FOTA_CLI_KEY_MAX + 2], text[FOTA_CLI_KEY_MAX + 64], err[256];
    struct fota_cli_config c;

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file("[server]\nurl = http://file:80\nkey = ffff\n");
    assert_int_equal(fota_cli_config_load(&c, NULL, big, NULL, err, sizeof(err)),
                     FOTA_ECONFIG);
    assert_string_equal(err, "--key is too long");
    assert_string_equal(c.key, "");
    setenv("FOTA_KEY", big, 1);
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)),
                     FOTA_ECONFIG);
    assert_string_equal(err, "FOTA_KEY is too long");
    /* The flag wins: a long environment value it overrides does not matter. */
    assert_int_equal(fota_cli_config_load(&c, NULL, "cccc", NULL, err, sizeof(err)), 0);
    assert_string_equal(c.key, "cccc");
    unsetenv("FOTA_KEY");
    /* Exactly the limit still fits. */
    big[FOTA_CLI_KEY_MAX - 1] = '\0';
    assert_int_equal(fota_cli_config_load(&c, NULL, big, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.key, big);
    big[FOTA_CLI_KEY_MAX - 1] = 'a';
    snprintf(text, sizeof(text), "[server]\nkey = %s\n", big);
    write_file(text);
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)),
                     FOTA_ECONFIG);
    assert_non_null(strstr(err, ": a value is too long"));
    write_file("[server]\nurl http://no-equals\n");
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)),
                     FOTA_ECONFIG);
    assert_non_null(strstr(err, ": line 2 is not valid"));
}

static void test_save_then_load(void **state)
{
    struct fota_cli_config c;
    char path[FOTA_CLI_PATH_MAX], err[256];
    struct stat st;

    (void)state;
    unlink(file);
    assert_int_equal(fota_cli_config_save("http://saved:80", "abab", NULL, path, sizeof(path),
                                          err, sizeof(err)), 0);
    assert_string_equal(path, file);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fota_cli_config_load(&c, NULL, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.server, "http://saved:80");
    assert_string_equal(c.key, "abab");
    assert_int_equal(fota_cli_config_save("http://a\nb", "abab", NULL, NULL, 0, err,
                                          sizeof(err)), FOTA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_shape),
        cmocka_unit_test(test_device_port_sentence),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_too_long_is_refused),
        cmocka_unit_test(test_save_then_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
