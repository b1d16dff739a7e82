/* out.h - fotactl's output: aligned tables with a coloured header on a
 * terminal, tab-separated rows without header when piped (for awk/cut),
 * key/value blocks for `show`, the server's JSON for --json, and the one
 * line on stderr that says why a command failed. */
#ifndef FOTA_CLI_OUT_H
#define FOTA_CLI_OUT_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#define FOTA_CLI_TABLE_MAX_COLS 12

/* Decides the style once per run, before anything is printed: tty = stdout
 * is a terminal; colour when tty, NO_COLOR unset, TERM not "dumb", and
 * color_flag != 0 (--no-color passes 0). */
void fota_cli_out_init(int color_flag);
int fota_cli_out_tty(void);

/* ANSI attributes for cells and lines (empty strings when colour is off). */
const char *fota_cli_out_bold(void);
const char *fota_cli_out_green(void);
const char *fota_cli_out_dim(void);
const char *fota_cli_out_off(void);

/* Prints "fotactl: <reason>" and a newline on stderr; returns status (an
 * exit status of cli/cli.h), so a command can `return fota_cli_out_fail(...)`. */
int fota_cli_out_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lists: a table whose cells come from the members of each element of a
 * JSON array, one column description per column. */
#define FOTA_CLI_CELL_MAX 1024

/* Formats the cell of column field for element row into buf (cap bytes) and
 * returns it, or a constant string. ud is the caller's, passed through. */
typedef const char *(*fota_cli_cell_fn)(const json_t *row, const char *field, void *ud,
                                        char *buf, size_t cap);

struct fota_cli_col {
    const char *head;      /* header ("NAME") */
    const char *field;     /* member of each element ("name"); may be NULL for fn */
    fota_cli_cell_fn fn;   /* NULL: fota_cli_out_fmt of the member */
    int dash;              /* 1: an empty cell prints "-" */
};

struct fota_cli_list {
    const struct fota_cli_col *cols;
    size_t ncols;          /* 1..FOTA_CLI_TABLE_MAX_COLS */
    size_t cap;            /* bytes per cell, NUL included (longer values are cut);
                            * 2..FOTA_CLI_CELL_MAX */
    int reverse;           /* 1: last element first */
};

/* A struct fota_cli_list initialiser for an array of columns. */
#define FOTA_CLI_LIST(cols, cap, reverse) \
    { (cols), sizeof(cols) / sizeof((cols)[0]), (cap), (reverse) }

/* Cell formatters for struct fota_cli_col: the member as a time
 * (fota_cli_out_fmt_time). */
const char *fota_cli_out_cell_time(const json_t *row, const char *field, void *ud, char *buf,
                                   size_t cap);

/* Fills cells[0..l->ncols) for element row; cells point into buf or at
 * constant strings. */
void fota_cli_out_list_cells(const json_t *row, const struct fota_cli_list *l, void *ud,
                             char buf[][FOTA_CLI_CELL_MAX], const char **cells);

/* Prints the elements of array rows (NULL: none) as a table to f (aligned
 * with a header on a terminal, TSV rows when piped). Returns 0, or
 * FOTA_ENOMEM when the table could not be made (nothing printed). A row
 * that cannot be added is left out. */
int fota_cli_out_list(FILE *f, const json_t *rows, const struct fota_cli_list *l, void *ud);

/* Prints one "key  value" line of a show block (key padded to width). */
void fota_cli_out_kv(FILE *f, int width, const char *key, const char *value);

/* Prints object obj as a show block: first the members named in order
 * (NULL-terminated, may be NULL), then every other member; members whose
 * name ends in "created", "_at", "last_active", "last_checkin" or "time"
 * print as times. */
void fota_cli_out_show(FILE *f, const json_t *obj, const char *const *order);

/* Prints j as indented JSON with a final newline. */
void fota_cli_out_json(FILE *f, const json_t *j);

/* Formats a JSON scalar for a table cell into buf: strings as is, numbers,
 * true/false as yes/no, null/missing as "-"; objects/arrays compact JSON.
 * Returns buf. */
const char *fota_cli_out_fmt(const json_t *v, char *buf, size_t cap);

/* Formats Unix seconds (a JSON integer or numeric string) as local
 * "YYYY-MM-DD HH:MM:SS"; anything else as fota_cli_out_fmt. Returns buf. */
const char *fota_cli_out_fmt_time(const json_t *v, char *buf, size_t cap);

/* Formats a byte count (a JSON integer) for people: "512 bytes", or
 * "1.5 MiB (1572864 bytes)" from 1 KiB on (KiB, MiB, GiB); anything else
 * as fota_cli_out_fmt. Returns buf. */
const char *fota_cli_out_fmt_size(const json_t *v, char *buf, size_t cap);

#endif
