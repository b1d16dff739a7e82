/* config.c - fotactl's server/key resolution and the config file `fotactl
 * login` writes. The file is a tiny INI subset ([section], key = value, #
 * and ; comments) a person can edit; it holds an admin key, hence 0600
 * inside a 0700 directory. (Read here rather than with inih so fotactl links
 * only libcurl and jansson.) */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_err.h"
#include "fota_str.h"

int fota_cli_config_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;

    /* XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored. */
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/fota/config", xdg);
    else if (home && home[0])
        n = snprintf(buf, len, "%s/.config/fota/config", home);
    else
        return FOTA_ENOENT;
    if (n < 0 || (size_t)n >= len)
        return FOTA_ETOOBIG;
    return 0;
}

struct load_state {
    char server[FOTA_CLI_URL_MAX];
    char key[FOTA_CLI_KEY_MAX];
    char cacert[FOTA_CLI_PATH_MAX];
    int bad;
};

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* Reads the file into st. Returns 0, -1 if it cannot be read, or the number
 * of the first malformed line. Unknown sections and keys are ignored (they
 * belong to later versions). */
static int read_ini(const char *path, struct load_state *st)
{
    char line[FOTA_CLI_URL_MAX + 64], section[32] = "";
    int lineno = 0, rc = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char *s, *eq, *name, *value;

        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = lineno;   /* longer than any valid line */
            break;
        }
        s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');

            if (!end || (size_t)(end - s - 1) >= sizeof(section)) {
                rc = lineno;
                break;
            }
            *end = '\0';
            fota_str_copy(section, sizeof(section), trim(s + 1));   /* fits: checked above */
            continue;
        }
        eq = strchr(s, '=');
        if (!eq) {
            rc = lineno;
            break;
        }
        *eq = '\0';
        name = trim(s);
        value = trim(eq + 1);
        if (strcmp(section, "server") != 0)
            continue;
        if (strcmp(name, "url") == 0)
            st->bad |= fota_str_copy(st->server, sizeof(st->server), value) >= sizeof(st->server);
        else if (strcmp(name, "key") == 0)
            st->bad |= fota_str_copy(st->key, sizeof(st->key), value) >= sizeof(st->key);
        else if (strcmp(name, "cacert") == 0)
            st->bad |= fota_str_copy(st->cacert, sizeof(st->cacert), value) >= sizeof(st->cacert);
    }
    if (rc == 0 && ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

/* One setting: the flag wins over the environment, which wins over the file.
 * A value too long for dst is refused, never cut. */
static int pick(char *dst, size_t cap, const char **from, const char *file_val, const char *path,
                const char *env_name, const char *flag, const char *flag_name, char *err,
                size_t errlen)
{
    const char *env = getenv(env_name);
    const char *val = file_val[0] ? file_val : NULL, *src = path;

    if (env && env[0]) {
        val = env;
        src = env_name;
    }
    if (flag) {
        val = flag;
        src = flag_name;
    }
    if (!val)
        return 0;
    if (fota_str_copy(dst, cap, val) >= cap) {
        dst[0] = '\0';
        snprintf(err, errlen, "%s is too long", src);
        return FOTA_ECONFIG;
    }
    *from = src;
    return 0;
}

int fota_cli_config_load(struct fota_cli_config *c, const char *flag_server, const char *flag_key,
                         const char *flag_cacert, char *err, size_t errlen)
{
    struct load_state st;
    const char *cafrom = NULL;
    int rc;

    memset(c, 0, sizeof(*c));
    memset(&st, 0, sizeof(st));
    if (fota_cli_config_path(c->path, sizeof(c->path)) < 0)
        c->path[0] = '\0';
    if (c->path[0] && access(c->path, F_OK) == 0) {
        struct stat sb;

        /* It holds an admin key: say so when others can read it (once per
         * run; the command still works, as ssh's config checks do not). */
        if (stat(c->path, &sb) == 0 && (sb.st_mode & 077))
            fprintf(stderr, "fotactl: warning: %s can be read by other users "
                            "(chmod 600 it)\n", c->path);
        rc = read_ini(c->path, &st);
        if (rc != 0 || st.bad) {
            if (rc > 0)
                snprintf(err, errlen, "%s: line %d is not valid", c->path, rc);
            else if (st.bad)
                snprintf(err, errlen, "%s: a value is too long", c->path);
            else
                snprintf(err, errlen, "%s: cannot read it (%s)", c->path, strerror(errno));
            return FOTA_ECONFIG;
        }
    }
    rc = pick(c->server, sizeof(c->server), &c->server_from, st.server, c->path, "FOTA_SERVER",
              flag_server, "--server", err, errlen);
    if (rc == 0)
        rc = pick(c->key, sizeof(c->key), &c->key_from, st.key, c->path, "FOTA_KEY", flag_key,
                  "--key", err, errlen);
    if (rc == 0)
        rc = pick(c->cacert, sizeof(c->cacert), &cafrom, st.cacert, c->path, "FOTA_CACERT",
                  flag_cacert, "--cacert", err, errlen);
    return rc;
}

/* mkdir -p for the directory part of path, each new level 0700. */
static int make_dirs(char *path, char *err, size_t errlen)
{
    char *p;

    for (p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s (%s)", path, strerror(errno));
            *p = '/';
            return FOTA_EIO;
        }
        *p = '/';
    }
    return 0;
}

