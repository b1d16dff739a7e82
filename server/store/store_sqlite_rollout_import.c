/* store_sqlite_rollout_import.c - the one-time move of rollout state kept
 * outside the store by older fotad versions into the rollouts table: every
 * job of DATA/jobs.json becomes a rollout row with its id, settings and
 * counters (one that was still running becomes "interrupted": its members
 * were never on disk), and the command rows named in DATA/jobs-ID.rows that
 * are still queued are cancelled (they would otherwise reach a whole fleet
 * on reconnect, outside any window). The files are removed once their rows
 * are committed, so the import runs once. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "fota_str.h"
#include "clock.h"
#include "store_sqlite_int.h"

#define IMPORT_PATH_MAX 512
#define ROWS_RESULT "{\"cancelled\": \"fotad restarted during the rollout\"}"

static int64_t jint(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static double jmark(json_t *ms, const char *k)
{
    json_t *v = json_object_get(ms, k);
    return json_is_number(v) ? json_number_value(v) : -1;
}

static int job_state(const char *s)
{
    if (s && strcmp(s, "finished") == 0)
        return FOTA_ROLLOUT_FINISHED;
    if (s && strcmp(s, "cancelled") == 0)
        return FOTA_ROLLOUT_CANCELLED;
    return FOTA_ROLLOUT_INTERRUPTED;
}

static void bind_job(sqlite3_stmt *st, json_t *o)
{
    char *filter = json_dumps(json_object_get(o, "filter"), JSON_SORT_KEYS);
    json_t *mf = json_object_get(o, "max_failures");
    json_t *ms = json_object_get(o, "elapsed_ms");
    const char *counts[] = { "total", "skipped", "waiting", "queued", "in_progress", "delivered",
                             "acked", "succeeded", "failed", "timed_out", "deleted", "cancelled" };
    sqlite3_bind_int64(st, 1, jint(o, "id"));
    sqlite3_bind_int64(st, 2, jint(o, "product_id"));
    const char *v = json_string_value(json_object_get(o, "version"));
    sqlite3_bind_text(st, 3, v ? v : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, filter ? filter : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, json_is_true(json_object_get(o, "reboot")));
    sqlite3_bind_int64(st, 6, jint(o, "window"));
    sqlite3_bind_int64(st, 7, jint(o, "timeout"));
    sqlite3_bind_int64(st, 8, json_is_integer(mf) ? (int64_t)json_integer_value(mf) : -1);
    sqlite3_bind_int(st, 9, job_state(json_string_value(json_object_get(o, "state"))));
    sqlite3_bind_int(st, 10, json_is_true(json_object_get(o, "halted")));
    for (int i = 0; i < 12; i++)
        sqlite3_bind_int64(st, 11 + i, jint(o, counts[i]));
    const char *marks[] = { "delivered", "acked", "finished" };
    for (int i = 0; i < 3; i++) {
        double m = jmark(ms, marks[i]);
        if (m < 0)
            sqlite3_bind_null(st, 23 + i);
        else
            sqlite3_bind_double(st, 23 + i, m);
    }
    sqlite3_bind_int64(st, 26, jint(o, "created"));
    sqlite3_bind_int64(st, 27, fota_clock_wall_s());
    free(filter);
}

/* The jobs of jobs.json as rollout rows (an id already present is kept). */
static int import_jobs(struct sql_store *q, const char *path, size_t *count)
{
    json_error_t jerr;
    json_t *arr = json_load_file(path, 0, &jerr);
    sqlite3_stmt *st = NULL;
    size_t i;
    json_t *o;
    int rc = 0;

    if (!json_is_array(arr)) {
        fota_store_logf(&q->base, FOTA_LOG_WARN, "rollout import skipped path=%s error=\"%s\"",
                        path, jerr.text);
        json_decref(arr);
        return 0;
    }
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO rollouts (id, product_id, version, filter, reboot,"
                           " window_size, timeout_s, max_failures, state, halted, n_total,"
                           " n_skipped, n_waiting, n_queued, n_active, n_delivered, n_acked,"
                           " n_succeeded, n_failed, n_timed_out, n_deleted, n_cancelled,"
                           " ms_delivered, ms_acked, ms_finished, created, updated) VALUES (?, ?,"
                           " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                           " ?, ?) ON CONFLICT (id) DO NOTHING", -1, &st, NULL) != SQLITE_OK)
        rc = fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout import prepare");
    json_array_foreach(arr, i, o) {
        if (rc < 0 || !json_is_object(o) || jint(o, "id") <= 0)
            continue;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        bind_job(st, o);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout import");
        else
            (*count)++;
    }
    sqlite3_finalize(st);
    json_decref(arr);
    return rc;
}

