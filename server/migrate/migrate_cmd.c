/* migrate_cmd.c - `fotad migrate --from sqlite:DATA --to postgresql:DSN
 * --data DIR`: the command line and the order of the steps. The source is
 * read from a snapshot (server/backup's: the database copied at one moment
 * and every release file it names hard-linked and verified), taken while
 * the source's lock is held, so no fotad writes there during the move.
 * The target database is brought to this fotad's schema by the PostgreSQL
 * store itself, then filled in one transaction that commits only after
 * every table is read back equal, the database's blobs hold every release
 * file (each put in a transaction of its own and read back) and the target
 * data dir holds the files the new instance needs (written first: files
 * and blobs without a commit are inert, a commit without them would be
 * releases that cannot be downloaded). */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup_int.h"
#include "clock.h"
#include "migrate_int.h"
#include "store.h"
#include "xmalloc.h"

#define FROM_PREFIX "sqlite:"
#define TO_PREFIX "postgresql:"

struct cmd {
    const char *from, *to, *data;
    int help;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fotad migrate --from sqlite:DATA_DIR --to postgresql:DSN --data DIR\n"
            "Copies the fleet of the SQLite store in DATA_DIR (every product, release, device,\n"
            "key, command, message, rollout and Arduino record, ids kept) into the PostgreSQL\n"
            "database DSN (libpq's syntax), which must hold no fleet yet, in one transaction\n"
            "that commits only when every table reads back equal. The release files go into\n"
            "the database too (read back and checked against their SHA-256), so every\n"
            "instance on it can serve them. DIR becomes the data dir of the PostgreSQL\n"
            "instance: it gets DATA_DIR's release files, secret.key (every key derives from\n"
            "it) and owner.key (the admin key); DIR may be DATA_DIR itself. No fotad may run\n"
            "on DATA_DIR meanwhile. Then: fotad --data DIR --store postgresql:DSN.\n"
            "See docs/store.md, \"Moving to PostgreSQL\".\n");
}

static int parse(struct cmd *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **val = NULL;
        if (strcmp(a, "--from") == 0)
            val = &c->from;
        else if (strcmp(a, "--to") == 0)
            val = &c->to;
        else if (strcmp(a, "--data") == 0)
            val = &c->data;
        else if (strncmp(a, "--from=", 7) == 0)
            c->from = a + 7;
        else if (strncmp(a, "--to=", 5) == 0)
            c->to = a + 5;
        else if (strncmp(a, "--data=", 7) == 0)
            c->data = a + 7;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            c->help = 1;
        else {
            fprintf(stderr, "fotad migrate: unknown argument %s\n", a);
            return -1;
        }
        if (val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "fotad migrate: %s needs a value\n", a);
                return -1;
            }
            *val = argv[++i];
        }
    }
    if (c->help)
        return 0;
    if (!c->from || strncmp(c->from, FROM_PREFIX, strlen(FROM_PREFIX)) != 0 ||
        !c->from[strlen(FROM_PREFIX)]) {
        fprintf(stderr, "fotad migrate: --from sqlite:DATA_DIR names the data dir to move\n");
        return -1;
    }
    if (!c->to || strncmp(c->to, TO_PREFIX, strlen(TO_PREFIX)) != 0 ||
        !c->to[strlen(TO_PREFIX)]) {
        fprintf(stderr, "fotad migrate: --to postgresql:DSN names the target database\n");
        return -1;
    }
    if (!c->data || !c->data[0]) {
        fprintf(stderr, "fotad migrate: --data DIR names the data dir of the PostgreSQL "
                        "instance (release files, secret.key, owner.key)\n");
        return -1;
    }
    return 0;
}

/* The PostgreSQL store's log while it applies its migrations: warnings
 * and errors only. */
static void store_log(void *ud, int level, const char *msg)
{
    if (level >= FOTA_LOG_WARN)
        fprintf(stderr, "fotad migrate: postgresql store: %s\n", msg);
}

