/* rpc_fanout_rows.c - what a bulk upgrade leaves behind when fotad stops
 * while it runs. The members it had not pushed yet have command rows in
 * state queued, and the device channel delivers a queued row as soon as its
 * device connects: after a restart, a whole fleet reconnecting would then
 * download at once, outside any window. So each job notes the ids of the
 * rows it wrote as queued (DATA/jobs-ID.rows, raw int64s, appended when
 * written), and at start-up the rows of an interrupted job that are still
 * queued are cancelled. Starting the rollout again continues it (devices
 * already on the version are skipped). Main loop only. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devchan_int.h"
#include "log.h"
#include "rpc_fanout_int.h"

#define ROWS_RESULT "{\"cancelled\": \"fotad restarted during the bulk upgrade\"}"

static int rows_path(const struct fota_fanout *fo, int64_t id, char *buf, size_t cap)
{
    const char *dir = fo->ch->srv->conf.data_dir;
    if (!dir[0])
        return -1;
    int n = snprintf(buf, cap, "%s/jobs-%lld.rows", dir, (long long)id);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

void fota_fanout__rows_note(struct job *j, const int64_t *ids, size_t n)
{
    char path[FOTA_CONF_PATH_MAX + 48];
    if (n == 0 || rows_path(j->fo, j->id, path, sizeof path) < 0)
        return;
    FILE *f = fopen(path, "ab");
    if (!f || fwrite(ids, sizeof *ids, n, f) != n || fclose(f) != 0) {
        FOTA_WARN("bulk upgrade rows not noted job=%lld path=%s error=\"%s\" (after a restart "
                  "its queued rows would be delivered)", (long long)j->id, path, strerror(errno));
        if (f)
            fclose(f);
    }
}

void fota_fanout__rows_forget(struct job *j)
{
    char path[FOTA_CONF_PATH_MAX + 48];
    if (rows_path(j->fo, j->id, path, sizeof path) == 0)
        unlink(path);
}

/* Cancels the still-queued rows named in one file; returns how many. */
static size_t recover_file(struct fota_fanout *fo, const char *path)
{
    struct fota_store *st = fo->ch->srv->store;
    FILE *f = fopen(path, "rb");
    int64_t id;
    struct fota_command c;
    struct fota_command_set *set = NULL;
    size_t n = 0, cap = 0;
    while (f && fread(&id, sizeof id, 1, f) == 1) {
        if (st->ops->command_get(st, id, &c) != 0 || c.state != FOTA_CMD_QUEUED)
            continue; /* pushed since, finished, or gone with its device */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct fota_command_set *p = realloc(set, nc * sizeof *p);
            if (!p)
                break;
            set = p;
            cap = nc;
        }
        set[n++] = (struct fota_command_set){ id, FOTA_CMD_CANCELLED, 0, ROWS_RESULT };
    }
    if (f)
        fclose(f);
    int rc = st->ops->command_update_batch(st, set, n);
    free(set);
    if (rc < 0) {
        FOTA_ERROR("queued rows of an interrupted bulk upgrade not cancelled path=%s error=%s",
                   path, fota_errname(rc));
        return 0;
    }
    return n;
}

void fota_fanout__rows_recover(struct fota_fanout *fo)
{
    const char *dir = fo->ch->srv->conf.data_dir;
    DIR *d = dir[0] ? opendir(dir) : NULL;
    struct dirent *e;
    char path[FOTA_CONF_PATH_MAX + 300];
    while (d && (e = readdir(d)) != NULL) {
        long long id;
        char tail[8];
        if (sscanf(e->d_name, "jobs-%lld.%7s", &id, tail) != 2 || strcmp(tail, "rows") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n = recover_file(fo, path);
        FOTA_WARN("bulk upgrade interrupted by a restart job=%lld rows_cancelled=%zu (start it "
                  "again to continue)", id, n);
        unlink(path);
    }
    if (d)
        closedir(d);
}
