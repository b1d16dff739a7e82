/* privdrop.c - running fotad as an unprivileged user (privdrop.h). The
 * capability calls go straight to the kernel (capget/capset): fotad needs
 * two of them, not libcap. Runs before any worker thread starts. */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fota_str.h"
#include "log.h"

/* Sets the permitted and effective capability sets to caps (a mask of the
 * first 32 capabilities) and the inheritable set to none. */
static int caps_set(uint32_t caps)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    d[0].permitted = caps;
    d[0].effective = caps;
    return (int)syscall(SYS_capset, &h, d);
}

/* 1 when any capability is permitted or effective, 0 when none, -1 on error. */
static int caps_any(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    return (d[0].permitted | d[1].permitted | d[0].effective | d[1].effective) != 0;
}

/* "fota" for a uid with a name, else the number. */
static const char *user_name(uid_t uid, char *buf, size_t cap)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        fota_str_copy(buf, cap, pw->pw_name);
    else
        snprintf(buf, cap, "%lu", (unsigned long)uid);
    return buf;
}

/* The data directory of a process about to become uid: created as uid's
 * (0700) when missing, its missing parents as root's (0755). */
static int data_dir_make(const char *path, uid_t uid, gid_t gid)
{
    char buf[4096];
    size_t n = fota_str_copy(buf, sizeof(buf), path);
    if (n >= sizeof(buf))
        return -1;
    while (n > 1 && buf[n - 1] == '/')   /* "/var/lib/fota/" is the directory fota */
        buf[--n] = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0)
        return errno == EEXIST ? 0 : -1;
    return chown(buf, uid, gid);
}

/* data_dir, when it exists, must be a directory of uid. */
static int data_dir_check(const char *path, uid_t uid, const char *user)
{
    struct stat st;
    char owner[64], q[256];
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        FOTA_ERROR("cannot read data dir path=%s error=\"%s\"",
                   fota_log_quote(path, q, sizeof(q)), strerror(errno));
        return FOTA_EPERM;
    }
    if (!S_ISDIR(st.st_mode)) {
        FOTA_ERROR("data dir is not a directory path=%s", fota_log_quote(path, q, sizeof(q)));
        return FOTA_EPERM;
    }
    if (st.st_uid == uid)
        return 0;
    user_name(st.st_uid, owner, sizeof(owner));
    if (user[0])
        FOTA_ERROR("data dir belongs to another user, refusing to start path=%s owner=%s "
                   "user=%s hint=\"chown -R %s: the data dir\"",
                   fota_log_quote(path, q, sizeof(q)), owner, user, user);
    else
        FOTA_ERROR("data dir belongs to another user, refusing to run as root on it path=%s "
                   "owner=%s hint=\"start fotad with --user %s\"",
                   fota_log_quote(path, q, sizeof(q)), owner, owner);
    return FOTA_EPERM;
}

/* Root becomes pw's user, keeping CAP_NET_BIND_SERVICE. */
static int become(struct fota_privdrop *pd, const struct passwd *pw)
{
    const char *step = "prctl(PR_SET_KEEPCAPS)";
    if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0)
        goto fail;
    step = "initgroups";
    if (initgroups(pw->pw_name, pw->pw_gid) != 0)
        goto fail;
    step = "setgid";
    if (setgid(pw->pw_gid) != 0)
        goto fail;
    step = "setuid";
    if (setuid(pw->pw_uid) != 0)
        goto fail;
    step = "capset";
    if (caps_set(1u << CAP_NET_BIND_SERVICE) != 0)
        goto fail;
    step = "prctl(PR_SET_KEEPCAPS)";
    if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0)
        goto fail;
    pd->switched = 1;
    pd->uid = pw->pw_uid;
    pd->gid = pw->pw_gid;
    fota_str_copy(pd->name, sizeof(pd->name), pw->pw_name);
    return 0;
fail:
    FOTA_ERROR("cannot switch to user user=%s step=%s error=\"%s\"", pw->pw_name, step,
               strerror(errno));
    return FOTA_EPERM;
}

int fota_privdrop_begin(struct fota_privdrop *pd, const char *user, const char *data_dir)
{
    struct passwd *pw = NULL;
    char self[64], q[256];

    memset(pd, 0, sizeof(*pd));
    if (user[0]) {
        errno = 0;
        pw = getpwnam(user);
        if (!pw) {
            FOTA_ERROR("unknown user user=%s option=user%s%s",
                       fota_log_quote(user, q, sizeof(q)), errno ? " error=" : "",
                       errno ? strerror(errno) : "");
            return FOTA_ECONFIG;
        }
    }
    if (geteuid() != 0) {
        if (pw && pw->pw_uid != geteuid()) {
            FOTA_ERROR("option user needs root user=%s running_as=%s", pw->pw_name,
                       user_name(geteuid(), self, sizeof(self)));
            return FOTA_ECONFIG;
        }
        return 0;
    }
    if (!pw || pw->pw_uid == 0)   /* no user, or root: fotad stays root */
        return data_dir_check(data_dir, 0, "");
    if (data_dir_make(data_dir, pw->pw_uid, pw->pw_gid) != 0) {
        FOTA_ERROR("cannot create data dir path=%s error=\"%s\"",
                   fota_log_quote(data_dir, q, sizeof(q)), strerror(errno));
        return FOTA_EPERM;
    }
    int r = data_dir_check(data_dir, pw->pw_uid, pw->pw_name);
    return r ? r : become(pd, pw);
}

int fota_privdrop_end(struct fota_privdrop *pd)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (getuid() == 0 && geteuid() == 0)
        return 0;   /* started as root without a user: stays root */
    if (caps_set(0) != 0) {
        FOTA_ERROR("cannot drop capabilities error=\"%s\"", strerror(errno));
        return FOTA_EPERM;
    }
    if (caps_any() != 0 || setuid(0) == 0 || setgid(0) == 0) {
        FOTA_ERROR("privileges still held after the drop, refusing to run");
        return FOTA_EPERM;
    }
    if (!pd->switched)
        return 0;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != pd->uid ||
        eu != pd->uid || su != pd->uid || rg != pd->gid || eg != pd->gid || sg != pd->gid) {
        FOTA_ERROR("user ids are not the user's after the drop user=%s", pd->name);
        return FOTA_EPERM;
    }
    FOTA_INFO("running as user user=%s uid=%lu gid=%lu", pd->name, (unsigned long)pd->uid,
              (unsigned long)pd->gid);
    return 0;
}

int fota_privdrop_check_user(const char *user)
{
    return user[0] == '\0' || getpwnam(user) ? 0 : FOTA_ECONFIG;
}
