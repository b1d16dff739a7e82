/* fotasim_dev.h - one virtual ESP8266 of fota-sim, the hardware part: NOR
 * flash (fotasim.h), power and restarts, timers and TCP connections on the
 * fleet's libevent loop, and the --faults plan. The firmware that runs on
 * it (libfotadev's agent: fotasim_esp.c; the Arduino core's clients:
 * fotasim_ard.c) plugs in through struct fotasim_fw and calls the
 * functions below; the hardware calls the firmware only through that
 * table, so the two never depend on each other's files. */
#ifndef FOTASIM_DEV_H
#define FOTASIM_DEV_H

#include <event2/event.h>
#include <event2/bufferevent.h>

#include "fotasim.h"
#include "fotasim_ard.h"
#include "fotasim_esp.h"
#include "fotasim_fleet.h"

#define FOTASIM_DL_BUFFER 65536       /* download bytes read from the socket per wake-up, at most */
#define FOTASIM_DL_LOWAT 65536        /* SO_RCVLOWAT of a download while this much is still due */

/* Connections and timers a firmware may use (ids as libfotadev's). */
#define FOTASIM_CONN_CHAN FOTADEV_CONN_CHAN   /* messages: split after each '\n' */
#define FOTASIM_CONN_DL FOTADEV_CONN_DL       /* downloads: read straight from the socket */
#define FOTASIM_CONN_MAX FOTADEV_CONN_MAX
#define FOTASIM_TIMER_MAX FOTADEV_TIMER_MAX

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

/* Restart kinds (fotasim_dev_reboot). */
enum { FOTASIM_RESTART = 1, FOTASIM_RESTART_FLIP = 2, FOTASIM_POWER_LOSS = 3 };

enum fotasim_state { DEV_BOOTING = 0, DEV_RUNNING, DEV_DONE, DEV_FAILED, DEV_DEAD };

struct fotasim_dev;

/* The firmware's entry points; the hardware calls them from its loop and
 * checks the power after each. */
struct fotasim_fw {
    /* Power on: loader and start (the flash is powered). */
    void (*boot)(struct fotasim_dev *d);
    /* Before a restart of kind FOTASIM_RESTART_FLIP: the boot-byte flip.
     * Returns < 0 when the flash failed (a power cut). NULL: none. */
    int (*flip)(struct fotasim_dev *d);
    void (*on_connect)(struct fotasim_dev *d, int c, int err);
    void (*on_data)(struct fotasim_dev *d, int c, const uint8_t *p, size_t n);
    void (*on_close)(struct fotasim_dev *d, int c);
    void (*on_timer)(struct fotasim_dev *d, int id);
    /* Download bytes still due on FOTASIM_CONN_DL (0 unknown): the HAL's
     * read batching; NULL: always 0. */
    uint32_t (*dl_due)(const struct fotasim_dev *d);
    /* The end of the run (before the flash is saved): NULL none. */
    void (*cleanup)(struct fotasim_dev *d);
};

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
    const struct fotasim_fw *fw;
    struct fotasim_flash flash;
    struct fotasim_conn conn[FOTASIM_CONN_MAX];
    struct event *timers[FOTASIM_TIMER_MAX];
    struct event *reboot_ev;
    int pending;                  /* FOTASIM_RESTART* / FOTASIM_POWER_LOSS due */
    int boot_kind;                /* what started this boot: 0 power on, else as pending */
    int halted;                   /* between a restart request and the reboot; for good when off */
    char version[FOTASIM_VERSION_MAX];    /* of the image running, "" none */
    unsigned boots, power_cuts;
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
    float t_start, t_done;        /* s since start: first upgrade push, running the target */
    union {
        struct fotasim_esp esp;   /* fw == &fotasim_esp_fw */
        struct fotasim_ard ard;   /* fw == &fotasim_ard_fw */
    } u;
};

/* Sets device idx up with firmware fw and an erased flash of flash_size
 * bytes (the firmware programs it next), fault positions and timers.
 * Returns 0 or FOTA_E*; call fotasim_dev_cleanup either way. */
int fotasim_dev_init(struct fotasim *s, struct fotasim_dev *d, int idx,
                     const struct fotasim_fw *fw, uint32_t flash_size);
/* Replaces the flash with DIR/devNNNNN.bin when --flash-dir holds one
 * (d->loaded). Returns 0 or FOTA_E* (a file that cannot be read). */
int fotasim_dev_load_flash(struct fotasim_dev *d);
/* Saves the flash to --flash-dir, closes everything. */
void fotasim_dev_cleanup(struct fotasim_dev *d);
/* Power on: the firmware boots (nothing when the device is off). */
void fotasim_dev_boot(struct fotasim_dev *d);
/* Ends the device's run: state (DEV_DONE, DEV_FAILED, DEV_DEAD) and a
 * reason (copied; NULL keeps the last). A failed or dead device is
 * switched off: its connections and timers stop for good. */
void fotasim_dev_finish(struct fotasim_dev *d, enum fotasim_state st, const char *reason);
/* Notes what the loader started at this boot (FOTASIM_BOOT_*). */
void fotasim_dev_log_boot(struct fotasim_dev *d, unsigned what);
void fotasim_dev_set_reason(struct fotasim_dev *d, const char *reason);

/* ---- for the firmware ---- */
/* A restart of `kind` after delay_ms (scaled); ignored while one is due. */
void fotasim_dev_reboot(struct fotasim_dev *d, int kind, uint32_t delay_ms);
/* Connects c to host:port (numeric); the firmware's on_connect follows. */
int fotasim_dev_connect(struct fotasim_dev *d, int c, const char *host, uint16_t port);
int fotasim_dev_send(struct fotasim_dev *d, int c, const void *buf, size_t len);
void fotasim_dev_close(struct fotasim_dev *d, int c);
/* One timer per id; re-arming replaces; ms == 0 stops (ms scaled). */
void fotasim_dev_timer(struct fotasim_dev *d, int id, uint32_t ms);
uint32_t fotasim_dev_now_ms(const struct fotasim_dev *d);
uint32_t fotasim_dev_random(struct fotasim_dev *d);
/* Debug lines (FOTASIM_DEBUG set): "<time> devN: msg". */
void fotasim_dev_log(const struct fotasim_dev *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* After a call into the firmware from elsewhere (an MQTT message): did the
 * flash lose power under it? */
void fotasim_dev_check_power(struct fotasim_dev *d);

#endif
