/* privdrop.h - fotad started as root runs as the user of the `user` option
 * (--user). It becomes that user, its group and its supplementary groups
 * before it opens the data directory, so every file there belongs to the
 * user, and keeps only CAP_NET_BIND_SERVICE until its listeners are bound
 * (ports 80 and 443); then it gives that up too and checks that neither root
 * nor a capability can come back. Start-up code of main.c only. */
#ifndef FOTA_PRIVDROP_H
#define FOTA_PRIVDROP_H

#include <sys/types.h>

struct fota_privdrop {
    int   switched;   /* begin became the user: end has a capability to drop */
    uid_t uid;
    gid_t gid;
    char  name[64];
};

/* Before the data directory is opened; pd is the caller's, user and data_dir
 * are borrowed for the call.
 * - Started as root with user set: looks the user up, creates data_dir (and
 *   missing parents, 0755, root's) as a directory of the user (0700) when it
 *   is missing, refuses a data_dir owned by anyone else, then takes the
 *   user's groups (initgroups), gid and uid, keeping CAP_NET_BIND_SERVICE.
 * - Started as root with user "" or root: refuses a data_dir that belongs to
 *   another user (files root made there would lock that user out of them).
 * - Not root: user must be "" or the user fotad runs as (the systemd unit
 *   starts fotad as its user, with the same configuration file).
 * Returns 0; FOTA_ECONFIG when the user is unknown or is not the user a
 * process that is not root runs as; FOTA_EPERM when data_dir belongs to
 * another user, is not a directory, or a switch fails. Every failure is
 * logged (ERROR) with its reason. */
int fota_privdrop_begin(struct fota_privdrop *pd, const char *user, const char *data_dir);

/* After every listener is bound. Unless fotad runs as root (started as root
 * with user ""), drops every capability (CAP_NET_BIND_SERVICE kept by begin,
 * or given by the systemd unit), then checks that real, effective and saved
 * uid and gid are the user's, that setuid(0) and setgid(0) fail and that no
 * capability is left. 0, or FOTA_EPERM (logged) when a check fails. */
int fota_privdrop_end(struct fota_privdrop *pd);

/* 0 when user is "" or names a user of this machine, else FOTA_ECONFIG
 * (for `fotad -t`; nothing is logged). */
int fota_privdrop_check_user(const char *user);

#endif
