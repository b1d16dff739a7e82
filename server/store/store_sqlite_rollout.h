/* store_sqlite_rollout.h - what the SQLite rollout files share
 * (store_sqlite_rollout.c: rollouts and stages; _members.c: member rows;
 * _samples.c: progress samples). Private to server/store. */
#ifndef FOTA_STORE_SQLITE_ROLLOUT_H
#define FOTA_STORE_SQLITE_ROLLOUT_H

#include "store_sqlite_int.h"

/* Prepares sql (finalized by the caller); NULL, logged, if it does not. */
sqlite3_stmt *fota_store_sqlite_rollout_prepare(struct sql_store *q, const char *sql);
/* Binds / reads the 13 counters of struct fota_rollout_counts from index
 * idx (column col) on, in the order of the n_* columns. */
void fota_store_sqlite_rollout_bind_counts(sqlite3_stmt *st, int idx,
                                           const struct fota_rollout_counts *n);
void fota_store_sqlite_rollout_col_counts(sqlite3_stmt *st, int col,
                                          struct fota_rollout_counts *n);
/* The upsert of one member row, for save_members. */
sqlite3_stmt *fota_store_sqlite_rollout_member_stmt(struct sql_store *q);
/* Upserts nm member rows with st (the caller's transaction). */
int fota_store_sqlite_rollout_save_members(struct sql_store *q, sqlite3_stmt *st,
                                           const struct fota_rollout_member_row *ms, size_t nm,
                                           int64_t now);

#endif