/* Cancels the still-queued command rows whose ids a jobs-ID.rows file holds. */
static int cancel_rows(struct sql_store *q, const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    sqlite3_stmt *st = NULL;
    int64_t id;
    int rc = 0;

    if (!f)
        return 0;
    if (sqlite3_prepare_v2(q->db, "UPDATE commands SET state = ?, result = ?, updated = ?"
                                  " WHERE id = ? AND state = ?", -1, &st, NULL) != SQLITE_OK)
        rc = fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout rows prepare");
    while (rc == 0 && fread(&id, sizeof id, 1, f) == 1) {
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, FOTA_CMD_CANCELLED);
        sqlite3_bind_text(st, 2, ROWS_RESULT, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, fota_clock_wall_s());
        sqlite3_bind_int64(st, 4, id);
        sqlite3_bind_int(st, 5, FOTA_CMD_QUEUED);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout rows cancel");
        else
            *count += (size_t)sqlite3_changes(q->db);
    }
    sqlite3_finalize(st);
    fclose(f);
    return rc;
}

/* 1 for "jobs-ID.rows" (ID a decimal number). */
static int rows_file(const char *name)
{
    char *end = NULL;
    if (strncmp(name, "jobs-", 5) != 0 || !isdigit((unsigned char)name[5]))
        return 0;
    strtoll(name + 5, &end, 10);
    return strcmp(end, ".rows") == 0;
}

/* The files to import in dir: jobs.json and every jobs-ID.rows. */
static size_t list_files(const char *dir, char (*paths)[IMPORT_PATH_MAX], size_t max)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && n < max && (e = readdir(d)) != NULL) {
        if (!rows_file(e->d_name) && strcmp(e->d_name, "jobs.json") != 0)
            continue;
        int k = snprintf(paths[n], IMPORT_PATH_MAX, "%s/%s", dir, e->d_name);
        if (k > 0 && k < IMPORT_PATH_MAX)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

int fota_store_sqlite_rollout_import(struct sql_store *q, const char *db_path)
{
    char dir[IMPORT_PATH_MAX], paths[64][IMPORT_PATH_MAX];
    const char *slash = strrchr(db_path, '/');
    size_t jobs = 0, rows = 0;
    int rc;

    if (!slash || (size_t)(slash - db_path) >= sizeof dir)
        return 0;   /* a database without a directory (tests): nothing to import */
    fota_str_copy_n(dir, sizeof dir, db_path, (size_t)(slash - db_path));
    size_t n = list_files(dir, paths, sizeof paths / sizeof paths[0]);
    if (n == 0)
        return 0;
    rc = fota_store_sqlite_begin(q, 1);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = strstr(paths[i], "/jobs.json") ? import_jobs(q, paths[i], &jobs)
                                            : cancel_rows(q, paths[i], &rows);
    if (rc == 0)
        rc = fota_store_sqlite_commit(q);
    else
        fota_store_sqlite_rollback(q);
    if (rc < 0) {
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "rollout import failed dir=%s error=%s", dir,
                        fota_errname(rc));
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (unlink(paths[i]) != 0)
            fota_store_logf(&q->base, FOTA_LOG_WARN, "rollout import: cannot remove path=%s "
                            "error=\"%s\"", paths[i], strerror(errno));
    fota_store_logf(&q->base, FOTA_LOG_INFO, "rollouts imported files=%zu rollouts=%zu "
                    "queued_rows_cancelled=%zu", n, jobs, rows);
    return 0;
}
