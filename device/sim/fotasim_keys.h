/* fotasim_keys.h - the devices' master keys from a --keys file: a text file
 * with one 40-hex-digit key per line, or master_device_key.bin key sectors
 * (4 KiB each: key at 0, token at 40, activation flag at 80, as fotad's
 * GET /v1/devices/ID/master_device_key.bin and `fotactl device key --bin`
 * give them), one per device. */
#ifndef FOTASIM_KEYS_H
#define FOTASIM_KEYS_H

#include <stdint.h>
#include <stdio.h>

#include "fotadev.h"

#define FOTASIM_KEY_SECTOR 4096u

struct fotasim_keys {
    int n;                                /* keys loaded (>= the devices asked for) */
    char (*key)[FOTADEV_KEY_LEN + 1];     /* n keys, NUL-terminated */
    uint8_t *sectors;                     /* key sectors: n * 4 KiB, or NULL for a text file */
};

/* Loads at least `want` keys from path (a file of whole 4 KiB sectors whose
 * first 80 bytes are hex digits is read as key sectors, anything else as
 * text). Returns 0, or -1 after one line on err naming the file and what
 * is wrong with it (missing, a bad line or sector, fewer keys than
 * devices). *k is empty on failure; free with fotasim_keys_free. */
int fotasim_keys_load(struct fotasim_keys *k, const char *path, int want, FILE *err);
/* Key sector i (4 KiB) or NULL for keys from a text file. */
const uint8_t *fotasim_keys_sector(const struct fotasim_keys *k, int i);
void fotasim_keys_free(struct fotasim_keys *k);

#endif
