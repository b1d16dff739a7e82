/* fotasim_ard.h - the ESP8266 Arduino core as firmware of a fota-sim
 * device: eboot's copy at boot (fotasim_eboot.c), the sketch's view of
 * itself, and the core's HTTP clients on the device's connection with the
 * core's timeouts: ESPhttpUpdate.update() (§2-§5), and the plain GETs
 * ESPHome makes (§9: HTTP/1.1 keep-alive, a body into memory, or into the
 * updater with an MD5). What the device does with them is a sketch
 * (struct fotasim_sketch: the check-in sketch of fotasim_ardsk.c, Tasmota,
 * ESPHome), called through its table. */
#ifndef FOTASIM_ARD_H
#define FOTASIM_ARD_H

#include <stdint.h>

#include "fotasim_ardhttp.h"
#include "fotasim_ardupd.h"
#include "fotasim_eboot.h"

struct fotasim;
struct fotasim_dev;
struct fotasim_fw;
struct fotasim_mqtt;

/* The firmware table of these devices. */
extern const struct fotasim_fw fotasim_ard_fw;

/* Timers: the HTTP client's, and three for the sketch. */
enum { FOTASIM_ARD_TIMER_HTTP = 0, FOTASIM_ARD_TIMER_SK1, FOTASIM_ARD_TIMER_SK2,
       FOTASIM_ARD_TIMER_SK3 };

/* Operations of the HTTP engine. */
enum { FOTASIM_ARD_OP_NONE = 0,
       FOTASIM_ARD_OP_UPDATE,   /* ESPhttpUpdate.update(url, version) */
       FOTASIM_ARD_OP_GET,      /* ESPHome: GET, body into memory (at most 4 KiB) */
       FOTASIM_ARD_OP_FLASH };  /* ESPHome: GET into Update.begin/write/end, MD5 compared */

#define FOTASIM_ARD_BODY_MAX 4096

/* How an operation ended. */
struct fotasim_ard_result {
    int op;
    int result;                 /* UPDATE: FOTASIM_UPDATE_*; GET: the HTTP status or an
                                 * HTTPClient error (< 0); FLASH: 0 or ESPHome's error code */
    int err;                    /* UPDATE: getLastError() */
    const char *errstr;         /* UPDATE: getLastErrorString() */
    const uint8_t *body;        /* GET: the body read */
    size_t body_len;
    long content_length;        /* GET: getSize() (-1 absent) */
};

struct fotasim_sketch {
    const char *name;
    /* setup(): the image booted and the network is up. */
    void (*start)(struct fotasim_dev *d);
    void (*on_timer)(struct fotasim_dev *d, int id);
    void (*on_result)(struct fotasim_dev *d, const struct fotasim_ard_result *r);
    /* The device goes away (reboot, power loss, end of run): free what
     * start made. NULL: nothing. */
    void (*stop)(struct fotasim_dev *d);
};

/* Tasmota's state across its loop (fotasim_tasmota.c). */
struct fotasim_tas {
    struct fotasim_mqtt *mqtt;
    char topic[32];             /* tasmota_XXXXXX */
    char client[32];            /* DVES_XXXXXX */
    char ota_url[FOTASIM_URL_MAX];
    int state_flag;             /* TasmotaGlobal.ota_state_flag, counted down each second */
    int retry;                  /* ota_retry_counter */
    int result;                 /* ota_result */
    int restart_flag;           /* TasmotaGlobal.restart_flag */
    unsigned attempts;          /* update() calls in this loop */
    int minimal;                /* the running image is a minimal build */
    char last_url[FOTASIM_URL_MAX];
};

/* ESPHome's state (fotasim_esphome.c). */
struct fotasim_esph {
    int phase;                  /* what the last GET was for */
    char fw_url[FOTASIM_URL_MAX];
    char md5[33];
    char manifest_version[64];
    unsigned polls;
};

struct fotasim_ard {
    /* the chip */
    uint8_t mac[6];
    char sta_mac[18], ap_mac[18];
    uint32_t chip_id;
    struct fotasim_ardenv env;  /* refreshed at each boot */
    struct fotasim_sketch_info sk;
    /* RTC memory: survives a restart, not a power loss */
    struct fotasim_ebcmd rtc_cmd;
    uint8_t rtc_ota_loader;     /* Tasmota's RtcSettings.ota_loader */
    char saved_ota_url[FOTASIM_URL_MAX]; /* Tasmota's OtaUrl setting (flash) */
    /* the core's single Update object and ESPhttpUpdate's last error */
    struct fotasim_updater upd;
    int last_error;
    char last_errstr[224];
    /* the HTTP exchange in flight */
    int op, phase;
    struct fotasim_url url;
    char host_ip[64];           /* url.host resolved */
    char version_arg[FOTASIM_VERSION_MAX];
    char want_md5[33];          /* FLASH: the expected MD5 */
    struct fotasim_ardresp resp;
    int keep;                   /* the connection may serve the next GET (keep-alive) */
    uint8_t peek[4];
    unsigned npeek;
    long len, got;
    void *md5;                  /* FLASH: EVP_MD_CTX of the received bytes */
    uint8_t body[FOTASIM_ARD_BODY_MAX];
    size_t body_len;
    char req[1024];
    /* the sketch */
    const struct fotasim_sketch *sketch;
    unsigned checkins, failures;   /* update() calls that ended, FAILED in a row */
    int on_target;                 /* the image running is --upgrade-to */
    int last_result;
    union {
        struct fotasim_tas tas;
        struct fotasim_esph esph;
    } p;
};

/* Sets device idx up with the Arduino core and `sketch`: its flash holds
 * the factory image (an Arduino image of --initial-version), or the device's
 * flash from --flash-dir. Returns 0 or FOTA_E*; call fotasim_dev_cleanup
 * either way. */
int fotasim_ard_init(struct fotasim *s, struct fotasim_dev *d, int idx,
                     const struct fotasim_sketch *sketch);

/* ---- for the sketches ---- */
/* ESPhttpUpdate.update(client, url, version): on_result follows. */
void fotasim_ard_update(struct fotasim_dev *d, const char *url, const char *version);
/* ESPHome's GET of a small body (manifest, MD5 file). */
void fotasim_ard_get(struct fotasim_dev *d, const char *url);
/* ESPHome's flash: GET url into the updater, compare md5 (lower case, the
 * first 32 characters), end. */
void fotasim_ard_flash(struct fotasim_dev *d, const char *url, const char *md5);
/* ESP.restart() after delay_ms: RTC memory stays, eboot copies at boot. */
void fotasim_ard_restart(struct fotasim_dev *d, uint32_t delay_ms);
/* The running image is --upgrade-to (Tasmota: its version before the
 * build name, a minimal build excluded). */
int fotasim_ard_on_target(const struct fotasim_dev *d);

#endif
