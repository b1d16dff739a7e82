/* simopts_test.c - fota-sim's option table (device/sim/fotasim_opts.c):
 * the defaults, each kind of value, and a refusal that names the option and
 * what it accepts for every wrong value; --help lists every option. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fotasim_opts.h"

static char errbuf[4096];

/* Parses the NULL-terminated words after "fota-sim"; errbuf gets stderr. */
static int parse(struct fotasim_opts *o, ...)
{
    char *argv[64];
    int argc = 0, rc;
    va_list ap;
    FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");

    assert_non_null(err);
    argv[argc++] = (char *)"fota-sim";
    va_start(ap, o);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(errbuf, 0, sizeof(errbuf));
    rc = fotasim_opts_parse(o, argc, argv, err);
    fclose(err);
    return rc;
}

static void test_defaults(void **state)
{
    struct fotasim_opts o;
    (void)state;
    assert_int_equal(parse(&o, "--server", "127.0.0.1", NULL), FOTASIM_OPTS_RUN);
    assert_string_equal(o.server, "127.0.0.1");
    assert_int_equal(o.http_port, 80);
    assert_int_equal(o.device_port, 8000);
    assert_int_equal(o.legacy_port, 5555);
    assert_int_equal(o.profile, FOTADEV_PROFILE_NONOS);
    assert_int_equal(o.devices, 1);
    assert_int_equal(o.map, 2);
    assert_int_equal(o.loader, 7);
    assert_true(o.time_scale == 1.0);
    assert_int_equal(o.timeout_s, 300);
    assert_int_equal(o.max_attempts, 3);
    assert_int_equal(o.seed, 1);
    assert_int_equal(o.segment, FOTASIM_MSS);
    assert_string_equal(o.initial_version, "v1.0.0t45772(a)");
    assert_null(o.upgrade_to);
    assert_int_equal(o.have_fault, 0);
    assert_int_equal(o.fault.flash_at, -1);
    assert_int_equal(o.fault.pct, 100);
    assert_int_equal(o.json, 0);
    assert_int_equal(o.image_size, 0);
    assert_string_equal(errbuf, "");
}

static void test_values(void **state)
{
    struct fotasim_opts o;
    (void)state;
    assert_int_equal(parse(&o, "--server", "h", "--profile", "seed-dfu", "--devices=250",
                           "--time-scale", "20.5", "--map", "6", "--loader", "31", "--stream-ext",
                           "--json-devices", "--faults", "flash@3-9,drop@100,slow=2000,pct=50",
                           "--upgrade-to", "v2", NULL), FOTASIM_OPTS_RUN);
    assert_int_equal(o.profile, FOTADEV_PROFILE_SEED_DFU);
    assert_int_equal(o.devices, 250);
    assert_true(o.time_scale == 20.5);
    assert_int_equal(o.map, 6);
    assert_int_equal(o.loader, 31);
    assert_int_equal(o.stream_ext, 1);
    assert_int_equal(o.json, 1);               /* implied by --json-devices */
    assert_int_equal(o.json_devices, 1);
    assert_int_equal(o.have_fault, 1);
    assert_int_equal(o.fault.flash_at, 3);
    assert_int_equal(o.fault.flash_hi, 9);
    assert_int_equal(o.fault.drop_at, 100);
    assert_int_equal(o.fault.drop_hi, 100);
    assert_int_equal(o.fault.rx_at, -1);
    assert_int_equal(o.fault.slow_bps, 2000);
    assert_int_equal(o.fault.pct, 50);
    assert_string_equal(o.upgrade_to, "v2");
}

