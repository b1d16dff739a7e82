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

struct fota_cli_conf {
    char server[FOTA_CLI_URL_MAX];   /* "" when nowhere set */
    char key[FOTA_CLI_KEY_MAX];      /* "" when nowhere set */
    const char *server_from;         /* static: "--server", "FOTA_SERVER", the file path, or NULL */
    const char *key_from;
    char path[FOTA_CLI_PATH_MAX];    /* the config file's path ("" if no HOME) */
};

/* Writes the config file's path to buf. Returns 0, FOTA_ENOENT when neither
 * XDG_CONFIG_HOME nor HOME is set, FOTA_ETOOBIG when it does not fit. */
int fota_cli_conf_path(char *buf, size_t len);

/* Fills *c by precedence flag > environment > file. flag_server/flag_key may
 * be NULL. A missing file is not an error. Returns 0, or FOTA_ECONFIG for an
 * unreadable or malformed file (err gets one sentence naming it). */
int fota_cli_conf_load(struct fota_cli_conf *c, const char *flag_server,
                       const char *flag_key, char *err, size_t errlen);

/* Writes server and key to the config file atomically (temp file 0600 +
 * rename), creating the directories (0700) as needed. path_out (may be NULL)
 * receives the path. Returns 0 or FOTA_EIO/FOTA_ENOENT/FOTA_EINVAL with a
 * sentence in err. */
int fota_cli_conf_save(const char *server, const char *key, char *path_out,
                       size_t path_len, char *err, size_t errlen);

#endif
