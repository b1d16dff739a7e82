/* config.h - fotad's configuration: one table (config.c) gives the INI
 * parser (inih), the command-line flags, defaults, validation, --help and
 * docs/config.md. Flags override the file. Other modules read the values
 * from struct fota_config (srv->conf); they never parse anything. */
#ifndef FOTA_CONFIG_H
#define FOTA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FOTA_CONF_PATH_MAX 512
#define FOTA_PORT_OFF      (-1)   /* a port set to `off`: do not listen */

struct fota_config {
    char     config_file[FOTA_CONF_PATH_MAX]; /* "" when none */
    char     data_dir[FOTA_CONF_PATH_MAX];    /* data, default "./var" */
    char     store[16];                       /* "sqlite" (DATA/fota.db) */
    char     bind[64];                        /* numeric IPv4/IPv6 address, default 0.0.0.0 */
    int      http_port;                       /* 0 = ephemeral, FOTA_PORT_OFF = disabled */
    int      https_port;                      /* only used when tls_cert and tls_key are set */
    int      device_port;                     /* device channel, plain TCP (issue 4) */
    int      device_tls_port;                 /* device channel, TLS (needs tls_cert/tls_key) */
    int      legacy_port;                     /* raw-TCP DFU of seed 000 (issue 5) */
    char     tls_cert[FOTA_CONF_PATH_MAX];    /* PEM certificate chain, "" = no TLS */
    char     tls_key[FOTA_CONF_PATH_MAX];     /* PEM private key */
    uint64_t max_upload;                      /* largest request body, bytes */
    int      log_level;                       /* FOTA_LOG_* */
    unsigned ping_timeout;                    /* s: device considered offline after this */
    unsigned device_max_per_addr;             /* device channel connections per IP address */
    unsigned shutdown_grace;                  /* s: SIGTERM waits this long for in-flight work */
    unsigned http_timeout;                    /* s: idle/read timeout of an HTTP connection */
    unsigned workers;                         /* HTTP event loops, 0 = one per core */
    char     legacy_product[64];              /* product whose current release port 5555 serves */
    unsigned legacy_chunk;                    /* bytes per paced write, 1..1280 */
    unsigned legacy_interval_ms;              /* gap between paced writes */
    unsigned legacy_timeout_ms;               /* request wait and stall limit */
    unsigned legacy_max_clients;              /* concurrent legacy transfers */
};

/* Option flags in the table. */
#define FOTA_CONF_RELOAD 0x1u   /* applied again on SIGHUP */

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
    size_t      offset;     /* into struct fota_config */
    size_t      size;       /* field size (strings) */
    const char *def;        /* default as text */
    uint64_t    min, max;   /* UINT/SIZE bounds */
    unsigned    flags;      /* FOTA_CONF_RELOAD */
    const char *help;
};

/* The table, terminated by an entry with name NULL. */
extern const struct fota_conf_opt fota_conf_opts[];

/* Fills c with every default. */
void fota_config_defaults(struct fota_config *c);

/* Sets one option by INI key name from text. 0, or FOTA_ECONFIG with a
 * message in err ("unknown option", "http_port: not a port ..."). */
int fota_config_set(struct fota_config *c, const char *name, const char *value,
                    char *err, size_t errlen);

/* Loads an INI file on top of c (keys at top level or in [fotad]).
 * 0, or FOTA_ECONFIG / FOTA_EIO with "FILE:LINE: reason" in err. */
int fota_config_load_file(struct fota_config *c, const char *path, char *err, size_t errlen);

/* Checks cross-field rules (cert without key, data dir empty...). */
int fota_config_check(const struct fota_config *c, char *err, size_t errlen);

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
int fota_config_from_args(struct fota_config *c, struct fota_cmdline *cl, int argc,
                          char **argv, char *err, size_t errlen);

/* Prints the --help text / the markdown reference (docs/config.md). */
void fota_config_usage(FILE *f, const char *prog);
void fota_config_doc(FILE *f);

/* Copies the options flagged FOTA_CONF_RELOAD from src into dst and writes a
 * space-separated list of the changed names into changed (may be ""). */
void fota_config_apply_reloadable(struct fota_config *dst, const struct fota_config *src,
                                  char *changed, size_t changed_len);

/* Formats a port value for logs: "8000", "off". */
const char *fota_config_port_str(int port, char *buf, size_t len);

#endif
