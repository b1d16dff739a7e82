/* out.c - table and value formatting for fotactl. The terminal/pipe decision
 * is made once, so every command prints the same way: people get aligned
 * columns, scripts get tab-separated fields. */
#include "out.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fota_err.h"
#include "fota_str.h"

/* The output style of this run: process-wide, written once by
 * fota_cli_out_init before anything is printed, read by every printer after
 * (fotactl is single-threaded). */
static int g_tty, g_color;

void fota_cli_out_init(int color_flag)
{
    const char *term = getenv("TERM");
    const char *nc = getenv("NO_COLOR");

    g_tty = isatty(STDOUT_FILENO);
    g_color = g_tty && color_flag && !(nc && nc[0]) && !(term && strcmp(term, "dumb") == 0);
}

int fota_cli_out_tty(void) { return g_tty; }
const char *fota_cli_out_bold(void) { return g_color ? "\033[1m" : ""; }
const char *fota_cli_out_green(void) { return g_color ? "\033[32m" : ""; }
const char *fota_cli_out_dim(void) { return g_color ? "\033[2m" : ""; }
const char *fota_cli_out_off(void) { return g_color ? "\033[0m" : ""; }

int fota_cli_out_fail(int status, const char *fmt, ...)
{
    va_list ap;

    fputs("fotactl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

/* A table: headers and cells copied, printed aligned or as TSV. */
struct out_table {
    size_t ncols, nrows, cap;
    char *head[FOTA_CLI_TABLE_MAX_COLS];
    char **cells;   /* nrows * ncols */
};

static void table_free(struct out_table *t);

static struct out_table *table_new(size_t ncols, const char *const *headers)
{
    struct out_table *t;
    size_t i;

    if (ncols == 0 || ncols > FOTA_CLI_TABLE_MAX_COLS)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ncols = ncols;
    for (i = 0; i < ncols; i++) {
        t->head[i] = strdup(headers[i]);
        if (!t->head[i]) {
            table_free(t);
            return NULL;
        }
    }
    return t;
}

static int table_add(struct out_table *t, const char *const *cells)
{
    size_t i, base;
    char **np;

    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;

        np = realloc(t->cells, ncap * t->ncols * sizeof(*np));
        if (!np)
            return FOTA_ENOMEM;
        t->cells = np;
        t->cap = ncap;
    }
    base = t->nrows * t->ncols;
    for (i = 0; i < t->ncols; i++) {
        t->cells[base + i] = strdup(cells[i] ? cells[i] : "-");
        if (!t->cells[base + i]) {
            while (i-- > 0)
                free(t->cells[base + i]);
            return FOTA_ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

/* Display width: UTF-8 code points, ANSI escape sequences skipped. */
static size_t width_of(const char *s)
{
    size_t w = 0;

    while (*s) {
        if (*s == '\033') {
            while (*s && !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
                s++;
            if (*s)
                s++;
            continue;
        }
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
        s++;
    }
    return w;
}

/* Tabs and newlines inside a value would break the TSV framing. */
static void print_plain(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void table_print(const struct out_table *t, FILE *f)
{
    size_t w[FOTA_CLI_TABLE_MAX_COLS];
    size_t r, c;

    if (!g_tty) {
        for (r = 0; r < t->nrows; r++) {
            for (c = 0; c < t->ncols; c++) {
                if (c)
                    fputc('\t', f);
                print_plain(f, t->cells[r * t->ncols + c]);
            }
            fputc('\n', f);
        }
        return;
    }
    for (c = 0; c < t->ncols; c++) {
        w[c] = width_of(t->head[c]);
        for (r = 0; r < t->nrows; r++) {
            size_t cw = width_of(t->cells[r * t->ncols + c]);

            if (cw > w[c])
                w[c] = cw;
        }
    }
    fputs(fota_cli_out_bold(), f);
    for (c = 0; c < t->ncols; c++)
        fprintf(f, "%s%-*s", c ? "  " : "", c + 1 < t->ncols ? (int)w[c] : 0, t->head[c]);
    fprintf(f, "%s\n", fota_cli_out_off());
    for (r = 0; r < t->nrows; r++) {
        for (c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            size_t pad = c + 1 < t->ncols ? w[c] - width_of(cell) : 0;

            fprintf(f, "%s%s%*s", c ? "  " : "", cell, (int)pad, "");
        }
        fputc('\n', f);
    }
}

static void table_free(struct out_table *t)
{
    size_t i;

    if (!t)
        return;
    for (i = 0; i < t->ncols; i++)
        free(t->head[i]);
    for (i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void fota_cli_out_kv(FILE *f, int width, const char *key, const char *value)
{
    if (!value || !value[0])
        value = "-";
    if (!g_tty) {
        fprintf(f, "%s\t", key);
        print_plain(f, value ? value : "-");
        fputc('\n', f);
        return;
    }
    fprintf(f, "%s%-*s%s  %s\n", fota_cli_out_bold(), width, key, fota_cli_out_off(),
            value ? value : "-");
}

void fota_cli_out_json(FILE *f, const json_t *j)
{
    json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fputc('\n', f);
}

const char *fota_cli_out_fmt(const json_t *v, char *buf, size_t cap)
{
    char *s;

    if (!v || json_is_null(v))
        snprintf(buf, cap, "-");
    else if (json_is_string(v))
        fota_str_copy(buf, cap, json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        fota_str_copy(buf, cap, json_is_true(v) ? "yes" : "no");
    else {
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fota_str_copy(buf, cap, s ? s : "?");
        free(s);
    }
    return buf;
}

const char *fota_cli_out_fmt_time(const json_t *v, char *buf, size_t cap)
{
    long long t = -1;
    struct tm tm;
    time_t tt;

    if (json_is_integer(v))
        t = json_integer_value(v);
    else if (json_is_real(v))
        t = (long long)json_real_value(v);
    if (t <= 0)
        return fota_cli_out_fmt(t == 0 ? NULL : v, buf, cap);
    tt = (time_t)t;
    if (!localtime_r(&tt, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, cap, "%lld", t);
    return buf;
}

const char *fota_cli_out_fmt_size(const json_t *v, char *buf, size_t cap)
{
    static const char *const units[] = { "KiB", "MiB", "GiB" };
    long long n = json_is_integer(v) ? json_integer_value(v) : -1;
    double x;
    size_t u = 0;

    if (n < 0)
        return fota_cli_out_fmt(v, buf, cap);
    if (n < 1024) {
        snprintf(buf, cap, "%lld byte%s", n, n == 1 ? "" : "s");
        return buf;
    }
    x = (double)n / 1024.0;
    while (x >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        x /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s (%lld bytes)", x, units[u], n);
    return buf;
}

static int is_time_key(const char *k)
{
    size_t n = strlen(k);

    return strcmp(k, "created") == 0 || strcmp(k, "updated") == 0 ||
           strcmp(k, "last_active") == 0 || strcmp(k, "last_checkin") == 0 ||
           strcmp(k, "time") == 0 ||
           (n > 3 && strcmp(k + n - 3, "_at") == 0);
}

static int in_list(const char *const *list, const char *k)
{
    for (; list && *list; list++)
        if (strcmp(*list, k) == 0)
            return 1;
    return 0;
}

void fota_cli_out_show(FILE *f, const json_t *obj, const char *const *order)
{
    const char *const *o;
    const char *k;
    json_t *v;
    char buf[2048];
    int width = 0;

    json_object_foreach((json_t *)obj, k, v)
        if ((int)strlen(k) > width)
            width = (int)strlen(k);
    for (o = order; o && *o; o++) {
        v = json_object_get(obj, *o);
        if (!v)
            continue;
        fota_cli_out_kv(f, width, *o, is_time_key(*o) ? fota_cli_out_fmt_time(v, buf, sizeof(buf))
                                                      : fota_cli_out_fmt(v, buf, sizeof(buf)));
    }
    json_object_foreach((json_t *)obj, k, v) {
        if (in_list(order, k))
            continue;
        fota_cli_out_kv(f, width, k, is_time_key(k) ? fota_cli_out_fmt_time(v, buf, sizeof(buf))
                                                    : fota_cli_out_fmt(v, buf, sizeof(buf)));
    }
}

const char *fota_cli_out_cell_time(const json_t *row, const char *field, void *ud, char *buf,
                                   size_t cap)
{
    (void)ud;
    return fota_cli_out_fmt_time(json_object_get(row, field), buf, cap);
}

void fota_cli_out_list_cells(const json_t *row, const struct fota_cli_list *l, void *ud,
                             char buf[][FOTA_CLI_CELL_MAX], const char **cells)
{
    const struct fota_cli_col *col;
    size_t k;

    for (k = 0; k < l->ncols; k++) {
        col = &l->cols[k];
        if (col->fn)
            cells[k] = col->fn(row, col->field, ud, buf[k], l->cap);
        else
            cells[k] = fota_cli_out_fmt(json_object_get(row, col->field), buf[k], l->cap);
        if (col->dash && !cells[k][0])
            cells[k] = "-";
    }
}

int fota_cli_out_list(FILE *f, const json_t *rows, const struct fota_cli_list *l, void *ud)
{
    const char *head[FOTA_CLI_TABLE_MAX_COLS], *cells[FOTA_CLI_TABLE_MAX_COLS];
    char buf[FOTA_CLI_TABLE_MAX_COLS][FOTA_CLI_CELL_MAX];
    struct out_table *t;
    size_t i, n = json_array_size(rows);

    if (l->ncols == 0 || l->ncols > FOTA_CLI_TABLE_MAX_COLS || l->cap < 2 ||
        l->cap > FOTA_CLI_CELL_MAX)
        return FOTA_EINVAL;
    for (i = 0; i < l->ncols; i++)
        head[i] = l->cols[i].head;
    t = table_new(l->ncols, head);
    if (!t)
        return FOTA_ENOMEM;
    for (i = 0; i < n; i++) {
        fota_cli_out_list_cells(json_array_get(rows, l->reverse ? n - 1 - i : i), l, ud, buf,
                                cells);
        table_add(t, cells);
    }
    table_print(t, f);
    table_free(t);
    return 0;
}
