/* config.h - fotad's configuration: tables of rows give the INI parser
 * (inih), the command-line flags, defaults, validation, --help and
 * docs/config.md. Core's rows (config.c) fill struct fota_config (srv->conf);
 * each module brings its own rows and struct (struct fota_module, server.h),
 * and the parser works on the union of every part (struct fota_conf_set).
 * Flags override the file. Modules read their values; they never parse. */
#ifndef FOTA_CONFIG_H
#define FOTA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FOTA_CONF_PATH_MAX 512
#define FOTA_PORT_OFF      (-1)   /* a port set to `off`: do not listen */

struct fota_config {
    char     data_dir[FOTA_CONF_PATH_MAX];    /* data, default "./var" */
    char     store[FOTA_CONF_PATH_MAX];       /* "sqlite" (DATA/fota.db) or "postgresql:DSN" */
    char     bind[64];                        /* numeric IPv4/IPv6 address, default 0.0.0.0 */
    char     tls_cert[FOTA_CONF_PATH_MAX];    /* PEM certificate chain, "" = no TLS */
    char     tls_key[FOTA_CONF_PATH_MAX];     /* PEM private key */
    int      log_level;                       /* FOTA_LOG_* */
    unsigned shutdown_grace;                  /* s: SIGTERM waits this long for in-flight work */
    unsigned store_threads;                   /* store executor threads (store_exec.h) */
    char     user[64];                        /* started as root: run as this user, "" = stay */
};

/* The prefix of store = postgresql:DSN. */
#define FOTA_CONF_STORE_PG "postgresql:"

/* Option flags in the table. */
#define FOTA_CONF_RELOAD 0x1u   /* applied again on SIGHUP */
#define FOTA_CONF_TLS    0x2u   /* a port that listens only with tls_cert and tls_key */

enum fota_conf_type {
    FOTA_CONF_T_STR,    /* string copied into a char array */
    FOTA_CONF_T_PORT,   /* 0..65535 or `off` */
    FOTA_CONF_T_UINT,   /* unsigned with min/max */
    FOTA_CONF_T_SIZE,   /* bytes with optional K/M/G (KiB...) suffix */
    FOTA_CONF_T_LEVEL   /* debug|info|warn|error */
};

struct fota_conf_opt {
    const char *name;       /* INI key; flag is --name with '_' -> '-' */
    int         type;       /* enum fota_conf_type */
    size_t      offset;     /* into the part's struct */
    size_t      size;       /* field size (strings) */
    const char *def;        /* default as text */
    uint64_t    min, max;   /* UINT/SIZE bounds */
    unsigned    flags;      /* FOTA_CONF_RELOAD */
    const char *help;
};

/* A row of a table filling struct T's field F (its offset and size). */
#define FOTA_CONF_FIELD(T, F) offsetof(T, F), sizeof(((T *)0)->F)

/* Core's rows, terminated by an entry with name NULL. */
extern const struct fota_conf_opt fota_config_opts[];
/* Core's cross-row rules (data not empty, bind numeric, TLS pair). */
int fota_config_check_core(const void *conf, char *err, size_t errlen);

/* One table and the struct its rows fill. */
struct fota_conf_part {
    const char *name;                         /* "core" or the module's name */
    const struct fota_conf_opt *opts;         /* terminated by name NULL */
    void *base;                               /* the struct the offsets point into */
    int (*check)(const void *base, char *err, size_t errlen);  /* cross-row rules, or NULL */
};

/* Every part fotad knows: core's first, then each module's, in table order. */
#define FOTA_CONF_PARTS_MAX 16
struct fota_conf_set {
    struct fota_conf_part part[FOTA_CONF_PARTS_MAX];
    size_t n;
};

/* Appends a part. FOTA_ETOOBIG when the set is full. */
int fota_config_add_part(struct fota_conf_set *set, const char *name,
                         const struct fota_conf_opt *opts, void *base,
                         int (*check)(const void *base, char *err, size_t errlen));

/* Fills every part with its defaults. */
void fota_config_defaults(const struct fota_conf_set *set);

/* Sets one option by INI key name from text. 0, or FOTA_ECONFIG with a
 * message in err ("unknown option", "http_port: not a port ..."). */
int fota_config_set(const struct fota_conf_set *set, const char *name, const char *value,
                    char *err, size_t errlen);

/* Loads an INI file on top of the parts (keys at top level or in [fotad]).
 * 0, or FOTA_ECONFIG / FOTA_EIO with "FILE:LINE: reason" in err. */
int fota_config_load_file(const struct fota_conf_set *set, const char *path, char *err,
                          size_t errlen);
/* The same from an open stream (name stands for the file in messages): the
 * INI text of a buffer (fmemopen) reaches the same parser. */
int fota_config_load_stream(const struct fota_conf_set *set, FILE *f, const char *name,
                            char *err, size_t errlen);

/* Checks every part's cross-row rules and that no port is configured twice
 * across the parts. */
int fota_config_check(const struct fota_conf_set *set, char *err, size_t errlen);

/* Parsed command line. */
struct fota_cmdline {
    const char *config_file;   /* -c FILE, NULL if none */
    int test_only;             /* -t */
    int help;                  /* -h / --help */
    int version;               /* -V / --version */
    int config_doc;            /* --config-doc: print docs/config.md */
};

/* Full pipeline: defaults, then -c FILE, then the flags. argv[0] is the
 * program name. Returns 0 or FOTA_ECONFIG with a message in err. */
int fota_config_from_args(const struct fota_conf_set *set, struct fota_cmdline *cl, int argc,
                          char **argv, char *err, size_t errlen);

/* Prints the --help text / the markdown reference (docs/config.md). */
void fota_config_usage(FILE *f, const char *prog, const struct fota_conf_set *set);
void fota_config_doc(FILE *f, const struct fota_conf_set *set);

/* Copies the rows flagged FOTA_CONF_RELOAD of every part of src into the
 * same part of dst (both sets list the same tables) and writes a
 * comma-separated list of the changed names into changed (may be ""). */
void fota_config_apply_reloadable(const struct fota_conf_set *dst,
                                  const struct fota_conf_set *src, char *changed,
                                  size_t changed_len);

/* The entry of names[0..n) closest to word (optimal string alignment
 * distance, a transposition counting one), when close enough to be a typo
 * of it (at most 2 edits, fewer than half of word); NULL otherwise. For
 * "did you mean" in the messages about unknown options. */
const char *fota_config_nearest(const char *word, const char *const *names, size_t n);

/* Formats a port value for logs: "8000", "off". */
const char *fota_config_port_str(int port, char *buf, size_t len);

#endif
