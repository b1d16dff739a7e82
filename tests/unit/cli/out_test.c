/* out_test.c - unit tests of the list tables in cli/out.c (fota_cli_out_list,
 * fota_cli_out_list_cells): cells from members, formatter callbacks with the
 * caller's data, '-' for empty cells only where a column asks, reverse order,
 * the per-list cell size, bad descriptions; output as piped (TSV). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "fota_err.h"
#include "out.h"

/* Runs the list into a temp file and returns what it printed (static). */
static const char *print(const char *rows_json, const struct fota_cli_list *l, void *ud, int *rc)
{
    static char out[4096];
    json_t *rows = rows_json ? json_loads(rows_json, 0, NULL) : NULL;
    FILE *f = tmpfile();
    size_t n;

    assert_non_null(f);
    assert_true(!rows_json || rows);
    *rc = fota_cli_out_list(f, rows, l, ud);
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    json_decref(rows);
    return out;
}

/* "<prefix>:<member>" using the caller's data as the prefix. */
static const char *tagged(const json_t *row, const char *field, void *ud, char *buf, size_t cap)
{
    char v[64];

    snprintf(buf, cap, "%s:%s", (const char *)ud, fota_cli_out_fmt(json_object_get(row, field), v,
                                                                   sizeof(v)));
    return buf;
}

static const char *constant(const json_t *row, const char *field, void *ud, char *buf,
                            size_t cap)
{
    (void)row;
    (void)field;
    (void)ud;
    (void)buf;
    (void)cap;
    return "k";
}

static const struct fota_cli_col cols[] = {
    { "ID", "id", NULL, 0 },
    { "NAME", "name", NULL, 1 },
    { "NOTE", "note", NULL, 0 },
    { "TAG", "id", tagged, 1 },
    { "K", NULL, constant, 0 },
};

static void cells_from_members(void **state)
{
    static const struct fota_cli_list l = FOTA_CLI_LIST(cols, 64, 0);
    int rc;

    (void)state;
    assert_int_equal(l.ncols, 5);
    assert_string_equal(print("[{\"id\": 7, \"name\": \"plug\", \"note\": true},"
                              " {\"id\": 8, \"name\": \"\", \"note\": \"\"},"
                              " {\"id\": 9, \"note\": \"a\\tb\\nc\"}]", &l, "p", &rc),
                        "7\tplug\tyes\tp:7\tk\n"
                        "8\t-\t\tp:8\tk\n"          /* dash only where the column asks */
                        "9\t-\ta b c\tp:9\tk\n");   /* missing member; TSV framing kept */
    assert_int_equal(rc, 0);
}

static void reverse_order(void **state)
{
    static const struct fota_cli_list l = FOTA_CLI_LIST(cols, 64, 1);
    int rc;

    (void)state;
    assert_string_equal(print("[{\"id\": 1}, {\"id\": 2}, {\"id\": 3}]", &l, "x", &rc),
                        "3\t-\t-\tx:3\tk\n2\t-\t-\tx:2\tk\n1\t-\t-\tx:1\tk\n");
    assert_int_equal(rc, 0);
}

static void cell_size_cuts(void **state)
{
    static const struct fota_cli_list l = FOTA_CLI_LIST(cols, 4, 0);
    int rc;

    (void)state;
    assert_string_equal(print("[{\"id\": 123456, \"name\": \"abcdef\"}]", &l, "p", &rc),
                        "123\tabc\t-\tp:1\tk\n");
    assert_int_equal(rc, 0);
}

static void no_rows(void **state)
{
    static const struct fota_cli_list l = FOTA_CLI_LIST(cols, 64, 0);
    int rc;

    (void)state;
    assert_string_equal(print(NULL, &l, "p", &rc), "");
    assert_int_equal(rc, 0);
    assert_string_equal(print("[]", &l, "p", &rc), "");
    assert_int_equal(rc, 0);
}

static void bad_descriptions(void **state)
{
    struct fota_cli_list l = FOTA_CLI_LIST(cols, 64, 0);
    int rc;

    (void)state;
    l.ncols = 0;
    assert_string_equal(print("[{\"id\": 1}]", &l, "p", &rc), "");
    assert_int_equal(rc, FOTA_EINVAL);
    l.ncols = FOTA_CLI_TABLE_MAX_COLS + 1;
    print("[{\"id\": 1}]", &l, "p", &rc);
    assert_int_equal(rc, FOTA_EINVAL);
    l.ncols = 5;
    l.cap = 1;
    print("[{\"id\": 1}]", &l, "p", &rc);
    assert_int_equal(rc, FOTA_EINVAL);
    l.cap = FOTA_CLI_CELL_MAX + 1;
    print("[{\"id\": 1}]", &l, "p", &rc);
    assert_int_equal(rc, FOTA_EINVAL);
}

static void time_cells(void **state)
{
    static const struct fota_cli_col tcols[] = {
        { "AT", "at", fota_cli_out_cell_time, 1 },
    };
    static const struct fota_cli_list l = FOTA_CLI_LIST(tcols, 64, 0);
    char buf[1][FOTA_CLI_CELL_MAX];
    const char *cells[1];
    json_t *row;

    (void)state;
    row = json_pack("{s:i}", "at", 86400 + 3661);
    fota_cli_out_list_cells(row, &l, NULL, buf, cells);
    assert_string_equal(cells[0], "1970-01-02 01:01:01");
    json_decref(row);
    row = json_pack("{s:i}", "at", 0);   /* no time: "-" */
    fota_cli_out_list_cells(row, &l, NULL, buf, cells);
    assert_string_equal(cells[0], "-");
    json_decref(row);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cells_from_members),
        cmocka_unit_test(reverse_order),
        cmocka_unit_test(cell_size_cuts),
        cmocka_unit_test(no_rows),
        cmocka_unit_test(bad_descriptions),
        cmocka_unit_test(time_cells),
    };
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);

    /* Tables print as piped (TSV, no header) whatever runs the test. */
    assert_true(saved >= 0 && null >= 0);
    fflush(stdout);
    dup2(null, STDOUT_FILENO);
    fota_cli_out_init(0);
    dup2(saved, STDOUT_FILENO);
    close(null);
    close(saved);
    setenv("TZ", "UTC", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
