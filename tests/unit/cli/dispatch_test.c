/* dispatch_test.c - unit tests of fotactl's REST command dispatch
 * (cli/dispatch.c) with the real command table (cli/commands.c) and help
 * (cli/help.c): every command answers --help and -h with exit 0, its usage
 * line and every option it accepts; the table is sound (no option shadows
 * another); bad lines exit 2 with one sentence on stderr, before any server
 * is asked: unknown commands and options, missing values and arguments, no
 * server, a malformed key. Standard output and error are captured in temp
 * files; HOME is an empty temp directory. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "args.h"
#include "cli.h"
#include "commands.h"
#include "dispatch.h"
#include "fota_str.h"

static char home[64];

struct run {
    int status;
    char out[16384];
    char err[4096];
};

static void slurp(FILE *f, char *buf, size_t cap)
{
    size_t n;

    rewind(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs fota_cli_dispatch on the NULL-terminated words with stdout and
 * stderr captured. */
static void run(struct run *r, const char *first, ...)
{
    char *argv[32], copy[32][128];
    FILE *out = tmpfile(), *err = tmpfile();
    int argc = 0, save_out, save_err;
    const char *w;
    va_list ap;

    assert_non_null(out);
    assert_non_null(err);
    va_start(ap, first);
    for (w = first; w; w = va_arg(ap, const char *)) {
        assert_true(argc < 31 && fota_str_copy(copy[argc], sizeof(copy[0]), w) < sizeof(copy[0]));
        argv[argc] = copy[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    save_out = dup(STDOUT_FILENO);
    save_err = dup(STDERR_FILENO);
    assert_true(save_out >= 0 && save_err >= 0);
    assert_true(dup2(fileno(out), STDOUT_FILENO) >= 0);
    assert_true(dup2(fileno(err), STDERR_FILENO) >= 0);
    r->status = fota_cli_dispatch(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, STDOUT_FILENO);
    dup2(save_err, STDERR_FILENO);
    close(save_out);
    close(save_err);
    slurp(out, r->out, sizeof(r->out));
    slurp(err, r->err, sizeof(r->err));
}

static int setup(void **state)
{
    (void)state;
    fota_str_copy(home, sizeof(home), "/tmp/fotactl-dispatch-XXXXXX");
    if (!mkdtemp(home))
        return -1;
    setenv("HOME", home, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("FOTA_SERVER");
    unsetenv("FOTA_KEY");
    unsetenv("FOTA_CACERT");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(home);
}

/* What a local command's help leaves out. */
static const struct fota_cli_opt server_opts[] = {
    { "server", 0, NULL, NULL }, { "key", 0, NULL, NULL }, { "cacert", 0, NULL, NULL },
    { NULL, 0, NULL, NULL }
};

/* 1 when table has a row named name. */
static int has_opt(const struct fota_cli_opt *table, const char *name)
{
    for (; table && table->name; table++)
        if (strcmp(table->name, name) == 0)
            return 1;
    return 0;
}

/* The help of a command lists --name for each row of opts (with -x when it
 * has one) but those named in shadowed, and the common options. */
static void check_lists(const char *help, const struct fota_cli_opt *opts,
                        const struct fota_cli_opt *shadowed)
{
    char want[64];

    for (; opts && opts->name; opts++) {
        if (has_opt(shadowed, opts->name))
            continue;
        if (opts->short_name)
            snprintf(want, sizeof(want), "-%c, --%s", opts->short_name, opts->name);
        else
            snprintf(want, sizeof(want), "    --%s", opts->name);
        if (!strstr(help, want))
            fail_msg("help lacks %s:\n%s", want, help);
        if (!strstr(help, opts->help))
            fail_msg("help lacks the text of --%s:\n%s", opts->name, help);
    }
}

static void test_help_of_every_command(void **state)
{
    const struct fota_cli_command *cmd;
    struct run r;
    char usage[128];
    int n = 0;

    (void)state;
    for (cmd = fota_cli_commands; cmd->group; cmd++, n++) {
        snprintf(usage, sizeof(usage), "usage: fotactl %s%s%s", cmd->group, cmd->verb ? " " : "",
                 cmd->verb ? cmd->verb : "");
        if (cmd->verb)
            run(&r, cmd->group, cmd->verb, "--help", NULL);
        else
            run(&r, cmd->group, "--help", NULL);
        if (r.status != 0 || strncmp(r.out, usage, strlen(usage)) != 0 || r.err[0])
            fail_msg("`%s --help`: exit %d\n%s%s", usage + 7, r.status, r.out, r.err);
        assert_non_null(strstr(r.out, cmd->summary));
        check_lists(r.out, cmd->opts, NULL);
        check_lists(r.out, fota_cli_args_common,
                    (cmd->flags & FOTA_CLI_CMD_LOCAL) ? server_opts : NULL);
        /* a local command's help offers no server options */
        if ((cmd->flags & FOTA_CLI_CMD_LOCAL) && (strstr(r.out, "--server") ||
                                                   strstr(r.out, "--cacert")))
            fail_msg("`%s --help` offers server options:\n%s", usage + 7, r.out);
        /* -h anywhere, even after a positional or with other options. */
        if (cmd->verb)
            run(&r, cmd->group, cmd->verb, "x", "--json", "-h", NULL);
        else
            run(&r, cmd->group, "x", "-h", NULL);
        if (r.status != 0 || strncmp(r.out, usage, strlen(usage)) != 0)
            fail_msg("`%s x -h`: exit %d\n%s%s", usage + 7, r.status, r.out, r.err);
    }
    assert_true(n >= 28);
}

/* Every row: a handler, texts, a sane positional count, an option table the
 * parser can hold, and no option spelled twice (one would shadow the
 * other) among its own and the common ones, except that a local command may
 * shadow the server options it has no use for (release sign --key). */
static void test_table_is_sound(void **state)
{
    const struct fota_cli_command *cmd, *other;
    const struct fota_cli_opt *tabs[2], *a, *b;
    int t, u;

    (void)state;
    for (cmd = fota_cli_commands; cmd->group; cmd++) {
        assert_non_null(cmd->run);
        assert_non_null(cmd->synopsis);
        assert_non_null(cmd->summary);
        /* a command talks to the server or works on local files, never neither */
        assert_true(!!(cmd->flags & FOTA_CLI_CMD_SERVER) != !!(cmd->flags & FOTA_CLI_CMD_LOCAL));
        assert_true(cmd->min_args >= 0);
        assert_true(cmd->max_args < 0 || cmd->max_args >= cmd->min_args);
        assert_true(fota_cli_args_count(cmd->opts) <= FOTA_CLI_ARGS_MAX_OPTS);
        tabs[0] = cmd->opts;
        tabs[1] = fota_cli_args_common;
        for (t = 0; t < 2; t++)
            for (a = tabs[t]; a && a->name; a++)
                for (u = t; u < 2; u++)
                    for (b = u == t ? a + 1 : tabs[u]; b && b->name; b++)
                        if ((cmd->flags & FOTA_CLI_CMD_LOCAL) && t == 0 && u == 1 &&
                            strcmp(a->name, b->name) == 0 &&
                            (strcmp(b->name, "server") == 0 || strcmp(b->name, "key") == 0 ||
                             strcmp(b->name, "cacert") == 0))
                            continue;
                        else if (strcmp(a->name, b->name) == 0 ||
                            (a->short_name && a->short_name == b->short_name))
                            fail_msg("%s %s: --%s and --%s clash", cmd->group,
                                     cmd->verb ? cmd->verb : "", a->name, b->name);
        for (other = fota_cli_commands; other < cmd; other++)
            if (strcmp(other->group, cmd->group) == 0 &&
                !!other->verb != !!cmd->verb)
                fail_msg("group %s mixes commands with and without a verb", cmd->group);
            else if (strcmp(other->group, cmd->group) == 0 && cmd->verb &&
                     strcmp(other->verb, cmd->verb) == 0)
                fail_msg("%s %s is in the table twice", cmd->group, cmd->verb);
    }
}

/* exit 2, nothing on stdout, one "fotactl: ..." line on stderr holding want. */
static void check_usage_error(const struct run *r, const char *want)
{
    const char *nl = strchr(r->err, '\n');

    if (r->status != FOTA_CLI_EXIT_USAGE || !strstr(r->err, want) || r->out[0] ||
        strncmp(r->err, "fotactl: ", 9) != 0 || !nl || nl[1])
        fail_msg("want exit 2 and one line with %s, got %d\nstdout %s\nstderr %s", want,
                 r->status, r->out, r->err);
}

static void test_bad_lines(void **state)
{
    struct run r;

    (void)state;
    run(&r, "frobnicate", NULL);
    check_usage_error(&r, "no command 'frobnicate' (see fotactl --help)");
    run(&r, "product", "explode", NULL);
    check_usage_error(&r, "unknown command 'product explode' (see fotactl product --help)");
    run(&r, "product", "list", "--bogus", NULL);
    check_usage_error(&r, "unknown option --bogus (see --help)");
    run(&r, "upgrade", "3", "--version", NULL);
    check_usage_error(&r, "--version needs a value (V)");
    run(&r, "release", "publish", "-p", NULL);
    check_usage_error(&r, "--product needs a value (P)");
    run(&r, "release", "publish", "--current=1", "a.bin", NULL);
    check_usage_error(&r, "--current takes no value");
    run(&r, "product", "list", "--server", "http://127.0.0.1:1", NULL);
    check_usage_error(&r, "no key: run `fotactl login`, set FOTA_KEY or pass --key");
    run(&r, "product", "list", NULL);
    check_usage_error(&r, "no server: run `fotactl login`, set FOTA_SERVER or pass --server");
    run(&r, "login", "--server", "http://127.0.0.1:1", NULL);
    check_usage_error(&r, "login needs --server URL and --key KEY");
    /* The key's shape is checked before any request: port 1 is never tried. */
    run(&r, "login", "--server", "http://127.0.0.1:1", "--key", "abc", NULL);
    check_usage_error(&r, "the key from --key is malformed (40 hex characters expected, got 3 "
                          "characters)");
    setenv("FOTA_KEY", "0123456789abcdef0123456789abcdef0123456z", 1);
    run(&r, "device", "list", "--server", "http://127.0.0.1:1", NULL);
    check_usage_error(&r, "the key from FOTA_KEY is malformed (40 hex characters expected, got "
                          "a character that is not hex)");
    unsetenv("FOTA_KEY");
}

/* The arduino options are checked before any request: port 1 is never tried. */
static void test_arduino_lines(void **state)
{
    static const char key[] = "0123456789abcdef0123456789abcdef01234567";
    char priv[96];
    struct run r;
    FILE *f;

    (void)state;
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--platform", "esp32", NULL);
    check_usage_error(&r, "--platform wants nonos or arduino");
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--gzip", NULL);
    check_usage_error(&r, "are for --platform arduino");
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--platform", "nonos", "--confirm-after", "5m", NULL);
    check_usage_error(&r, "are for --platform arduino");
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--platform", "arduino", "--arduino-core", "2.8", NULL);
    check_usage_error(&r, "--arduino-core wants the core line the devices run");
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--platform", "arduino", "--flash-mode", "fast", NULL);
    check_usage_error(&r, "--flash-mode wants qio, qout, dio, dout");
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--platform", "arduino", "--checkin-interval", "0", NULL);
    check_usage_error(&r, "--checkin-interval wants 1s to 30d");
    run(&r, "product", "arduino", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--gzip", "--no-gzip", NULL);
    check_usage_error(&r, "give --gzip or --no-gzip, not both");
    /* a private key as the product's key never leaves the machine */
    snprintf(priv, sizeof(priv), "%s/private.pem", home);
    f = fopen(priv, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    run(&r, "product", "arduino", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--signing-key", priv, NULL);
    check_usage_error(&r, "is a private key; the product takes the public one");
    run(&r, "product", "create", "plug", "--server", "http://127.0.0.1:1", "--key", key,
        "--platform", "arduino", "--signing-key", priv, NULL);
    check_usage_error(&r, "nothing was sent");
    unlink(priv);
    /* release sign is local: no server or key needed, but its --key is */
    run(&r, "release", "sign", "in.bin", "out.bin", NULL);
    check_usage_error(&r, "release sign needs --key PRIVATE.PEM");
    run(&r, "release", "sign", "in.bin", NULL);
    assert_int_equal(r.status, FOTA_CLI_EXIT_USAGE);
    assert_string_equal(r.err, "usage: fotactl release sign --key PRIVATE.PEM IN OUT [options]\n");
}

static void test_positional_counts(void **state)
{
    struct run r;

    (void)state;
    /* Too few or too many: the usage line on stderr, exit 2. */
    run(&r, "product", "create", NULL);
    assert_int_equal(r.status, FOTA_CLI_EXIT_USAGE);
    assert_string_equal(r.err, "usage: fotactl product create NAME [options]\n");
    run(&r, "product", "list", "extra", NULL);
    assert_int_equal(r.status, FOTA_CLI_EXIT_USAGE);
    assert_string_equal(r.err, "usage: fotactl product list [options]\n");
    run(&r, "rpc", "3", NULL);
    assert_int_equal(r.status, FOTA_CLI_EXIT_USAGE);
    assert_string_equal(r.err, "usage: fotactl rpc DEVICE ACTION [KEY=VALUE...] [options]\n");
    run(&r, "release", "download", "--product", "p", "v1", NULL);
    assert_int_equal(r.status, FOTA_CLI_EXIT_USAGE);
    assert_non_null(strstr(r.err, "usage: fotactl release download"));
}

static void test_group_help(void **state)
{
    struct run r;

    (void)state;
    run(&r, "device", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: fotactl device COMMAND [options]"));
    assert_non_null(strstr(r.out, "  rotate-keys  "));
    assert_null(strstr(r.out, "publish"));
    run(&r, "rollout", "help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "  cancel       "));
    /* A group without its verb is a usage error that shows the verbs. */
    run(&r, "release", NULL);
    assert_int_equal(r.status, FOTA_CLI_EXIT_USAGE);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "  publish      "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_of_every_command),
        cmocka_unit_test(test_table_is_sound),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_arduino_lines),
        cmocka_unit_test(test_positional_counts),
        cmocka_unit_test(test_group_help),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
