/* args_test.c - unit tests of fotactl's command-line parser (cli/args.c):
 * long and short options with their values in every spelling, flags,
 * positionals and "--", the common options, and each way a line can be
 * wrong (missing value, unknown option, value given to a flag, too many
 * arguments, an oversized table) with its sentence; the hoisting of common
 * options that precede the command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "args.h"
#include "fota_err.h"
#include "fota_str.h"

static const struct fota_cli_opt opts[] = {
    { "product", 'p', "P", "product" },
    { "version", 'v', "V", "version" },
    { "current", 0, NULL, "flag" },
    { "output", 'o', "FILE", "output" },
    { "max-failures", 0, "N", "a value that may look like an option" },
    { NULL, 0, NULL, NULL }
};

/* Parses the words of line (space-separated, at most 80) against opts. */
static int parse(struct fota_cli_args *a, const char *line, char *err, size_t errlen)
{
    static char buf[1024];
    char *argv[80];
    int argc = 0;
    char *save = NULL, *w;

    assert_true(fota_str_copy(buf, sizeof(buf), line) < sizeof(buf));
    for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        assert_true(argc < 80);
        argv[argc++] = w;
    }
    err[0] = '\0';
    return fota_cli_args_parse(a, opts, argc, argv, err, errlen);
}

static void test_values_in_every_spelling(void **state)
{
    static const char *const lines[] = {
        "--product plug --version v1.1", "--product=plug --version=v1.1", "-p plug -v v1.1",
        "-pplug -vv1.1", "--version v1.1 -p plug",
    };
    struct fota_cli_args a;
    char err[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        assert_int_equal(parse(&a, lines[i], err, sizeof(err)), 0);
        assert_string_equal(fota_cli_args_get(&a, "product"), "plug");
        assert_string_equal(fota_cli_args_get(&a, "version"), "v1.1");
        assert_null(fota_cli_args_get(&a, "current"));
        assert_null(fota_cli_args_get(&a, "output"));
        assert_int_equal(a.npos, 0);
    }
}

static void test_flags_positionals_and_dashes(void **state)
{
    struct fota_cli_args a;
    char err[128];

    (void)state;
    assert_int_equal(parse(&a, "user1.bin --current user2.bin - -o out -- --version -p",
                           err, sizeof(err)), 0);
    assert_string_equal(fota_cli_args_get(&a, "current"), "");
    assert_string_equal(fota_cli_args_get(&a, "output"), "out");
    assert_null(fota_cli_args_get(&a, "version"));
    assert_int_equal(a.npos, 5);
    assert_string_equal(a.pos[0], "user1.bin");
    assert_string_equal(a.pos[1], "user2.bin");
    assert_string_equal(a.pos[2], "-");
    assert_string_equal(a.pos[3], "--version");
    assert_string_equal(a.pos[4], "-p");
    /* A value is taken whole, even when it starts with '-' or holds '='. */
    assert_int_equal(parse(&a, "--max-failures -1 --product a=b", err, sizeof(err)), 0);
    assert_string_equal(fota_cli_args_get(&a, "max-failures"), "-1");
    assert_string_equal(fota_cli_args_get(&a, "product"), "a=b");
    /* The last of a repeated option wins; an empty value is a value. */
    assert_int_equal(parse(&a, "-p one -p two --version=", err, sizeof(err)), 0);
    assert_string_equal(fota_cli_args_get(&a, "product"), "two");
    assert_string_equal(fota_cli_args_get(&a, "version"), "");
    /* A name the table does not have is never set. */
    assert_null(fota_cli_args_get(&a, "wait"));
}

static void test_common_options(void **state)
{
    struct fota_cli_args a;
    char err[128];

    (void)state;
    assert_int_equal(parse(&a, "--server http://h:80 --key=abc --cacert ca.pem --json "
                               "--no-color x", err, sizeof(err)), 0);
    assert_string_equal(a.server, "http://h:80");
    assert_string_equal(a.key, "abc");
    assert_string_equal(a.cacert, "ca.pem");
    assert_int_equal(a.json, 1);
    assert_int_equal(a.no_color, 1);
    assert_int_equal(a.help, 0);
    assert_int_equal(a.npos, 1);
    /* They are not the command's options. */
    assert_null(fota_cli_args_get(&a, "server"));
    assert_int_equal(parse(&a, "-h", err, sizeof(err)), 0);
    assert_int_equal(a.help, 1);
    assert_int_equal(parse(&a, "--help", err, sizeof(err)), 0);
    assert_int_equal(a.help, 1);
    assert_int_equal(parse(&a, "", err, sizeof(err)), 0);
    assert_null(a.server);
    assert_int_equal(a.json + a.no_color + a.help + a.npos, 0);
}

