/* backup.h - backups of a data dir (docs/backup.md): the backup module
 * (REST `GET /v1/backup`: the running fotad streams a consistent online
 * snapshot as one archive) and the subcommands `fotad backup` (the same
 * archive into a file, while a fotad runs on the data dir or none does) and
 * `fotad restore` (an archive into a new data dir, verified before anything
 * is written there). */
#ifndef FOTA_BACKUP_H
#define FOTA_BACKUP_H

#include "config.h"
#include "server.h"

extern const struct fota_module fota_backup_module;

/* `fotad backup ...` and `fotad restore ...`: argv[0] is "backup" or
 * "restore". set is fotad's whole configuration (so -c FILE reads the
 * daemon's file) and conf core's part of it (the data dir). Returns the
 * exit status: 0 done, 1 failed (the reason on stderr), 2 bad command line. */
int fota_backup_cmd_main(int argc, char **argv, const struct fota_conf_set *set,
                         const struct fota_config *conf);

#endif