/* Each refusal names the option and what it would take. */
static void test_refusals(void **state)
{
    static const struct {
        const char *args[4];
        const char *says;
    } cases[] = {
        {{"--profile", "nonoss"}, "--profile: 'nonoss' is not one of nonos, rtos, seed-dfu, fota, arduino, tasmota, esphome\n"},
        {{"--devices", "0"}, "--devices: '0' is not a whole number from 1 to 100000\n"},
        {{"--devices", "12x"}, "--devices: '12x' is not a whole number from 1 to 100000\n"},
        {{"--http-port", "65536"}, "--http-port: '65536' is not a whole number from 1 to 65535\n"},
        {{"--map", "7"}, "--map: '7' is not one of 0, 2, 3, 4, 5, 6, 8, 9\n"},
        {{"--loader", "3"}, "--loader: '3' is not one of 2, 31, 7\n"},
        {{"--time-scale", "0"}, "--time-scale: '0' is not a number above 0"},
        {{"--faults", "flash@x"}, "--faults: 'flash@x': KIND@N wants a count"},
        {{"--faults", "boom@3"}, "--faults: 'boom@3': items are flash@N"},
        {{"--faults", "pct=101"}, "--faults: 'pct=101': pct=P wants a share from 0 to 100"},
        {{"--bogus"}, "unknown option '--bogus'"},
        {{"--tls=1"}, "--tls takes no value"},
        {{"stray"}, "unexpected argument 'stray'"},
        {{"--upgrade-to", ""}, "--upgrade-to: a version of 1 to"},
    };
    struct fotasim_opts o;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(&o, "--server", "h", cases[i].args[0], cases[i].args[1], NULL);
        assert_int_equal(rc, FOTASIM_OPTS_USAGE);
        if (!strstr(errbuf, cases[i].says))
            fail_msg("case %zu: %s", i, errbuf);
        assert_non_null(strstr(errbuf, "fota-sim: "));
        assert_non_null(strchr(errbuf, '\n'));
    }
    assert_int_equal(parse(&o, "--server", "h", "--profile", NULL), FOTASIM_OPTS_USAGE);
    assert_string_equal(errbuf, "fota-sim: --profile needs a value "
                                "(nonos|rtos|seed-dfu|fota|arduino|tasmota|esphome)\n");
    assert_int_equal(parse(&o, "--devices", "3", NULL), FOTASIM_OPTS_USAGE);
    assert_non_null(strstr(errbuf, "--server HOST is required"));
    assert_int_equal(parse(&o, "--server", "h", "--key", "k", NULL), FOTASIM_OPTS_USAGE);
    assert_non_null(strstr(errbuf, "--key needs --product"));
}

static void test_write_image_and_help(void **state)
{
    struct fotasim_opts o;
    char *text = NULL;
    size_t len = 0;
    FILE *out;
    (void)state;
    assert_int_equal(parse(&o, "--write-image", "1:v2:/tmp/x", "--image-size", "4096", NULL),
                     FOTASIM_OPTS_RUN);
    assert_string_equal(o.write_image, "1:v2:/tmp/x");
    assert_int_equal(o.image_size, 4096);
    assert_int_equal(parse(&o, "--server", "h", "--help", NULL), FOTASIM_OPTS_HELP);
    assert_int_equal(parse(&o, "-h", NULL), FOTASIM_OPTS_HELP);
    out = open_memstream(&text, &len);
    assert_non_null(out);
    fotasim_opts_usage(out);
    fclose(out);
    /* every option, its choices and its default come from the table */
    assert_non_null(strstr(text, "  --profile nonos|rtos|seed-dfu|fota|arduino|tasmota|esphome\n"));
    assert_non_null(strstr(text, "  --core 2.5|2.6|2.7|3.0|3.1\n"));
    assert_non_null(strstr(text, "(default nonos)"));
    assert_non_null(strstr(text, "  --devices N\n"));
    assert_non_null(strstr(text, "  --faults SPEC\n"));
    assert_non_null(strstr(text, "  --map 0|2|3|4|5|6|8|9\n"));
    assert_non_null(strstr(text, "master_device_key.bin"));
    assert_non_null(strstr(text, "  --json-devices\n"));
    assert_non_null(strstr(text, "(default 300)"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_write_image_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