static int has_newline(const char *s)
{
    return strchr(s, '\n') != NULL || strchr(s, '\r') != NULL;
}

/* Writes the file's text to fd, syncs and closes it. Returns 0 or FOTA_EIO
 * (errno set). */
static int write_config(int fd, const char *server, const char *key, const char *cacert)
{
    FILE *f = fdopen(fd, "w");
    int rc = 0;

    if (!f) {
        close(fd);
        return FOTA_EIO;
    }
    fprintf(f, "# fotactl configuration, written by `fotactl login`.\n"
               "# FOTA_SERVER/FOTA_KEY and --server/--key override it.\n"
               "[server]\nurl = %s\nkey = %s\n", server, key);
    if (cacert && cacert[0])
        fprintf(f, "cacert = %s\n", cacert);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = FOTA_EIO;
    if (fclose(f) != 0)
        rc = FOTA_EIO;
    return rc;
}

/* Creates the directories of the config file, the last one (fota/) private
 * to its owner. Returns 0 or FOTA_EIO with a sentence in err. */
static int make_config_dir(const char *path, char *err, size_t errlen)
{
    char dir[FOTA_CLI_PATH_MAX], *slash;
    int rc;

    fota_str_copy(dir, sizeof(dir), path);
    rc = make_dirs(dir, err, errlen);
    if (rc < 0)
        return rc;
    /* The fota/ directory itself is ours: make sure nobody else can list it. */
    slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        if (chmod(dir, 0700) < 0) {
            snprintf(err, errlen, "cannot chmod %s (%s)", dir, strerror(errno));
            return FOTA_EIO;
        }
    }
    return 0;
}

int fota_cli_config_save(const char *server, const char *key, const char *cacert,
                         char *path_out, size_t path_len, char *err, size_t errlen)
{
    char path[FOTA_CLI_PATH_MAX], tmp[FOTA_CLI_PATH_MAX + 16];
    int fd, rc;

    if (has_newline(server) || has_newline(key) || (cacert && has_newline(cacert))) {
        snprintf(err, errlen, "the server and key must be one line each");
        return FOTA_EINVAL;
    }
    rc = fota_cli_config_path(path, sizeof(path));
    if (rc < 0) {
        snprintf(err, errlen, "neither HOME nor XDG_CONFIG_HOME is set");
        return rc;
    }
    rc = make_config_dir(path, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s (%s)", tmp, strerror(errno));
        return FOTA_EIO;
    }
    rc = write_config(fd, server, key, cacert);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = FOTA_EIO;
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s (%s)", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (path_out)
        fota_str_copy(path_out, path_len, path);
    return 0;
}

int fota_cli_config_key_check(const char *key, char *why, size_t cap)
{
    size_t n = strlen(key), i;

    if (n != FOTA_CLI_KEY_LEN) {
        snprintf(why, cap, "%d hex characters expected, got %zu character%s", FOTA_CLI_KEY_LEN,
                 n, n == 1 ? "" : "s");
        return FOTA_EINVAL;
    }
    for (i = 0; i < n; i++)
        if (!isxdigit((unsigned char)key[i])) {
            snprintf(why, cap, "%d hex characters expected, got a character that is not hex",
                     FOTA_CLI_KEY_LEN);
            return FOTA_EINVAL;
        }
    return 0;
}

const char *fota_cli_config_port_hint(long port)
{
    if (port == 8000)
        return "8000 is fotad's device port; the REST API is on the HTTP port, 80 by default";
    if (port == 8443)
        return "8443 is fotad's device TLS port; the REST API is on the HTTPS port, 443 by "
               "default";
    return NULL;
}
