/* fotasim_esp.h - the Espressif firmware of a fota-sim device: the SDK's
 * loader (fotasim_boot.c) and libfotadev's agent (stock NONOS IoT_Demo,
 * IOT_PLATFORM, the seed's DFU client, libfotadev's own) on a HAL made of
 * the device's hardware (fotasim_dev.h). */
#ifndef FOTASIM_ESP_H
#define FOTASIM_ESP_H

#include <stdint.h>

#include "fotadev.h"

struct fotasim;
struct fotasim_dev;
struct fotasim_fw;

/* The firmware table of these devices. */
extern const struct fotasim_fw fotasim_esp_fw;

struct fotasim_esp {
    struct fotadev_layout lay;
    struct fotadev_hal hal;
    struct fotadev_agent agent;
    char devkey[FOTADEV_KEY_LEN + 1], token[FOTADEV_KEY_LEN + 1];
    uint8_t bssid[6];
    int activated, ever_activated;
    unsigned attempts;            /* seed-dfu: boots that tried an upgrade */
    int rpc_upgrade_sent;         /* the app: sys_upgrade requested in this boot */
    int rpc_on_rx;                /* the app: send sys_upgrade at the next channel receive */
    unsigned rpc_upgrades;        /* the app: sys_upgrade requests in total */
};

/* Sets device idx up (fotasim_dev_init with this firmware): the factory
 * image in user1 (or --flash-dir), the master key (devkey: 40 characters;
 * a key sector's key and token when keysector is not NULL (4 KiB,
 * programmed where esptool writes it); else a made-up key). Returns 0,
 * FOTA_EINVAL (no parameter area for a key sector in this map) or FOTA_E*;
 * call fotasim_dev_cleanup either way. */
int fotasim_esp_init(struct fotasim *s, struct fotasim_dev *d, int idx, const char *devkey,
                     const uint8_t *keysector);
/* The device key changed (registration): the factory esp_param is rewritten. */
void fotasim_esp_rekey(struct fotasim_dev *d, const char *devkey);

#endif
