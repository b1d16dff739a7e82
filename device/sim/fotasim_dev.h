/* fotasim_dev.h - one virtual ESP8266 of fota-sim: flash and boot loader
 * (fotasim.h), libfotadev's agent, and its HAL implemented with libevent
 * bufferevents and timers on the fleet's loop, with power loss, restarts
 * and the --faults plan. What happens to it goes to the fleet's on_event. */
#ifndef FOTASIM_DEV_H
#define FOTASIM_DEV_H

#include <event2/event.h>
#include <event2/bufferevent.h>

#include "fotasim.h"
#include "fotasim_fleet.h"

#define FOTASIM_DL_BUFFER 65536       /* download bytes read from the socket per wake-up, at most */
#define FOTASIM_DL_LOWAT 65536        /* SO_RCVLOWAT of a download while this much is still due */

#define FOTASIM_FIRED_FLASH 1
#define FOTASIM_FIRED_RX 2
#define FOTASIM_FIRED_DROP 4
#define FOTASIM_FIRED_CORRUPT 8
/* what the loader started, per boot (--json-devices "booted") */
#define FOTASIM_BOOT_INITIAL 0u   /* --initial-version */
#define FOTASIM_BOOT_TARGET 1u    /* --upgrade-to */
#define FOTASIM_BOOT_OTHER 2u     /* a valid image of another version */
#define FOTASIM_BOOT_NONE 3u      /* nothing bootable */
#define FOTASIM_BOOT_LOG_MAX 16u

enum fotasim_state { DEV_BOOTING = 0, DEV_RUNNING, DEV_DONE, DEV_FAILED, DEV_DEAD };

struct fotasim_conn {
    struct bufferevent *bev;
    struct event *rd;             /* download: our own reads (bev writes only); NULL otherwise */
    int direct;                   /* read with rd once connected (not rate-limited) */
    int up;
};

struct fotasim_dev {
    struct fotasim *sim;
    int idx;
    enum fotasim_state state;
    struct fotasim_flash flash;
    struct fotadev_layout lay;
    struct fotadev_hal hal;
    struct fotadev_agent agent;
    struct fotasim_conn conn[FOTADEV_CONN_MAX];
    struct event *timers[FOTADEV_TIMER_MAX];
    struct event *reboot_ev;
    int pending;                  /* 1 restart, 2 flip + restart, 3 power loss */
    int halted;                   /* between a restart request and the reboot */
    char devkey[FOTADEV_KEY_LEN + 1], token[FOTADEV_KEY_LEN + 1];
    uint8_t bssid[6];
    char version[FOTA_FWIMG_VERSION_MAX];
    int activated, ever_activated;
    unsigned boots, attempts, power_cuts;
    int loaded;                   /* flash came from --flash-dir */
    int faulty, fault_fired;      /* fault_fired: FOTASIM_FIRED_* bits, each fault once */
    long flash_at, rx_at, drop_at, corrupt_at; /* this device's fault positions (-1 none) */
    uint32_t boot_log;            /* 2 bits per boot past the loader: FOTASIM_BOOT_* */
    unsigned boot_logged;
    uint64_t rx_bytes;
    uint64_t dl_bytes;
    int dl_lowat;                 /* SO_RCVLOWAT set on the direct download socket */
    uint32_t rnd;
    char reason[96];              /* last failure, "" none */
    long long api_id;             /* device id from registration, 0 if unknown */
    int rpc_upgrade_sent;         /* the app: sys_upgrade requested in this boot */
    int rpc_on_rx;                /* the app: send sys_upgrade at the next channel receive */
    unsigned rpc_upgrades;        /* the app: sys_upgrade requests in total */
    float t_start, t_done;        /* s since start: first upgrade push, running the target */
};

/* Sets device idx up: flash with the factory image (or --flash-dir), the
 * master key (devkey: 40 characters; a key sector's token and key when
 * keysector is not NULL (4 KiB, programmed where esptool would write it);
 * else a made-up key), fault positions, the HAL. Returns 0 or FOTA_E*;
 * call fotasim_dev_cleanup either way. */
int fotasim_dev_init(struct fotasim *s, struct fotasim_dev *d, int idx, const char *devkey,
                     const uint8_t *keysector);
void fotasim_dev_cleanup(struct fotasim_dev *d);
/* The device key changed (registration): devkey is 40 characters; the
 * factory esp_param is rewritten. */
void fotasim_dev_rekey(struct fotasim_dev *d, const char *devkey);
/* Power on: boot loader, then run the agent (or finish). */
void fotasim_dev_boot(struct fotasim_dev *d);
/* Ends the device's run: state (DEV_DONE, DEV_FAILED, DEV_DEAD) and a
 * reason (copied; NULL keeps the last). A failed or dead device is
 * switched off: its connections and timers stop. */
void fotasim_dev_finish(struct fotasim_dev *d, enum fotasim_state st, const char *reason);

#endif