static void summary(const struct cmd *c, const struct fota_migrate_db *m,
                    const struct fota_migrate_blobs *b, int64_t blob_ms,
                    const struct fota_migrate_target *t, const struct fota_backup_snap *s,
                    int64_t t0)
{
    size_t n;
    const struct fota_migrate_table *tb = fota_migrate_db_tables(m, &n);
    int64_t rows = 0;
    char size[32];

    for (size_t i = 0; i < n; i++)
        rows += tb[i].rows;
    printf("fotad migrate: moved %s into postgresql in %.2f s: %lld rows in %zu tables, each "
           "read back equal (count and SHA-256 of its rows)\n",
           c->from, (double)(fota_clock_mono_ms() - t0) / 1000.0, (long long)rows, n);
    for (size_t i = 0; i < n; i++) {
        if (tb[i].pg_only) {
            printf("  %-18s PostgreSQL only: SQLite has no such table\n", tb[i].name);
            continue;
        }
        printf("  %-18s %8lld rows  sha256 %.16s", tb[i].name, (long long)tb[i].rows,
               tb[i].sum);
        if (tb[i].next_id)
            printf("  next id %lld", (long long)tb[i].next_id);
        printf("\n");
    }
    fota_backup_human(b->bytes, size, sizeof(size));
    printf("release files into postgresql (blobs): %zu (%s) in %.2f s, %zu put, %zu already "
           "there, each read back and checked against its SHA-256\n",
           b->stored + b->present, size, (double)blob_ms / 1000.0, b->stored, b->present);
    if (t->same) {
        printf("release files, secret.key and owner.key: in place (%s is the source's data "
               "dir)\n",
               c->data);
    } else {
        fota_backup_human(t->bytes_copied, size, sizeof(size));
        printf("release files: %zu copied (%s) into %s/blobs, %zu already there, each checked "
               "against its SHA-256\n",
               t->blobs_copied, size, c->data, t->blobs_present);
        printf("secret.key: %s %s (mode 0600): the new instance derives every owner and master "
               "key as before\n",
               t->secret_written ? "copied into" : "already in", c->data);
        if (s->owner_len)
            printf("owner.key: %s %s (mode 0600): the same admin key\n",
                   t->owner_written ? "copied into" : "already in", c->data);
    }
    /* The DSN may hold a password: it is not printed. */
    printf("next: fotad --data %s --store postgresql:DSN (the DSN given to --to; TLS files and "
           "the configuration are not copied)\n",
           c->data);
}

int fota_migrate_cmd_main(int argc, char **argv)
{
    struct cmd c = { 0 };
    struct fota_backup_snap *snap = NULL;
    struct fota_migrate_db *m = NULL;
    struct fota_migrate_target t = { .lock_fd = -1 };
    struct fota_migrate_blobs b = { 0 };
    struct fota_store *pg = NULL;
    char err[1024] = "", db[FOTA_BACKUP_PATH_MAX + 16];
    char **hashes = NULL, **paths = NULL;
    size_t nblobs = 0;
    int src_lock = -1, rc;
    int64_t t0 = fota_clock_mono_ms(), blob_ms = 0;

    if (parse(&c, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    if (c.help) {
        usage(stdout);
        return 0;
    }
    const char *from = c.from + strlen(FROM_PREFIX), *dsn = c.to + strlen(TO_PREFIX);

    if ((rc = fota_migrate_source_lock(from, &src_lock, err, sizeof(err))) != 0)
        goto out;
    rc = fota_backup_snap_take(from, "fotad migrate", NULL, NULL, NULL, &snap, err, sizeof(err));
    if (rc)
        goto out;
    snprintf(db, sizeof(db), "%s/fota.db", snap->tmp);
    if ((rc = fota_migrate_source_check(db, err, sizeof(err))) != 0)
        goto out;
    rc = fota_migrate_target_open(&t, c.data, from, snap->secret, sizeof(snap->secret),
                                  snap->owner_len ? snap->owner : NULL, snap->owner_len, err,
                                  sizeof(err));
    if (rc)
        goto out;
    /* The store applies its schema migrations (under its advisory lock);
     * its blob_put and blob_fetch then move the release files. */
    if ((rc = fota_store_pg_open(dsn, store_log, NULL, &pg, err, sizeof(err))) != 0)
        goto out;
    /* A target that holds a fleet is refused before anything is written. */
    if ((rc = fota_migrate_db_begin(db, dsn, &m, err, sizeof(err))) != 0)
        goto out;
    if ((rc = fota_migrate_db_copy(m, err, sizeof(err))) != 0)
        goto out;
    hashes = fota_xcalloc(snap->nitems + 1, sizeof(*hashes));
    paths = fota_xcalloc(snap->nitems + 1, sizeof(*paths));
    for (size_t i = 0; i < snap->nitems; i++)
        if (snap->items[i].kind == FOTA_BACKUP_BLOB) {
            hashes[nblobs] = snap->items[i].sha256;
            paths[nblobs++] = snap->items[i].path;
        }
    /* The blobs commit before the rows that name them (docs/store.md). */
    blob_ms = fota_clock_mono_ms();
    rc = fota_migrate_blobs_put(pg, hashes, paths, nblobs, &b, err, sizeof(err));
    blob_ms = fota_clock_mono_ms() - blob_ms;
    if (rc)
        goto out;
    rc = fota_migrate_target_fill(&t, snap->secret, sizeof(snap->secret),
                                  snap->owner_len ? snap->owner : NULL, snap->owner_len, hashes,
                                  paths, nblobs, err, sizeof(err));
    if (rc == 0)
        rc = fota_migrate_db_commit(m, err, sizeof(err));
    if (rc == 0)
        summary(&c, m, &b, blob_ms, &t, snap, t0);
out:
    if (rc)
        fprintf(stderr, "fotad migrate: %s\n", err[0] ? err : fota_strerror(rc));
    free(hashes);
    free(paths);
    fota_migrate_db_free(m);
    fota_store_close(pg);
    fota_migrate_target_close(&t);
    fota_backup_snap_free(snap);
    if (src_lock >= 0)
        close(src_lock);
    return rc ? 1 : 0;
}
