/* migrate.h - `fotad migrate --from sqlite:DATA --to postgresql:DSN --data
 * DIR`: a fleet moves from the SQLite store of one data dir into an empty
 * PostgreSQL database, with the files its new instance needs (release
 * files, secret.key, owner.key) in DIR. See docs/store.md, "Moving to
 * PostgreSQL". */
#ifndef FOTA_MIGRATE_H
#define FOTA_MIGRATE_H

/* `fotad migrate ...`: argv[0] is "migrate". Returns the exit status: 0
 * done, 1 failed or refused (the reason on stderr, the target database
 * unchanged), 2 bad command line. */
int fota_migrate_cmd_main(int argc, char **argv);

#endif
