/* store_arduino.h - the rows the store keeps for Arduino-core products
 * (server/arduino/, docs/arduino.md): a product's fleet settings, the facts of
 * each served file by content, and a device's x-ESP8266-* report and the
 * upgrade it is being served. Included by store.h; the operations are the
 * arduino_* members of struct fota_store_ops. */
#ifndef FOTA_STORE_ARDUINO_H
#define FOTA_STORE_ARDUINO_H

#include <stdint.h>
#include <string.h>

#define FOTA_ARDUINO_KEY_MAX   4096  /* signing_key PEM, incl. NUL */
#define FOTA_ARDUINO_MD5_TEXT  33    /* 32 lower-case hex + NUL */
#define FOTA_ARDUINO_MAC_MAX   18    /* "DE:BA:7A:B1:E0:42" + NUL */
#define FOTA_MQTT_URL_MAX      256   /* "mqtt://host:port" or "mqtts://...", incl. NUL */
#define FOTA_MQTT_CRED_MAX     128   /* broker user name and password, incl. NUL */
#define FOTA_MQTT_TOPIC_MAX    64    /* a Tasmota %topic%, incl. NUL */

/* A product whose platform is "arduino" has this row; others have none. */
struct fota_arduino_product {
    int64_t product_id;
    int     gzip;                     /* serve the gzip container */
    int     core;                     /* fleet core line: major * 10 + minor (31 = "3.1") */
    int     flash_mode;               /* fleet flash mode 0-3; -1 not known yet */
    char    signing_key[FOTA_ARDUINO_KEY_MAX]; /* RSA public key (PEM), "" unsigned */
    int64_t checkin_interval;         /* s: "online" is a check-in within it */
    int64_t confirm_after;            /* s: the old MD5 this long after a download = failed */
    /* The fleet's MQTT broker (server/mqtt/): "" url = none. */
    char    mqtt_url[FOTA_MQTT_URL_MAX];
    char    mqtt_username[FOTA_MQTT_CRED_MAX];
    char    mqtt_password[FOTA_MQTT_CRED_MAX];
};

/* What fotad learned about a served file at upload, keyed by its content
 * (the blob's SHA-256): the same bytes always have the same facts. */
struct fota_arduino_blob {
    char    sha256[65];
    char    md5[FOTA_ARDUINO_MD5_TEXT];          /* of the bytes served (x-MD5) */
    int     gzip;                                /* the bytes are the gzip container */
    int     sig_form;                            /* 0 none, 1 standard, 2 legacy */
    int64_t image_size;                          /* inflated, without trailer */
    char    image_md5[FOTA_ARDUINO_MD5_TEXT];
    char    image_sha256[65];
    char    sketch_md5[4][FOTA_ARDUINO_MD5_TEXT]; /* the device's report, mode byte 0-3 */
    int     flash_mode;                          /* byte 2 of the image */
    int64_t flash_size;                          /* decoded size code of the image */
    int64_t sketch_size;                         /* getSketchSize of the image */
};

/* A device registered by its x-ESP8266-STA-MAC (or named in its URL), what
 * its last check-in reported, and the upgrade it is being served. */
struct fota_arduino_device {
    int64_t device_id;
    int64_t product_id;
    char    sta_mac[FOTA_ARDUINO_MAC_MAX];       /* "" for a device named in its URL */
    char    ap_mac[FOTA_ARDUINO_MAC_MAX];
    int64_t chip_id;                             /* -1 not reported */
    int64_t free_space;
    int64_t sketch_size;
    int64_t chip_size;
    char    sketch_md5[FOTA_ARDUINO_MD5_TEXT];
    char    sdk_version[48];
    char    version[64];                         /* x-ESP8266-version as sent */
    char    mode[12];                            /* x-ESP8266-mode */
    int64_t last_checkin;                        /* Unix s; 0 never */
    /* The upgrade in flight ("" target: none). */
    char    target[64];                          /* release version served */
    int64_t target_rom_id;
    int64_t served_at;                           /* its download completed (Unix s); 0 not yet */
    char    served_md5[FOTA_ARDUINO_MD5_TEXT];   /* the device's sketch MD5 when it downloaded */
    /* The explicit choice that holds: the version an upgrade command or a
     * rollout installed ("" none) and the product's current release then. */
    char    pin_version[64];
    char    pin_current[64];
    /* Seen over MQTT (Tasmota): its topic ("" never), last LWT payload,
     * last reported version (INFO1 or Status 2) and when (Unix s). */
    char    mqtt_topic[FOTA_MQTT_TOPIC_MAX];
    char    mqtt_lwt[16];
    char    mqtt_version[64];
    int64_t mqtt_seen;
};

/* Whether an arduino device is online at now (Unix seconds): a device
 * known over MQTT is where its LWT says; one that polls while its last
 * check-in is younger than its product's checkin_interval. The one rule
 * for arduino devices: the store's lists, filters and counts use its SQL
 * form (FOTA_SQL_ONLINE, store_int.h), the API's views and the
 * rollouts' selection this. */
static inline int fota_arduino_online(const struct fota_arduino_device *a,
                                      int64_t checkin_interval, int64_t now)
{
    if (a->mqtt_topic[0])
        return strcmp(a->mqtt_lwt, "Online") == 0;
    return a->last_checkin > 0 && now - a->last_checkin < checkin_interval;
}

/* A completed download of an arduino file, as the module batches them:
 * its ledger row, and for a device (device_id > 0) the upgrade now in
 * flight (arduino_device_served). */
struct fota_arduino_download {
    int64_t device_id;                           /* 0: anonymous */
    int64_t file_id;
    int64_t bytes;
    int     completed;                           /* downloads finished (download_count) */
    char    target[64];                          /* release version served */
    int64_t target_rom_id;
    int64_t served_at;                           /* Unix s */
    char    served_md5[FOTA_ARDUINO_MD5_TEXT];   /* the device's sketch MD5 when it downloaded */
};

#endif
