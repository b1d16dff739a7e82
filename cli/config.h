/* config.h - where fotactl finds its server and key: --server/--key flags,
 * then FOTA_SERVER/FOTA_KEY, then the file `fotactl login` writes
 * ($XDG_CONFIG_HOME/fota/config, else $HOME/.config/fota/config; INI:
 * [server] url=..., key=...; file 0600, directory 0700). */
#ifndef FOTA_CLI_CONFIG_H
#define FOTA_CLI_CONFIG_H

#include <stddef.h>

#define FOTA_CLI_URL_MAX  512
#define FOTA_CLI_KEY_MAX  128
#define FOTA_CLI_PATH_MAX 1024
#define FOTA_CLI_KEY_LEN  40     /* an API key: 40 hex characters (either case) */

struct fota_cli_config {
    char server[FOTA_CLI_URL_MAX];   /* "" when nowhere set */
    char key[FOTA_CLI_KEY_MAX];      /* "" when nowhere set */
    const char *server_from;         /* static: "--server", "FOTA_SERVER", the file path, or NULL */
    const char *key_from;
    char cacert[FOTA_CLI_PATH_MAX];  /* PEM file of CAs for https servers; "" = system store */
    char path[FOTA_CLI_PATH_MAX];    /* the config file's path ("" if no HOME) */
};

/* Writes the config file's path to buf. Returns 0, FOTA_ENOENT when neither
 * XDG_CONFIG_HOME nor HOME is set, FOTA_ETOOBIG when it does not fit. */
int fota_cli_config_path(char *buf, size_t len);

/* Fills *c by precedence flag > environment > file. The flag_* may be
 * NULL. A missing file is not an error. Returns 0, or FOTA_ECONFIG for an
 * unreadable or malformed file (err gets one sentence naming it). */
int fota_cli_config_load(struct fota_cli_config *c, const char *flag_server, const char *flag_key,
                         const char *flag_cacert, char *err, size_t errlen);

/* Writes server, key and cacert (NULL or "" for none) to the config file
 * atomically (temp file 0600 + rename), creating the directories (0700). path_out (may be NULL)
 * receives the path. Returns 0 or FOTA_EIO/FOTA_ENOENT/FOTA_EINVAL with a
 * sentence in err. */
int fota_cli_config_save(const char *server, const char *key, const char *cacert,
                         char *path_out, size_t path_len, char *err, size_t errlen);

/* Checks the shape of an API key before it is sent: FOTA_CLI_KEY_LEN hex
 * characters. Returns 0, or FOTA_EINVAL with why set to what is wrong
 * ("40 hex characters expected, got 3 characters"). */
int fota_cli_config_key_check(const char *key, char *why, size_t cap);

/* fotad's device-channel ports (8000 plain, 8443 TLS) are the usual wrong
 * port in a server URL. For such a port, the sentence that says so and where
 * the REST API is ("8000 is fotad's device port; the REST API is on the HTTP
 * port, 80 by default"); NULL for any other port. Static storage. */
const char *fota_cli_config_port_hint(long port);

#endif