static void test_bad_lines(void **state)
{
    static const struct {
        const char *line, *err;
    } bad[] = {
        { "--version", "--version needs a value (V)" },
        { "-p", "--product needs a value (P)" },
        { "--product plug -o", "--output needs a value (FILE)" },
        { "--server", "--server needs a value (URL)" },
        { "--bogus", "unknown option --bogus (see --help)" },
        { "--bogus=1", "unknown option --bogus (see --help)" },
        { "--prod plug", "unknown option --prod (see --help)" },   /* no prefixes */
        { "-x", "unknown option -x (see --help)" },
        { "-xyz", "unknown option -xyz (see --help)" },
        { "--current=yes", "--current takes no value" },
        { "--json=1", "--json takes no value" },
    };
    struct fota_cli_args a;
    char err[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(&a, bad[i].line, err, sizeof(err)), FOTA_EINVAL);
        assert_string_equal(err, bad[i].err);
    }
}

static void test_limits(void **state)
{
    static struct fota_cli_opt big[FOTA_CLI_ARGS_MAX_OPTS + 2];
    static char names[FOTA_CLI_ARGS_MAX_OPTS + 1][8];
    char line[512] = "", err[128];
    struct fota_cli_args a;
    char *argv[1] = { line };
    int i;

    (void)state;
    for (i = 0; i < FOTA_CLI_ARGS_MAX_POS; i++)
        memcpy(line + 2 * i, "x ", 3);
    assert_int_equal(parse(&a, line, err, sizeof(err)), 0);
    assert_int_equal(a.npos, FOTA_CLI_ARGS_MAX_POS);
    memcpy(line + 2 * i, "x", 2);
    assert_int_equal(parse(&a, line, err, sizeof(err)), FOTA_EINVAL);
    assert_string_equal(err, "too many arguments");
    /* A table the value array cannot hold is refused before anything is read. */
    for (i = 0; i <= FOTA_CLI_ARGS_MAX_OPTS; i++) {
        snprintf(names[i], sizeof(names[i]), "o%d", i);
        big[i] = (struct fota_cli_opt){ names[i], 0, NULL, "x" };
    }
    assert_int_equal(fota_cli_args_count(big), FOTA_CLI_ARGS_MAX_OPTS + 1);
    assert_int_equal(fota_cli_args_parse(&a, big, 0, argv, err, sizeof(err)), FOTA_ETOOBIG);
    big[FOTA_CLI_ARGS_MAX_OPTS] = (struct fota_cli_opt){ NULL, 0, NULL, NULL };
    assert_int_equal(fota_cli_args_parse(&a, big, 0, argv, err, sizeof(err)), 0);
    assert_int_equal(fota_cli_args_count(NULL), 0);
}

/* Hoists line (program name first) and returns the words joined by spaces. */
static const char *hoist(const char *line, int *rc)
{
    static char buf[512], out[512];
    char *argv[32], err[128], *save = NULL, *w;
    size_t o = 0;
    int argc = 0, i;

    fota_str_copy(buf, sizeof(buf), line);
    for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    *rc = fota_cli_args_hoist(argc, argv, err, sizeof(err));
    if (*rc < 0) {
        fota_str_copy(out, sizeof(out), err);
        return out;
    }
    out[0] = '\0';
    for (i = 0; i < argc; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? " " : "", argv[i]);
    return out;
}

/* A command's own row shadows the common option of the same name
 * (`release sign --key PRIVATE.PEM`): the value is the command's, the API
 * key stays unset. */
static void test_own_row_shadows_common(void **state)
{
    static const struct fota_cli_opt sign[] = {
        { "key", 'k', "FILE", "private key" },
        { "legacy", 0, NULL, "legacy form" },
        { NULL, 0, NULL, NULL }
    };
    char *argv[] = { "--key", "private.pem", "in.bin", "-k", "other.pem", "out.bin", "--json" };
    struct fota_cli_args a;
    char err[128];

    (void)state;
    assert_int_equal(fota_cli_args_parse(&a, sign, 7, argv, err, sizeof(err)), 0);
    assert_string_equal(fota_cli_args_get(&a, "key"), "other.pem");
    assert_null(a.key);
    assert_int_equal(a.json, 1);
    assert_int_equal(a.npos, 2);
}

static void test_hoist(void **state)
{
    int rc;

    (void)state;
    assert_string_equal(hoist("fotactl --server U --json product list -p x", &rc),
                        "fotactl product list -p x --server U --json");
    assert_int_equal(rc, 0);
    assert_string_equal(hoist("fotactl --key=K --no-color --cacert C upgrade 3", &rc),
                        "fotactl upgrade 3 --key=K --no-color --cacert C");
    /* --help, --version and anything not common stop the hoisting. */
    assert_string_equal(hoist("fotactl --help product", &rc), "fotactl --help product");
    assert_string_equal(hoist("fotactl --json --version", &rc), "fotactl --version --json");
    assert_string_equal(hoist("fotactl --product p list", &rc), "fotactl --product p list");
    /* Nothing after them: left for main to report. */
    assert_string_equal(hoist("fotactl --json", &rc), "fotactl --json");
    assert_string_equal(hoist("fotactl product list", &rc), "fotactl product list");
    assert_int_equal(rc, 0);
    assert_string_equal(hoist("fotactl --server", &rc), "--server needs a value (URL)");
    assert_int_equal(rc, FOTA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_in_every_spelling),
        cmocka_unit_test(test_flags_positionals_and_dashes),
        cmocka_unit_test(test_common_options),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_own_row_shadows_common),
        cmocka_unit_test(test_hoist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
